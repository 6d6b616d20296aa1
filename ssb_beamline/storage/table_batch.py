"""Table nodes created with their rows inside a batch request (see :mod:`.array_batch`).

A results version's particle tables are made after the scan's stop (their columns
and rows depend on the run), and tiled 0.2.20 makes a table with two requests:
``POST /metadata/<container>`` (the node, from a ``TableStructure`` data source)
then ``PUT /table/full/<container>/<key>`` (its rows, an Arrow file). After the
stop each request costs the busy server 15-25 ms of CPU and queues behind the
normalised stack, so the batch route also takes table items: an item whose
header holds ``"node"`` (exactly the body tiled's client POSTs to create the
node, see :func:`table_item`) is created, then its bytes written as its rows.

Server side each step is tiled's own: the ``write:metadata`` and ``create:node``
scopes (tiled's ``check_scopes``) and ``get_entry`` on the container as
``post_metadata`` asks them, tiled's ``PostMetadataRequest`` schema, the spec
validators, the access policy's ``init_node``, the catalog's ``create_node``,
then ``get_entry`` (``write:data``, tables) and the node's ``write`` as
``PUT /table/full`` does. Every item is checked before anything is written.
A table that exists already with the same structure, metadata and specs (a
retried request whose first attempt created it) is not created again: its rows
are written again, which is idempotent; one that differs is a 409 conflict.
Hand-written because tiled has no call creating several nodes with their data.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

__all__ = [
    "TABLE_MEDIA_TYPE",
    "batch_tables",
    "check_table_node",
    "plan_tables",
    "table_item",
    "write_tables",
]

logger = logging.getLogger(__name__)

#: The media type of a table item's bytes (what tiled's client PUTs).
TABLE_MEDIA_TYPE = "application/vnd.apache.arrow.file"


def table_item(key: str, frame: Any, metadata: dict) -> tuple[dict, bytes]:
    """The header entry and bytes creating table ``key`` with ``frame``'s rows.

    The ``node`` of the header is the body tiled's ``write_table`` POSTs, the bytes
    what it then PUTs, so a reader finds the same node either way.

    Parameters
    ----------
    key : str
        The table's key in the container.
    frame : pandas.DataFrame
        The table.
    metadata : dict
        The node's metadata (JSON-serialisable).
    """
    import orjson
    from tiled.client.utils import normalize_specs
    from tiled.serialization.table import serialize_arrow
    from tiled.structures.core import StructureFamily
    from tiled.structures.data_source import DataSource
    from tiled.structures.table import TableStructure
    from tiled.utils import safe_json_dump

    source = DataSource(
        structure=TableStructure.from_pandas(frame), structure_family=StructureFamily.table
    )
    node = {
        "metadata": metadata, "structure_family": StructureFamily.table,
        "specs": normalize_specs([]), "data_sources": [source],
        "access_tags": None, "id": key,
    }  # fmt: skip
    blob = bytes(serialize_arrow(TABLE_MEDIA_TYPE, frame, {}))
    return {"key": key, "media_type": TABLE_MEDIA_TYPE, "node": orjson.loads(
        safe_json_dump(node))}, blob  # fmt: skip


def check_table_node(key: str, node: Any):
    """tiled's ``PostMetadataRequest`` of a table item; ``ValueError`` if it is not one.

    Parameters
    ----------
    key : str
        The item's key, which must be the node's ``id``.
    node : dict
        The item's ``node`` (see :func:`table_item`).
    """
    import pydantic
    from tiled.server.schemas import PostMetadataRequest
    from tiled.structures.core import StructureFamily

    try:
        body = PostMetadataRequest.model_validate(node)
    except pydantic.ValidationError as exc:
        raise ValueError(f"item {key!r}: not a node tiled can create: {exc}") from None
    if body.id != key or body.structure_family != StructureFamily.table:
        raise ValueError(f"item {key!r}: the node must be a table with id {key!r}")
    if len(body.data_sources) != 1 or body.data_sources[0].assets:
        raise ValueError(f"item {key!r}: a table has one data source without assets")
    return body


def _structure_json(structure: Any) -> Any:
    """A structure (dataclass or pydantic model) as plain JSON, to compare two."""
    import dataclasses

    import orjson
    from tiled.utils import safe_json_dump

    if dataclasses.is_dataclass(structure):
        structure = dataclasses.asdict(structure)
    elif hasattr(structure, "model_dump"):
        structure = structure.model_dump()
    return orjson.loads(safe_json_dump(structure))


async def _existing(lookup, key: str, body, missing: Collection[str]) -> Any:
    """The node ``key`` if it exists as ``body`` would make it; None if missing; else 409."""
    from fastapi import HTTPException

    if key in missing:  # known from the batch's one lookup
        return None
    try:
        entry = await lookup(key, ["write:data"])
    except HTTPException as exc:
        if exc.status_code == 404:
            return None
        raise
    same = (
        entry.structure_family == body.structure_family
        and _structure_json(entry.structure()) == _structure_json(body.data_sources[0].structure)
        and dict(entry.metadata()) == dict(body.metadata)
        and [s.name for s in entry.specs] == [s.name for s in body.specs]
    )
    if not same:
        raise HTTPException(status_code=409, detail=f"{key} exists with other content.")
    return entry


async def plan_tables(
    request, path: str, tables: list, lookup, auth, settings, missing: Collection[str] = ()
) -> list:
    """Check a batch's table items without writing; what :func:`write_tables` takes.

    Raises the HTTP error tiled's ``POST /metadata`` would (401 without the
    ``write:metadata`` and ``create:node`` scopes, 403/404 from ``get_entry``, 405
    for a container that takes no data, 415 for an unknown media type, 409 for a
    table that exists with other content).

    Parameters
    ----------
    request : starlette.requests.Request
        The batch request.
    path : str
        The container's path.
    tables : list of (str, str, bytes, PostMetadataRequest)
        The table items: key, media type, rows, node.
    lookup : callable
        ``await lookup(key or None, scopes)``: tiled's ``get_entry`` of the child
        ``key`` (a table) or of the container (None).
    auth : tuple
        The request's principal, access tags and scopes (tiled's dependencies).
    settings : tiled.server.settings.Settings
        The server's settings.
    missing : collection of str, optional
        Keys known not to exist in the container (not looked up again).
    """
    from fastapi import HTTPException
    from fastapi.security import SecurityScopes
    from tiled.media_type_registration import default_deserialization_registry as registry
    from tiled.server.authentication import check_scopes

    scopes = SecurityScopes(["write:metadata", "create:node"])
    await check_scopes(request, scopes, auth[2], settings)
    container = await lookup(None, scopes.scopes)
    if not getattr(container, "writable", False):
        raise HTTPException(status_code=405, detail=f"Data cannot be written at {path}")
    planned = []
    for key, media_type, data, body in tables:
        try:
            deserializer = registry.dispatch("table", media_type)
        except Exception:
            raise HTTPException(status_code=415, detail=f"{key}: {media_type}") from None
        entry = await _existing(lookup, key, body, missing)
        planned.append((key, media_type, data, body, deserializer, entry))
    return [container, planned]


async def write_tables(request, plan: list, lookup, funnel, auth, settings) -> None:
    """Create the planned tables that are missing, then write every table's rows.

    Parameters
    ----------
    request : starlette.requests.Request
        The batch request.
    plan : list
        From :func:`plan_tables`.
    lookup : callable
        As for :func:`plan_tables`.
    funnel : async context manager or None
        Held while the catalog is written (see :mod:`.write_funnel`); None: none.
    auth : tuple
        The request's principal, access tags and scopes.
    settings : tiled.server.settings.Settings
        The server's settings.
    """
    import contextlib

    from fastapi import HTTPException
    from tiled.utils import ensure_awaitable

    container, planned = plan
    async with funnel or contextlib.nullcontext():
        for key, media_type, data, body, deserializer, existing in planned:
            if existing is None:
                await _create(request, container, body, auth, settings)
            entry = existing or await lookup(key, ["write:data"])
            if not hasattr(entry, "write"):
                raise HTTPException(status_code=405, detail=f"{key} does not support writing.")
            await ensure_awaitable(entry.write, media_type, deserializer, entry, data)


async def _create(request, container, body, auth, settings) -> None:
    """``container.create_node`` as tiled's ``POST /metadata`` does (specs, access tags)."""
    from fastapi import HTTPException
    from tiled.access_control.protocols import normalize_access_tags
    from tiled.utils import ensure_awaitable
    from tiled.validation_registration import ValidationError, default_validation_registry

    structure = body.data_sources[0].structure
    for spec in reversed(body.specs):  # tiled's validate_specs
        if spec not in default_validation_registry:
            if settings.reject_undeclared_specs:
                raise HTTPException(status_code=400, detail=f"Unrecognized spec: {spec.name}")
            continue
        validator = default_validation_registry(spec)
        try:
            await ensure_awaitable(
                validator, spec, body.metadata, None, body.structure_family, structure
            )
        except ValidationError as exc:
            raise HTTPException(status_code=400, detail=f"{spec.name}: {exc}") from None
    policy = getattr(request.app.state, "access_policy", None)
    access_tags = normalize_access_tags()
    if policy is not None and hasattr(policy, "init_node"):
        principal, tags, scopes = auth
        try:
            _, access_tags = await policy.init_node(principal, tags, scopes, access_tags=None)
        except ValueError as exc:
            raise HTTPException(status_code=403, detail=f"Access tags refused: {exc}") from None
    await container.create_node(
        metadata=body.metadata, structure_family=body.structure_family, key=body.id,
        specs=body.specs, data_sources=body.data_sources, access_tags=access_tags,
    )  # fmt: skip


