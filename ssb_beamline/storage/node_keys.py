"""Node keys ``.`` and ``..`` refused: tiled would store their data outside their node.

tiled 0.2.20 accepts any key for a new node and makes the node's array storage
the path of its keys joined under the storage root (``ZarrArrayAdapter.init_storage``,
each key URL-quoted, which leaves ``.`` and ``..`` as they are). A node ``..``
in container ``x`` then gets its Zarr array at ``files/`` itself (``files/x/..``),
a node ``.`` at its container's directory, among other nodes' arrays; neither
node can be read back (its URL resolves to its parent), and a second such node
in another container meets the first's files. Measured on the project's server
before this module: ``write_array(..., key="..")`` created ``files/zarr.json``
and answered 404.

:func:`install` wraps the catalog's ``create_node`` (which tiled's
``POST /metadata`` and the batch route's tables call) to answer such a key with
a 400 that says what to do, before anything is written. Hand-written because
tiled checks no key.
"""

from __future__ import annotations

from typing import Any

from .function_patch import is_patched, patch_function

__all__ = ["REFUSED_KEYS", "install", "installed"]

#: Keys whose storage path would leave the node's own directory.
REFUSED_KEYS = frozenset({".", ".."})


def _refusing_dot_keys(original):
    """``create_node`` answering a key of :data:`REFUSED_KEYS` with a 400."""
    from fastapi import HTTPException

    async def create_node(self, structure_family, metadata, key=None, *args: Any, **kwargs: Any):
        if key in REFUSED_KEYS:
            raise HTTPException(
                status_code=400,
                detail=f"A node cannot be called {key!r}: its data would be stored outside "
                "its own directory; choose another key.",
            )
        return await original(self, structure_family, metadata, key, *args, **kwargs)

    return create_node


def installed() -> bool:
    """Whether :func:`install` is in place in this process."""
    from tiled.catalog.adapter import CatalogNodeAdapter

    return is_patched(CatalogNodeAdapter, "create_node")


def install() -> bool:
    """Refuse keys ``.`` and ``..`` for new nodes (idempotent).

    Examples
    --------
    >>> install(), installed()
    (True, True)
    """
    from tiled.catalog.adapter import CatalogNodeAdapter

    return patch_function(CatalogNodeAdapter, "create_node", _refusing_dot_keys)
