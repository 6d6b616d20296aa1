"""Files and folders private to their owner: folders 0700, files 0600, set at creation.

Raw frames, documents, results and keys are the facility user's data: no other
local account may read them. Modes are given where each file is created (``os.open``
with 0600, ``mkdir`` with 0700, a 0077 umask in the server's own process), never
by a ``chmod`` afterwards, which would leave a moment when the file is readable.

Libraries that create files themselves (h5py) get an empty private file to open:
opening an existing file for writing keeps its mode.

Standard library only, so that devices and storage can both use it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import IO, Any

__all__ = [
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "PRIVATE_UMASK",
    "create_private_file",
    "make_private_dir",
    "open_private",
    "restrict_dir",
]

logger = logging.getLogger(__name__)

#: Mode of every folder the package creates.
PRIVATE_DIR = 0o700
#: Mode of every file the package creates.
PRIVATE_FILE = 0o600
#: umask of processes that only serve the package's data (the tiled server).
PRIVATE_UMASK = 0o077

_FLAGS = {
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
}


def make_private_dir(path: str | Path) -> Path:
    """Create ``path`` and any missing parents with mode 0700 (existing ones are kept).

    Examples
    --------
    >>> import tempfile, stat
    >>> new = make_private_dir(Path(tempfile.mkdtemp()) / "a" / "b")
    >>> oct(stat.S_IMODE(new.stat().st_mode)), oct(stat.S_IMODE(new.parent.stat().st_mode))
    ('0o700', '0o700')
    """
    path = Path(path)
    missing = []
    for part in (path, *path.parents):
        if part.exists():
            break
        missing.append(part)
    for part in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process
            part.mkdir(mode=PRIVATE_DIR)
    return path


def open_private(path: str | Path, mode: str = "w", **kwargs: Any) -> IO:
    """``open(path, mode)``, but a file it creates has mode 0600.

    ``mode`` is ``"w"``, ``"a"`` or ``"x"``, with ``"b"`` for binary; ``kwargs`` go
    to :func:`os.fdopen` (e.g. ``encoding``).
    """
    fd = os.open(path, _FLAGS[mode.replace("b", "")], PRIVATE_FILE)
    return os.fdopen(fd, mode, **kwargs)


def create_private_file(path: str | Path) -> Path:
    """Create an empty private (0600) file.

    Create ``path`` empty with mode 0600, for libraries that create files with the
    default mode (e.g. ``h5py.File(path, "w")``). An existing file is replaced, not
    truncated: truncating keeps its mode, and any descriptor another user opened on
    it while it was readable would read what is written next.
    """
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    os.close(os.open(path, _FLAGS["x"], PRIVATE_FILE))
    return Path(path)


def restrict_dir(path: str | Path) -> None:
    """Make an existing folder of this user 0700 if group or others can enter it.

    For data directories made by versions that did not create them private: the
    folder's mode guards everything in it.
    """
    path = Path(path)
    info = path.stat()
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
        logger.warning(
            "%s was readable by other users (mode %o); made it private (0700)",
            path,
            stat.S_IMODE(info.st_mode),
        )
        path.chmod(PRIVATE_DIR)
