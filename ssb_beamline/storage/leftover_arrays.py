"""A new array node whose storage directory is a leftover of a creation never committed.

tiled 0.2.20 creates an array node in one catalog transaction: it inserts the
node's row, creates the node's Zarr array in the array storage
(``ZarrArrayAdapter.init_storage``, zarr's ``create_array``), then inserts its
data source and commits. When the commit never happens or is lost (the server
killed mid-request; a PostgreSQL stopped at once or restored from a backup, or
one with ``synchronous_commit=off`` that loses its last commits in a crash),
the array's directory stays in the storage with no node referring to it. Every
later creation of a node at that path then failed with zarr's
``ContainsArrayError``, a 500, for ever: ``ssb-beamline sync`` could never
store the results of a run whose prepared version the catalog lost, and kept
them in the journal (seen in ``tests/storage/test_postgresql_outage.py``, the
skeleton's commits lost with the throwaway cluster's last WAL).

:func:`replacing_leftovers` wraps the ``create_array`` that tiled's adapter
calls so that an existing array at the new node's path is replaced when the path
holds nothing but that array's files (:func:`holds_one_array`). That is safe
there: tiled calls it only from ``init_storage``, which ``create_node`` calls
after inserting the new node's row, and a node already at that path makes that
insert fail (409 ``Collision``) before any storage is touched; so an array alone
at the path belongs to no node and no reader can reach it. A path that holds
more (another node's array under it, as at a parent directory where a key ``..``
led tiled before :mod:`.node_keys` refused it) or a group is left alone, and the
creation fails as before. A replacement is logged. Installed with the codecs'
wrapper of the same function (:mod:`.array_codecs`), since a function is patched
once (:mod:`.function_patch`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = ["holds_one_array", "replacing_leftovers"]

logger = logging.getLogger(__name__)


def replacing_leftovers(create_array: Callable[..., Any]) -> Callable[..., Any]:
    """``create_array`` that replaces an array left alone at the path by a lost creation.

    Parameters
    ----------
    create_array : callable
        zarr's ``create_array(store, ...)`` as tiled's Zarr adapter calls it.
    """
    from zarr.errors import ContainsArrayError

    def create_replacing_leftovers(store: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return create_array(store, *args, **kwargs)
        except ContainsArrayError:
            if kwargs.get("overwrite") or not holds_one_array(store):
                raise
            logger.warning(
                "replacing the leftover Zarr storage at %s: no catalog node refers to it "
                "(an earlier creation of this node was never committed)",
                store,
            )
            return create_array(store, *args, overwrite=True, **kwargs)

    return create_replacing_leftovers


def holds_one_array(store: Any) -> bool:
    """Whether ``store`` holds exactly one Zarr array's files: its ``zarr.json`` and chunks.

    Anything else under it (another node's array, as under a path that leads back
    to a parent directory, such as a key ``..``) rules a replacement out.

    Parameters
    ----------
    store : zarr.abc.store.Store
        The store at the new node's path.
    """
    from zarr.core.sync import sync

    async def keys() -> list[str]:
        return [key async for key in store.list()]

    return all(key in ("zarr.json", "c") or key.startswith("c/") for key in sync(keys()))
