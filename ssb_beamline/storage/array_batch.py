"""The data of several array nodes of one container written in one request.

After a scan's last frame the results path sent one ``PUT /api/v1/array/full/...``
per prepared array (the maps, about 1 MB each), and every request costs the
server's single event loop 15-25 ms of CPU in tiled's middlewares, routing,
authentication and catalog look-ups, the server being the bottleneck then.
tiled 0.2.20 has no call that writes the data of several nodes at once (its
``PATCH /array/full`` extends one array), hence this route.

``PUT /api/v1/array/many/<container path>`` takes a body made of a 4-byte
big-endian header length, a JSON header ``{"items": [{"key", "media_type",
"nbytes"}, ...]}`` and the items' bytes one after the other. Each item is written
exactly as tiled's own ``PUT /array/full/<container path>/<key>`` writes it: the
route asks for the ``write:data`` scope, each node is looked up with tiled's
``get_entry`` (the same access checks, ``write:data``; all of them in one catalog
session when no access policy applies, see :mod:`.batch_lookup`), deserialised by tiled's
registry for its media type and written with the node's own ``write``. Every
node is looked up before any is written, so a refused or missing one writes
nothing; a write that fails fails the request (the others may be written: the
caller's version stays marked as being written, see :mod:`.result_skeleton`).
An item whose header also holds ``"node"`` is a table created with its rows in
the same request (see :mod:`.table_batch`: the particle tables made after the
stop, two requests each otherwise). ``GET /api/v1/array/many`` says that the
server has the route; a stock tiled
server answers 404 there (:func:`offered` asks once per server address), and the
client then falls back to one PUT per array. A server replaced at the same
address by one without the route (a stock ``tiled serve`` restarted on the port)
answers a batch with 404: :func:`write_many` then asks again and writes each item
with tiled's own requests.
"""

import asyncio
import json
import logging
import struct
from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np

__all__ = [
    "BATCH_ROUTE",
    "add_array_batch",
    "batches",
    "decode_batch",
    "encode_batch",
    "offered",
    "write_many",
]

logger = logging.getLogger(__name__)

#: The route's path below ``/api/v1/``.
BATCH_ROUTE = "array/many"
#: Items of one request at most (a bound on the work of one request).
MAX_ITEMS = 256
_LENGTH = struct.Struct(">I")


class BatchFormatError(ValueError):
    """A batch body that does not follow the format (answered with HTTP 400)."""


def encode_batch(
    items: Mapping[str, np.ndarray], tables: Mapping[str, tuple[Any, dict]] | None = None
) -> bytes:
    """The body of a batch request writing ``key -> array`` (raw bytes, C order).

    Parameters
    ----------
    items : mapping of str to ndarray
        The arrays, by their node's key in the container.
    tables : mapping of str to (pandas.DataFrame, dict), optional
        Tables to create with their rows, and their metadata (see :mod:`.table_batch`).
    """
    from .table_batch import table_item

    blobs = {key: np.ascontiguousarray(array).tobytes() for key, array in items.items()}
    entries = [{"key": key, "media_type": "application/octet-stream"} for key in blobs]
    for key, (frame, metadata) in (tables or {}).items():
        entry, blobs[key] = table_item(key, frame, metadata)
        entries.append(entry)
    for entry in entries:
        entry["nbytes"] = len(blobs[entry["key"]])
    header = json.dumps({"items": entries}).encode()
    return b"".join([_LENGTH.pack(len(header)), header, *(blobs[e["key"]] for e in entries)])


def decode_batch(body: bytes) -> list[tuple[str, str, bytes, Any]]:
    """``(key, media type, bytes, node or None)`` of each item of a batch body.

    ``node`` is tiled's ``PostMetadataRequest`` of a table to create (see
    :mod:`.table_batch`), None for an existing array.

    Parameters
    ----------
    body : bytes
        The request body (see the module docstring).

    Raises
    ------
    BatchFormatError
        If the body does not follow the format (the message says where).
    """
    view = memoryview(body)
    if len(view) < _LENGTH.size:
        raise BatchFormatError("the body is shorter than its header length")
    (size,) = _LENGTH.unpack(view[: _LENGTH.size])
    offset = _LENGTH.size + size
    try:
        items = json.loads(bytes(view[_LENGTH.size : offset]))["items"]
        specs = [(str(i["key"]), str(i["media_type"]), int(i["nbytes"])) for i in items]
        nodes = [i.get("node") for i in items]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BatchFormatError(f"the header is not valid JSON with items: {exc}") from None
    if not 0 < len(specs) <= MAX_ITEMS:
        raise BatchFormatError(f"a batch holds 1 to {MAX_ITEMS} items, not {len(specs)}")
    keys = [key for key, _, _ in specs]
    if len(set(keys)) != len(keys) or any(not k or "/" in k or k in (".", "..") for k in keys):
        raise BatchFormatError("item keys must be distinct, non-empty node names without '/'")
    if any(n < 0 for _, _, n in specs) or offset + sum(n for _, _, n in specs) != len(view):
        raise BatchFormatError("the items' nbytes do not add up to the body's length")
    from .table_batch import check_table_node

    out = []
    for (key, media_type, nbytes), raw in zip(specs, nodes, strict=True):
        try:
            node = None if raw is None else check_table_node(key, raw)
        except ValueError as exc:
            raise BatchFormatError(str(exc)) from None
        out.append((key, media_type, bytes(view[offset : offset + nbytes]), node))
        offset += nbytes
    return out


