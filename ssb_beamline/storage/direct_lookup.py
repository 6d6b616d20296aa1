"""The tiled server finds a request's node in one catalog query, not one per path segment.

tiled 0.2.20 resolves the path of every request (``get_entry``) by walking it one
segment at a time: ``results/<uid>/v1/soc`` costs four node queries, each built
afresh (an aliased join per segment, its cache key, the eager loads of the node's
data sources), so that an access policy can filter every level. The catalog
itself can jump to the node of a whole path in one query
(``lookup_adapter(segments)``, which also handles paths that go on inside a file),
and tiled's own comment says it walks only for the access policy. Profiled on the
embedded server, building and running those per-segment queries was the largest
share of the event loop's time for a small array write (about 17 SQL statements
for a 1 MB PUT), and the event loop is the one thread every request of a scan's
results upload waits for.

:func:`install` wraps ``get_entry`` where tiled's routers call it: when the app
has no access policy (the project's servers authenticate with API keys and
enforce read-only keys before tiled, see :mod:`.access`), the entry is looked up
in one call; with an access policy the walk is tiled's own. What a request finds,
and every error (404 ``No such entry``, 410 for a broken link, 404 for another
structure family), is unchanged.

The one query is built by tiled's ``node_from_segments``, which makes a new
``aliased(Node)`` per path segment on every call: 3.5 ms for a 4-segment path on
this machine, most of a lookup. An alias is an immutable construct that any
number of statements may share, so :func:`install` also wraps it to reuse one
alias per depth; the statement (SQL text and parameters) is the same. Hand-written
because tiled has no option for either; :func:`install` is idempotent and leaves
a tiled without these functions as it is.
"""

from __future__ import annotations

import threading
from typing import Any

from .function_patch import is_patched, patch_function

__all__ = ["install", "installed"]

#: Path depths whose aliases are kept (deeper paths build their own, as tiled does).
MAX_DEPTH = 32
#: tiled modules that imported ``get_entry`` by name (each holds its own reference).
_CALLERS = ("tiled.server.router", "tiled.server.zarr", "tiled.server.webhook_router")


def _modules() -> list[Any]:
    import importlib

    found = []
    for name in _CALLERS:
        try:
            found.append(importlib.import_module(name))
        except ImportError:  # another tiled version without that router
            continue
    return found


def installed() -> bool:
    """Whether :func:`install` has wrapped the routers' ``get_entry`` and the path query."""
    from tiled.catalog import adapter

    modules = [m for m in _modules() if hasattr(m, "get_entry")]
    patched = all(is_patched(m, "get_entry") for m in modules)
    return bool(modules) and patched and is_patched(adapter, "node_from_segments")


def install() -> bool:
    """Look a request's node up in one query when there is no access policy (see module).

    Returns
    -------
    bool
        True when every router that calls ``get_entry`` got the wrapper (now or
        before); False when a router lacks it (that one is left as it was).

    Examples
    --------
    >>> install()
    True
    >>> installed()
    True
    """
    from tiled.catalog import adapter

    done = [patch_function(m, "get_entry", _direct) for m in _modules()]
    done.append(patch_function(adapter, "node_from_segments", _shared_aliases))
    return len(done) > 1 and all(done)


def _shared_aliases(original):
    """``node_from_segments`` building the same statement from one alias per depth."""
    from sqlalchemy import select
    from sqlalchemy.orm import aliased
    from tiled.catalog import orm

    aliases: dict[int, list[Any]] = {}
    lock = threading.Lock()

    def node_from_segments(segments, root_id=0):
        depth = len(segments)
        if depth > MAX_DEPTH:
            return original(segments, root_id=root_id)
        nodes = aliases.get(depth)
        if nodes is None:
            with lock:
                nodes = aliases.setdefault(depth, [aliased(orm.Node) for _ in range(depth)])
        nodes = [*nodes, orm.Node]  # the child selected, as tiled's
        statement = select(nodes[-1]).select_from(nodes[0]).where(nodes[0].id == root_id)
        for i, segment in enumerate(segments):
            parent, child = nodes[i], nodes[i + 1]
            statement = statement.join(child, child.parent == parent.id).where(child.key == segment)
        return statement

    return node_from_segments


def _direct(original):
    """``get_entry`` that resolves a path in one lookup when nothing needs the walk."""
    from fastapi import HTTPException
    from starlette.status import HTTP_404_NOT_FOUND, HTTP_410_GONE
    from tiled.server.core import NoEntry
    from tiled.utils import BrokenLink

    async def lookup(root_tree, parts: list[str], session_state, structure_families, path: str):
        """tiled's ``get_entry`` without an access policy, the path looked up at once."""
        entry = root_tree
        if hasattr(entry, "with_session_state") and session_state:
            entry = entry.with_session_state(session_state)
        try:
            entry = await entry.lookup_adapter(parts)
        except BrokenLink as err:
            raise HTTPException(status_code=HTTP_410_GONE, detail=err.args[0]) from None
        except NoEntry:
            raise HTTPException(
                status_code=HTTP_404_NOT_FOUND, detail=f"No such entry: {parts}"
            ) from None
        if structure_families is None or entry.structure_family in structure_families:
            return entry
        raise HTTPException(
            status_code=HTTP_404_NOT_FOUND,
            detail=(
                f"The node at {path} has structure family {entry.structure_family} "
                "and this endpoint is compatible with structure families "
                f"{structure_families}"
            ),
        )

    async def get_entry(
        path: str,
        security_scopes: list[str],
        principal: Any,
        authn_access_tags: Any,
        authn_scopes: Any,
        root_tree: Any,
        session_state: dict,
        metrics: dict,
        structure_families: Any = None,
        access_policy: Any = None,
    ) -> Any:
        parts = [segment for segment in path.split("/") if segment]
        if access_policy is not None or len(parts) < 2 or not _jumps(root_tree):
            return await original(
                path, security_scopes, principal, authn_access_tags, authn_scopes,
                root_tree, session_state, metrics, structure_families, access_policy,
            )  # fmt: skip
        return await lookup(root_tree, parts, session_state, structure_families, path)

    return get_entry


def _jumps(root_tree: Any) -> bool:
    """Whether the root is tiled's catalog with no conditions (one query reaches any node)."""
    return hasattr(root_tree, "lookup_adapter") and not getattr(root_tree, "conditions", None)
