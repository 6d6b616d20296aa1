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
    "UnsafeFolderError",
    "check_own_folder",
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


class UnsafeFolderError(OSError, ValueError):
    """An existing folder the package would write its user's files in is not theirs alone.

    An ``OSError``, and a ``ValueError`` so that the command line reports it in one
    line: the message names the folder, the problem and the fix.
    """


def check_own_folder(path: str | Path) -> None:
    """Refuse an existing ``path`` that is not a folder of this user that only they can write.

    Another user who owns the folder, or may write in it, can replace the files
    written there (or read them, through files of their own made in advance).

    Parameters
    ----------
    path : str or Path
        The existing folder.

    Raises
    ------
    UnsafeFolderError
        If ``path`` is not a folder, is owned by another user, or group or others
        may write in it.
    """
    path = Path(path)
    info = path.stat()
    fix = "Remove it, or choose another folder (e.g. one in your home directory)"
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeFolderError(
            f"{path} is a file, not a folder. Choose a folder (a missing one is created)."
        )
    uid = os.geteuid()
    if info.st_uid != uid:
        raise UnsafeFolderError(
            f"{path} is owned by another user (uid {info.st_uid}; you are uid {uid}), who "
            f"could replace or read the files written in it. {fix}."
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o002 and mode & stat.S_ISVTX:  # /tmp: everyone's; a new folder in it is not
        raise UnsafeFolderError(
            f"{path} is a folder shared by every user (mode {mode:o}), where others could "
            f"replace or plant files. Choose a new folder in it (e.g. {path / f'ssb-{uid}'}) "
            "or another folder."
        )
    if mode & 0o022:
        raise UnsafeFolderError(
            f"{path} can be written by {'others' if mode & 0o002 else 'its group'} (mode "
            f"{mode:o}), who could replace the files written in it. Make it private "
            f"(chmod 700 {path}), remove it, or choose another folder."
        )


def make_private_dir(path: str | Path, *, check_existing: bool = True) -> Path:
    """Create ``path`` and any missing parents with mode 0700.

    Existing parents are kept as they are (``/tmp``, a home directory). An existing
    ``path`` must be a folder of this user that group and others cannot write
    (:func:`check_own_folder`), unless ``check_existing`` is False: for a folder
    the package only reads, or that another account (a facility's detector IOC) owns.

    Parameters
    ----------
    path : str or Path
        The folder.
    check_existing : bool, default True
        Refuse an existing ``path`` that is not this user's own (see above).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    UnsafeFolderError
        If ``path`` exists and is not this user's own folder (``check_existing``).

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
    if check_existing:
        check_own_folder(path)  # also one made meanwhile by another user
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
