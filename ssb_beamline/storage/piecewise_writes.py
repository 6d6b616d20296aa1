"""The tiled server writes each Zarr chunk file in pieces of at most 1 MiB.

zarr 3.1's ``LocalStore`` writes a chunk with one ``write()`` of the whole
encoded chunk (``zarr.storage._local._put``). For a results version that is one
~31 MB call for the normalised stack of a 41-energy 512^2 scan. Linux 6.x gives
a write that large page-cache folios of 2 MiB and more (ext4's large folios),
and on a virtual machine that hands free memory back to its host (virtio-balloon
free-page reporting reports free blocks of order >= 9, i.e. 2 MiB), every such
folio is memory the host must fault in again. Measured on the project's 2-core
build machine (a Firecracker VM, Linux 6.18, ext4), writing a new 31 MB file,
twelve rounds, CPU time per file:

=====================  ==========================
``write()`` size        CPU per 31 MB file
=====================  ==========================
31 MB (one call)        ~340-410 ms (after the first 1-2 files)
4 MiB pieces            ~320-430 ms
1 MiB pieces (here)     ~9-12 ms
=====================  ==========================

On the server, after a scan's last frame, that was up to ~0.3 s of CPU on the
path to "results stored" (issue 14). Two rounds of 4 scans each, back to back,
whole chunks against 1 MiB pieces: the server used a median 1.39 s of CPU per
scan (1.03-1.49) against 1.09 s (0.97-1.17), and results were stored a median
1.24 s after the last frame (0.88-1.33) against 1.07 s (0.93-1.11). How much it
saves depends on how much freed memory the host has taken back; with 6 s
between scans (as between a beamline's scans) the median went from 0.88 to
0.77 s. On a machine without free-page reporting both sizes cost the same
(page-cache copies of ~10 ms per 31 MB); the pieces cost ~30 more system calls
per 31 MB.

:func:`install` replaces ``_put``, which ``LocalStore.set`` looks up by name at
call time, with the same steps: the parent directory made, the bytes written to
a uniquely named ``.partial`` file through zarr's own ``_atomic_write`` and
renamed over the chunk, so a failure mid-write still leaves the old chunk (or
none) and no partial file. Hand-written because neither zarr nor tiled has a
setting for the write size. Risk: a zarr without ``_put`` or ``_atomic_write``
is logged and keeps its own writes (correct, only slower on such machines);
``tests/storage/test_piecewise_writes.py`` checks the replacement is in place
and that the chunks it writes read back equal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .function_patch import is_patched, patch_function

__all__ = ["PIECE_BYTES", "install", "installed"]

logger = logging.getLogger(__name__)

#: Largest single ``write()`` of a chunk file (below the 2 MiB huge-page size).
PIECE_BYTES = 1 << 20


def installed() -> bool:
    """Whether :func:`install` has replaced zarr's ``LocalStore`` chunk write."""
    from zarr.storage import _local

    return is_patched(_local, "_put")


def install() -> bool:
    """Write Zarr chunk files in pieces of at most :data:`PIECE_BYTES` (see module).

    Process-wide: every ``LocalStore`` write in this process (the tiled server's).

    Returns
    -------
    bool
        True when in place (now or before); False when this zarr lacks the
        functions replaced (nothing changed; logged).

    Examples
    --------
    >>> install(), installed()
    (True, True)
    """
    from zarr.storage import _local

    if not hasattr(_local, "_atomic_write"):
        logger.warning("zarr.storage._local has no _atomic_write; chunk writes left as they are")
        return False
    return patch_function(_local, "_put", _in_pieces)


def _in_pieces(original: Callable[..., int]) -> Callable[..., int]:
    """zarr's ``_put`` writing the chunk in pieces of at most :data:`PIECE_BYTES`."""
    from zarr.storage import _local

    def _put(path: Path, value: Any, exclusive: bool = False) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        view = memoryview(value.as_buffer_like()).cast("B")
        with _local._atomic_write(path, "wb", exclusive=exclusive) as file:
            for start in range(0, len(view), PIECE_BYTES):
                file.write(view[start : start + PIECE_BYTES])
        return len(view)

    return _put
