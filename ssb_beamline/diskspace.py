"""Free space on the file system a writer uses: refuse a write that would fill it.

A detector must never let an HDF5 write fail for lack of space. With HDF5 2.0 (h5py
3.16), a raw-data write that fails with ``ENOSPC`` leaves the file's shared state
broken: closing the file fails ("Can't decrement id ref count"), and the next
close of any handle on it, or HDF5's own clean-up at interpreter exit, crashes
the process with a segmentation fault (seen with and without SWMR, with and
without checksums). Nothing can be done with such a file afterwards, so the
writer checks the free space before each frame and refuses, with
:class:`DiskFullError`, a frame that would leave less than a reserve free: the
file then closes cleanly with every frame written so far, and the reserve lets
the run's stop document reach the journal and tiled.

The check and the write are not atomic: another process that fills the last
reserve between them can still make HDF5 fail. The reserve is sized so that this
needs a competing writer of tens of MB within one frame time.

Standard library only, so that devices and storage can both use it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = [
    "MIN_FREE_BYTES",
    "DiskFullError",
    "check_free_space",
    "disk_full_cause",
    "file_system_of",
    "free_bytes",
]

#: Space a writer leaves free on its file system (bytes): room to close the run.
MIN_FREE_BYTES = 32 * 1024**2


def _mb(n: float) -> str:
    return f"{n / 1024**2:.1f} MB"


def file_system_of(path: str | Path) -> Path:
    """The mount point of the file system holding ``path`` (or its nearest existing parent).

    Examples
    --------
    >>> file_system_of("/proc/self")
    PosixPath('/proc')
    """
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    path = path.resolve()
    while not os.path.ismount(path):
        path = path.parent
    return path


def free_bytes(path: str | Path) -> int:
    """Bytes an unprivileged writer may still use on the file system holding ``path``."""
    path = Path(path)
    while not path.exists():
        path = path.parent
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


class DiskFullError(OSError, ValueError):
    """A write was refused (or failed) because its file system is full.

    The message names the file system (its mount point), the space left and the
    fix. It is an ``OSError`` (``errno.ENOSPC``) and, so that the command line
    reports it as an error message and not a crash, a ``ValueError``.
    """

    def __init__(self, path: str | Path, message: str) -> None:
        super().__init__(errno.ENOSPC, message)
        self.path = Path(path)
        self.mount_point = file_system_of(path)

    @classmethod
    def refused(cls, path: str | Path, what: str, needed: int, reserve: int) -> DiskFullError:
        """The error for a write of ``needed`` bytes that would leave less than ``reserve``."""
        mount = file_system_of(path)
        stat = os.statvfs(mount)
        total = stat.f_blocks * stat.f_frsize
        keeps = f" plus {_mb(reserve)} kept free to close the run" if reserve else ""
        return cls(
            path,
            f"The file system {mount} (holding {path}) is full: {_mb(free_bytes(path))} free "
            f"of {_mb(total)}, but {what} needs {_mb(needed)}{keeps}. Free space on {mount} "
            "(or move old data off it), or use a data directory on a larger file system "
            "(--data-dir or $SSB_DATA_DIR); then run `ssb-beamline sync` to store what is "
            "journaled.",
        )

    def __str__(self) -> str:
        return str(self.strerror)


def check_free_space(
    path: str | Path, needed: int, *, what: str, reserve: int = MIN_FREE_BYTES
) -> None:
    """Raise :class:`DiskFullError` unless ``needed`` bytes fit with ``reserve`` to spare.

    Parameters
    ----------
    path : the file (or folder) about to be written
    needed : bytes the write adds
    what : names the write in the message, e.g. "frame 12 of /data/x.h5"
    reserve : bytes to leave free

    Examples
    --------
    >>> check_free_space("/", 0, what="nothing", reserve=0)
    """
    if free_bytes(path) - needed < reserve:
        raise DiskFullError.refused(path, what, needed, reserve)


def disk_full_cause(exc: BaseException | None) -> DiskFullError | None:
    """The :class:`DiskFullError` behind ``exc`` (its causes and contexts), if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, DiskFullError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