#: Tables larger than this (in memory) are made with tiled's own two requests.
TABLE_BYTES = 4_000_000


def batch_tables(
    node, arrays: Mapping[str, Any], prepared: Mapping[str, Any], tables: Mapping,
    groups: list[dict], metadata: dict,
) -> tuple[list[dict], list[dict], dict]:  # fmt: skip
    """Small ``tables`` sent with the first batch of ``groups``; what is left for tiled's calls.

    Returns the groups (one more when there was none: the tables and a lone
    small prepared array), each group's tables ``key -> (frame, metadata)``, and
    the tables left. None is batched when ``node``'s server has no batch route.

    Parameters
    ----------
    node : tiled container client
        The results version.
    arrays : mapping of str to ndarray
        The version's arrays.
    prepared : mapping of str
        The arrays created already (only their data are sent).
    tables : mapping of str to pandas.DataFrame
        The version's tables.
    groups : list of dict
        Batches of prepared arrays (:func:`.array_batch.batches`).
    metadata : dict
        Metadata of every table node.
    """
    import numpy as np

    from .array_batch import BATCH_ITEM_BYTES, offered

    small = {
        k: t
        for k, t in tables.items()  # not a DataFrame: left to tiled's write_table
        if hasattr(t, "memory_usage") and t.memory_usage(deep=True).sum() <= TABLE_BYTES
    }
    if not small or not offered(node):
        return groups, [{} for _ in groups], dict(tables)
    if not groups:
        groups = [{k: a for k, a in arrays.items()
                   if k in prepared and np.asarray(a).nbytes <= BATCH_ITEM_BYTES}]  # fmt: skip
    batched = [{k: (t, metadata) for k, t in small.items()}] + [{} for _ in groups[1:]]
    return groups, batched, {k: t for k, t in tables.items() if k not in small}
