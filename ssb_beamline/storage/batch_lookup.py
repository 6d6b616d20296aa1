"""The nodes of one batch request looked up in one catalog session, not two per node.

The batch route (:mod:`.array_batch`) writes a results version's arrays and
tables in one request, but tiled 0.2.20 looks each node up on its own: one
session for the node (``lookup_adapter``), then another for its data sources and
assets when it is written (``get_adapter``), each a ``BEGIN``, four or five
``SELECT`` and a ``ROLLBACK``; a table not there yet costs four sessions more,
``lookup_adapter`` checking whether each shorter path is a file it could look
inside. Every statement is a round trip that wakes a PostgreSQL backend on the
cores the client's analysis and the server share (issue 14). Counted in
PostgreSQL's statement log in the second after a 41-energy 512^2 scan's last
frame: 398 statements (70 sessions) before, 181 (30) with this module; the
server's CPU in that second fell from 0.73-1.11 s to 0.63-0.84 s (8 scans each,
interleaved) and the last frame to results stored from 0.76-1.57 s (median
1.03 s) to 0.73-0.97 s (median 0.82 s).

:func:`find` loads the container and the requested children with their data
sources, structures and assets in one session (about ten statements whatever
the number of nodes). :meth:`Found.entry` makes each child's adapter exactly as
``lookup_adapter`` does (tiled's ``STRUCTURES`` class of the node), with its
``data_sources`` answered from what was loaded, so tiled's own ``write`` (and
its checks of the assets' storage) runs unchanged. Like :mod:`.direct_lookup`,
which the route's per-node lookups use, it applies only without an access
policy and on a catalog root without conditions; otherwise (and for a node it
did not find, so that a request gets tiled's own 404) the route looks nodes up
one by one as before. Hand-written because tiled has no call looking up several
nodes at once.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Found", "can_find", "find", "looking_up"]

logger = logging.getLogger(__name__)


@dataclass
class Found:
    """A container and those of its children that were asked for, from one session.

    Attributes
    ----------
    container : tiled catalog adapter
        The container's adapter (as ``get_entry`` returns it).
    nodes : dict of str to tiled.catalog.orm.Node
        The children found, by key, with their data sources and assets loaded.
    """

    container: Any
    nodes: dict[str, Any] = field(default_factory=dict)

    def missing(self, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` that are not children of the container."""
        return set(keys) - set(self.nodes)

    def entry(self, key: str, family: Any) -> Any:
        """The adapter of child ``key`` if it was found with structure family ``family``; else None.

        Parameters
        ----------
        key : str
            The child's key.
        family : tiled.structures.core.StructureFamily
            The structure family the request needs.
        """
        from tiled.catalog.adapter import STRUCTURES

        node = self.nodes.get(key)
        if node is None or node.structure_family != family:
            return None
        entry = STRUCTURES[node.structure_family](self.container.context, node)
        entry.data_sources = _loaded_sources(node)  # instead of a query per call
        return entry


def looking_up(found: Found | None, get_entry, default_family: Any):
    """``await lookup(key, scopes, family=default_family)`` answering from ``found`` first.

    The container (``key`` None) and the children ``found`` holds with ``family``
    come from it; any other node from ``await get_entry(key, scopes, family)``
    (tiled's lookup, with its errors).

    Parameters
    ----------
    found : Found or None
        From :func:`find` (None: every node from ``get_entry``).
    get_entry : callable
        The request's own lookup of the container (None) or a child.
    default_family : tiled.structures.core.StructureFamily
        The family looked for when the caller names none.
    """

    async def lookup(key: str | None, scopes: list[str], family: Any = default_family) -> Any:
        if found is not None:
            entry = found.container if key is None else found.entry(key, family)
            if entry is not None:
                return entry
        return await get_entry(key, scopes, family)

    return lookup


def _loaded_sources(node: Any):
    """``data_sources`` of a catalog adapter answered from ``node``'s loaded data sources."""
    from tiled.server.schemas import DataSource

    async def data_sources(include_assets: bool = False) -> list:
        return [DataSource.from_orm(ds, include_assets=include_assets) for ds in node.data_sources]

    return data_sources


def can_find(root_tree: Any, access_policy: Any) -> bool:
    """Whether :func:`find` applies: no access policy, and a catalog root without conditions.

    Parameters
    ----------
    root_tree : tiled adapter
        The server's root.
    access_policy : tiled access policy or None
        The app's access policy.
    """
    from .direct_lookup import _jumps  # the root the direct path lookup jumps from

    return (
        access_policy is None
        and _jumps(root_tree)
        and hasattr(root_tree, "context")
        and not hasattr(root_tree, "with_session_state")
        and not getattr(root_tree, "access_filters", None)  # tiled's own lookup walks then
    )


async def find(
    root_tree: Any, path: str, keys: Collection[str], access_policy: Any
) -> Found | None:
    """The container at ``path`` and its children ``keys``, in one session.

    Returns None when the lookup does not apply (see :func:`can_find`) or the
    container is not a catalog container; the caller then looks nodes up one by
    one, which gives tiled's own errors.

    Parameters
    ----------
    root_tree : tiled catalog adapter
        The server's root (tiled's ``get_root_tree``).
    path : str
        The container's path, ``/``-separated.
    keys : collection of str
        The children wanted (those missing are left out of :attr:`Found.nodes`).
    access_policy : tiled access policy or None
        The app's access policy.
    """
    parts = [segment for segment in path.split("/") if segment]
    if not parts or not can_find(root_tree, access_policy):
        return None
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload
    from tiled.catalog import orm
    from tiled.catalog.adapter import STRUCTURES, node_from_segments
    from tiled.structures.core import StructureFamily

    sources = selectinload(orm.Node.data_sources)
    loads = [
        sources.selectinload(orm.DataSource.structure),
        sources.selectinload(orm.DataSource.asset_associations).selectinload(
            orm.DataSourceAssetAssociation.asset
        ),
    ]
    parent = node_from_segments(parts, root_id=root_tree.node.id).options(loads[0])
    async with root_tree.context.session() as db:
        container = (await db.execute(parent)).scalar()
        if container is None or container.structure_family != StructureFamily.container:
            return None
        wanted = select(orm.Node).where(
            orm.Node.parent == container.id, orm.Node.key.in_(list(keys))
        )
        children = (await db.execute(wanted.options(*loads))).scalars().all() if keys else []
    found = Found(STRUCTURES[container.structure_family](root_tree.context, container))
    found.nodes = {node.key: node for node in children}
    logger.debug("found %d of %d nodes in %s at once", len(found.nodes), len(keys), path)
    return found