async def _array_writes(items: list, lookup, family) -> list:
    """Each array item's node, tiled's deserialiser, media type and bytes (nodes looked up)."""
    from fastapi import HTTPException
    from tiled.media_type_registration import default_deserialization_registry as registry

    writes = []
    for key, media_type, data, _ in (i for i in items if i[3] is None):
        entry = await lookup(key, ["write:data"], family)
        if not hasattr(entry, "write"):
            raise HTTPException(status_code=405, detail=f"{key} cannot accept array data.")
        writes.append((entry, registry.dispatch("array", media_type), media_type, data))
    return writes


def add_array_batch(app):
    """Add the batch route (see the module docstring) to a tiled app; return the app.

    Parameters
    ----------
    app : fastapi.FastAPI
        A tiled 0.2.20 server application (``build_app_from_config``).
    """
    from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security
    from tiled.server import authentication as tiled_auth
    from tiled.server import router as tiled_router  # get_entry as the routers call it
    from tiled.server.core import json_or_msgpack
    from tiled.server.dependencies import get_root_tree
    from tiled.server.schemas import Principal
    from tiled.server.settings import get_settings
    from tiled.structures.core import StructureFamily
    from tiled.utils import ensure_awaitable

    from . import batch_lookup
    from .table_batch import plan_tables, write_tables
    from .write_funnel import is_results_write

    router = APIRouter()

    @router.get(f"/{BATCH_ROUTE}")
    async def batch_route_offered() -> dict:  # says only that the route exists
        return {"array_batch": 1}

    @router.put(f"/{BATCH_ROUTE}/{{path:path}}")
    async def put_array_many(
        request: Request,
        path: str,
        principal: Annotated[Principal | None, Depends(tiled_auth.get_current_principal)],
        root_tree: Annotated[Any, Depends(get_root_tree)],
        session_state: Annotated[dict, Depends(tiled_auth.get_session_state)],
        authn_access_tags: Annotated[Any, Depends(tiled_auth.get_current_access_tags)],
        authn_scopes: Annotated[Any, Depends(tiled_auth.get_current_scopes)],
        settings: Annotated[Any, Depends(get_settings)],
        _: Annotated[None, Security(tiled_auth.check_scopes, scopes=["write:data"])],
        persist: Annotated[bool, Query(description="Persist data to storage")] = True,
    ):
        try:
            items = decode_batch(await request.body())
        except BatchFormatError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None

        policy = getattr(request.app.state, "access_policy", None)

        async def get_entry(key: str | None, scopes: list[str], family):
            return await tiled_router.get_entry(  # the container (None) or a child
                path if key is None else f"{path.rstrip('/')}/{key}", scopes, principal,
                authn_access_tags, authn_scopes, root_tree, session_state,
                request.state.metrics, None if key is None else {family}, policy,
            )  # fmt: skip

        found = await batch_lookup.find(root_tree, path, [i[0] for i in items], policy)
        lookup = batch_lookup.looking_up(found, get_entry, StructureFamily.table)

        writes = await _array_writes(items, lookup, StructureFamily.array)  # checked first
        tables = [item for item in items if item[3] is not None]
        auth = (principal, authn_access_tags, authn_scopes)
        missing = found.missing(key for key, *_ in tables) if found else set()
        plan = tables and await plan_tables(request, path, tables, lookup, auth, settings, missing)

        async def write(entry, deserializer, media_type: str, data: bytes) -> None:
            await ensure_awaitable(entry.write, media_type, deserializer, entry, data, persist)

        jobs = [write(*w) for w in writes]
        if plan:  # tables created and filled while holding the catalog funnel (SQLite)
            funnel = getattr(request.app.state, "catalog_funnel", None)
            turn = funnel and funnel.turn(is_results_write(f"/{path}"))
            jobs.append(write_tables(request, plan, lookup, turn, auth, settings))
        for outcome in await asyncio.gather(*jobs, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
        return json_or_msgpack(request, None)

    app.include_router(router, prefix="/api/v1")
    return app


#: ``api_uri -> whether the server has the batch route``, asked once per server.
_OFFERED: dict[str, bool] = {}


def write_many(
    node, items: Mapping[str, np.ndarray], tables: Mapping[str, tuple[Any, dict]] | None = None
) -> None:
    """Write the data of ``node``'s existing arrays ``key -> array`` in one request.

    ``tables`` are created in ``node`` with their rows in the same request (a table
    that exists with the same structure, metadata and specs, as a retry finds it,
    gets its rows written again; one that differs fails the request with 409).

    Raises tiled's HTTP error when the server refuses or fails (a write that failed
    may leave the others written). A server found without the route (see the
    module docstring) gets each item in tiled's own requests instead.

    Parameters
    ----------
    node : tiled container client
        The container of the arrays (e.g. a results version).
    items : mapping of str to ndarray
        Data of each array, of its node's shape and dtype.
    tables : mapping of str to (pandas.DataFrame, dict), optional
        Tables to create, with their metadata.
    """
    from tiled.client.utils import handle_error, retry_context

    url = f"{node.context.api_uri}{BATCH_ROUTE}/{'/'.join(node.path_parts)}"
    body = encode_batch(items, tables)
    route_gone = False
    for attempt in retry_context():
        with attempt:
            response = node.context.http_client.put(
                url, content=body, headers={"Content-Type": "application/x-ssb-array-batch"}
            )
            route_gone = response.status_code == 404 and not offered(node, ask_again=True)
            if not route_gone:
                handle_error(response)
    if route_gone:
        logger.warning("%s has no batch route (any more): one request per item", url)
        _write_each(node, items, tables or {})


def _write_each(node, items: Mapping[str, np.ndarray], tables: Mapping[str, tuple]) -> None:
    """What :func:`write_many` writes, with tiled's own requests (a server without the route)."""
    from .array_put import put_array

    for key, array in items.items():
        put_array(node[key], array)
    for key, (frame, metadata) in tables.items():
        node.write_table(frame, key=key, metadata=metadata)


def offered(node: Any, *, ask_again: bool = False) -> bool:
    """Whether ``node``'s server takes :func:`write_many` (asked once per server).

    Parameters
    ----------
    node : tiled client
        Any node of the server.
    ask_again : bool, optional
        Ask the server even if its address was asked before (another server may
        answer there now).
    """
    context = node.context
    uri = str(context.api_uri)
    if ask_again or uri not in _OFFERED:
        try:
            response = context.http_client.get(f"{uri}{BATCH_ROUTE}")
            _OFFERED[uri] = response.status_code == 200 and response.json().get("array_batch") == 1
        except Exception:  # a server that does not answer fails the writes themselves
            logger.info("could not ask %s for the batch route", uri, exc_info=True)
            return False
    return _OFFERED[uri]


#: Arrays larger than this are sent alone (the 43 MB normalised stack).
BATCH_ITEM_BYTES = 8_000_000
#: Bytes of one batch request at most.
BATCH_BYTES = 16_000_000


def batches(node, arrays: Mapping[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Groups of the small ``arrays`` that :func:`write_many` sends in one request each.

    None when ``node``'s server has no batch route (a stock tiled server: the caller
    then sends one PUT per array), nor for arrays over ``BATCH_ITEM_BYTES``, nor
    for a lone array (a plain PUT does as well).

    Parameters
    ----------
    node : tiled container client
        The container holding the arrays' nodes.
    arrays : mapping of str to ndarray
        Data of arrays that exist in ``node`` already.
    """
    small = {k: a for k, a in arrays.items() if np.asarray(a).nbytes <= BATCH_ITEM_BYTES}
    if len(small) < 2 or not offered(node):
        return []
    groups: list[dict[str, np.ndarray]] = [{}]
    size = 0
    for key, array in small.items():
        nbytes = np.asarray(array).nbytes
        if groups[-1] and size + nbytes > BATCH_BYTES:
            groups.append({})
            size = 0
        groups[-1][key] = array
        size += nbytes
    return [g for g in groups if len(g) > 1]
