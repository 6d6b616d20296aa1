"""How the tiled server encodes the Zarr arrays it creates: zstd level 1, every chunk written.

tiled 0.2.20 stores each array a client writes (the results: maps, the normalised
stack, particle maps, coordinates) as a Zarr 3 array it creates with
``zarr.create_array(store, shape=..., chunks=..., dtype=...)``
(``ZarrArrayAdapter.init_storage``), so with zarr's defaults: the ``bytes`` codec
then zstd at libzstd's default level 3, and ``write_empty_chunks=False``, which
compares every chunk written with the fill value and leaves out the equal ones.
After a scan's last frame that was a third of the server's CPU, on the path to
"results stored" (issue 14). Measured for one 41-energy 512^2 scan's 43 MB
noisy float32 ``normalized`` stack written by zarr 3.1 (best of 3, idle machine):

================  =========  ==============  =====================
zstd level        encoding   fill-value      on disk
                             check (False)
================  =========  ==============  =====================
3 (zarr default)  ~270 ms    ~100 ms         30.2 MB
1 (here)          ~140 ms    none            30.8 MB (+2 %)
-1                ~110 ms    none            34.4 MB (+14 %)
no compression    ~0 ms      none            43.0 MB (+42 %)
================  =========  ==============  =====================

The ten 1-2 MB maps compress as well at level 1 as at 3 (within 10 %, in half
the 1-10 ms). Level 1 halves the encoding for 2 % more disk; leaving the stack
uncompressed would save ~140 ms more per scan for 13 MB more per scan, which a
facility keeping every scan's results would not take, so level 1 applies to
every array, whatever its size or type.

Blosc-lz4 with byte shuffle was measured too (issue 14, the same stack): ~74 ms
against zstd level 1's ~143 ms single-threaded on an idle machine (~110 against
~330 ms of process CPU for a zarr write under load), for 40.0 MB on disk instead
of 30.8 (ratio 0.93 against 0.72): it keeps less than a third of the disk saving
for half the encoding, so zstd level 1 stays.

``write_empty_chunks=True`` skips the check (zarr compares through a void view,
~100 ms for 43 MB): a chunk equal to the fill value is then written instead of
left out, and a reader finds the same values either way (zarr, tiled, and
:mod:`.result_files_data`, which reads a missing chunk as fill values). Only
arrays created empty and never written keep no chunk files; such a chunk costs
its compressed size (a few bytes at zstd).

zarr 3.1 has no setting for the default compressors (``array.v3_default_compressors``
was removed in 3.1.0), so tiled's call is wrapped (:mod:`.function_patch`) to pass
``compressors``; ``write_empty_chunks`` is zarr's process-wide
``array.write_empty_chunks`` setting, read when tiled opens an array to write it.
Risk: the wrapper relies on tiled 0.2's adapter calling its module's
``create_array`` by name; a tiled without it is logged and keeps zarr's defaults
(still correct, only slower), and ``tests/storage/test_array_codecs.py`` reads
the codecs back from ``zarr.json``. Arrays written before (zstd level 3, no
empty chunks) read as before: the codecs are recorded in each array's ``zarr.json``.
The same wrapper also replaces the storage a lost node creation left at a new
node's path (:mod:`.leftover_arrays`), a function being patched once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .function_patch import is_patched, patch_function
from .leftover_arrays import replacing_leftovers

__all__ = ["ZSTD_LEVEL", "install", "installed"]

logger = logging.getLogger(__name__)

#: zstd level of new arrays (libzstd's default, and zarr's, is 3).
ZSTD_LEVEL = 1


def _with_codecs(create_array: Callable[..., Any]) -> Callable[..., Any]:
    """``create_array`` compressing with zstd at :data:`ZSTD_LEVEL` unless told otherwise."""
    from zarr.codecs import ZstdCodec

    def create_with_codecs(store: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("compressors", (ZstdCodec(level=ZSTD_LEVEL),))
        return create_array(store, *args, **kwargs)

    return create_with_codecs


def installed() -> bool:
    """Whether :func:`install` is in place in this process."""
    import zarr
    from tiled.adapters import zarr as adapter

    return is_patched(adapter, "create_array") and bool(zarr.config.get("array.write_empty_chunks"))


def install() -> bool:
    """New Zarr arrays of the tiled server: zstd level 1, every chunk written (see module).

    Process-wide: the tiled server in this process and any zarr write here write
    every chunk (values read the same).

    Returns
    -------
    bool
        True when both are in place (now or before); False when tiled's adapter
        has no ``create_array`` to wrap (zarr's default codecs stay; logged).

    Examples
    --------
    >>> install(), installed()
    (True, True)
    """
    import zarr
    from tiled.adapters import zarr as adapter

    zarr.config.set({"array.write_empty_chunks": True})
    if getattr(adapter, "ZARR_LIB_V2", False):  # zarr 2's init_array takes other codecs
        logger.warning("zarr 2 in use: new arrays keep zarr's default codecs")
        return False
    # the one wrapper of tiled's create_array also replaces lost creations' leftovers
    return patch_function(adapter, "create_array", lambda f: _with_codecs(replacing_leftovers(f)))
