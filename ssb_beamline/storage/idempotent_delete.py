"""Deleting a node whose data file is already gone succeeds instead of failing with a 500.

tiled 0.2.20 deletes a node in two steps: it removes the catalog rows (nodes, data
sources, assets) and commits, then unlinks each internally managed file
(``tiled.catalog.adapter.delete_physical_asset``). A file that was never written
makes the second step raise ``FileNotFoundError`` and the request answers 500,
although the catalog entry is already gone. The results layout meets exactly that:
a results version prepared while the scan ran (its table nodes created, their
Parquet partitions not yet written) whose server was killed before the data came.
``ssb-beamline sync`` then stores the complete copy and deletes that attempt, and
the delete must succeed, or sync reports a failure for a run it did store.

:func:`install` wraps the function tiled looks up at call time so that a file or
directory already absent counts as deleted (logged). Any other error (permissions,
a storage database that refuses) still fails the request. Hand-written because
tiled has no option for it; :func:`install` is idempotent.
"""

from __future__ import annotations

import logging

from .function_patch import is_patched, patch_function

__all__ = ["install", "installed"]

logger = logging.getLogger(__name__)


def installed() -> bool:
    """Whether :func:`install` has wrapped tiled's ``delete_physical_asset``."""
    from tiled.catalog import adapter

    return is_patched(adapter, "delete_physical_asset")


def install() -> bool:
    """Let deleting an asset whose file is already gone succeed (module docstring).

    Returns
    -------
    bool
        True when installed (now or before), False when this tiled has no
        ``delete_physical_asset`` to wrap (then nothing changed).

    Examples
    --------
    >>> install()
    True
    >>> installed()
    True
    """
    from tiled.catalog import adapter

    return patch_function(adapter, "delete_physical_asset", _tolerant)


def _tolerant(original):
    """``delete_physical_asset`` for which a file already gone counts as deleted."""

    def delete_physical_asset(data_uri, *args, **kwargs):
        try:
            return original(data_uri, *args, **kwargs)
        except FileNotFoundError as exc:
            logger.info("asset %s was already gone (%s); its entry is deleted", data_uri, exc)
            return None

    return delete_physical_asset
