"""An inter-process lock on a data directory, for the steps two sessions must not race.

Two demos started at the same instant on one fresh data directory both find no
catalog, both have their server create its tables (``table ... already exists``)
and both create the ``raw`` container (``409: /raw``). :func:`data_dir_lock`
serialises these set-up steps: an exclusive ``fcntl.flock`` on ``<data
dir>/.lock``, released when the block ends or the process dies (so a crashed
session never leaves it held). The standard library has ``fcntl`` but no
context manager with a timeout, re-entrancy and an error naming the file; hence
this module.

:func:`hold_lock` keeps a lock for as long as a session runs: DuckDB (the table
storage) lets one process at a time write a file, so two embedded servers on one
data directory cannot both store event data; the second session waits for the
first (concurrent sessions use one ``ssb-beamline serve`` server instead).

Within one process the lock is re-entrant (threads wait for each other through
a ``threading.RLock``), so an embedded server started under the lock can take it
again. On platforms without ``fcntl`` it only serialises threads.

Examples
--------
>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> with data_dir_lock(folder):
...     with data_dir_lock(folder):  # re-entrant in one process
...         pass
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ssb_beamline.private_files import make_private_dir

from .server_config import DataDirectoryError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "DataDirLockTimeoutError", "data_dir_lock", "hold_lock"]

logger = logging.getLogger(__name__)

#: Lock file in the data directory.
LOCK_FILE = ".lock"
#: How long a session waits for another one's set-up (a fresh catalog takes seconds).
DEFAULT_TIMEOUT_S = 400.0


class DataDirLockTimeoutError(TimeoutError, ValueError):
    """Another process held the data directory's lock for too long.

    A ``ValueError`` too, so that the command line reports it as a clear error.
    """


@dataclass
class _Held:
    rlock: threading.RLock = field(default_factory=threading.RLock)
    depth: int = 0
    fd: int | None = None


_held: dict[Path, _Held] = {}
_registry = threading.Lock()


def _make(root: Path) -> None:
    try:
        make_private_dir(root)
    except OSError as exc:
        raise DataDirectoryError(root, exc) from exc


def _acquire_file(path: Path, deadline: float, waiting: str | None) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:  # not a directory, not writable: a usage error, not a crash
        raise DataDirectoryError(path.parent, exc) from exc
    if fcntl is None:  # pragma: no cover
        return fd
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())  # who holds it, for the message
            return fd
        except BlockingIOError:
            if waiting is not None:
                holder = path.read_text().strip() or "?"
                logger.warning(waiting.format(pid=holder))
                waiting = None
            if time.monotonic() > deadline:
                os.close(fd)
                raise DataDirLockTimeoutError(
                    f"Another ssb-beamline process has been setting up {path.parent} for "
                    f"too long (it holds {path}). Wait for it to finish, or stop it; a "
                    "process that died releases the lock by itself."
                ) from None
            time.sleep(0.05)


@contextmanager
def data_dir_lock(
    root: str | Path,
    *,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    name: str = LOCK_FILE,
    waiting: str | None = None,
) -> Iterator[Path]:
    """Hold the exclusive lock ``name`` of data directory ``root`` (created if missing).

    ``timeout_s=None`` waits as long as it takes; ``waiting`` is logged (WARNING,
    ``{pid}`` replaced by the holder's process id) when another process holds it.

    Parameters
    ----------
    root : str or pathlib.Path
        The data directory (created 0700 if missing; ``~`` is expanded).
    timeout_s : float or None, default 400.0
        How long to wait for another process's lock, s (keyword only); None waits as
        long as it takes.
    name : str, default ".lock"
        File name of the lock inside ``root`` (one directory may hold several locks).
    waiting : str, optional
        Logged once (WARNING) when another process holds the lock; ``{pid}`` is
        replaced by its process id.

    Yields
    ------
    pathlib.Path
        ``root``, resolved, while the lock is held (re-entrant in this process).

    Raises
    ------
    DataDirLockTimeoutError
        If another process holds it longer than ``timeout_s``.
    """
    root = Path(root).expanduser().resolve()
    _make(root)
    with _registry:
        held = _held.setdefault(root / name, _Held())
    deadline = time.monotonic() + (timeout_s if timeout_s is not None else float("inf"))
    if not held.rlock.acquire(timeout=-1 if timeout_s is None else timeout_s):
        raise DataDirLockTimeoutError(
            f"Another thread of this process has been setting up {root} for too long."
        )
    try:
        if held.depth == 0:
            held.fd = _acquire_file(root / name, deadline, waiting)
        held.depth += 1
        try:
            yield root
        finally:
            held.depth -= 1
            if held.depth == 0 and held.fd is not None:
                os.close(held.fd)  # closing the descriptor releases the flock
                held.fd = None
    finally:
        held.rlock.release()


def hold_lock(root: str | Path, name: str, *, waiting: str | None = None) -> Callable[[], None]:
    """Take the exclusive lock ``name`` of ``root`` until the returned function is called.

    Waits as long as another process holds it (logging ``waiting`` once). In this
    process it is shared: a second holder does not wait, and any thread may release.

    Parameters
    ----------
    root : str or pathlib.Path
        The directory holding the lock file (created if missing).
    name : str
        File name of the lock inside ``root``.
    waiting : str, optional
        Logged once when another process holds the lock (keyword only); ``{pid}`` is
        replaced by its process id.

    Returns
    -------
    callable
        ``release()``: releases this hold (calling it twice is harmless).
    """
    path = Path(root).expanduser().resolve() / name
    _make(path.parent)
    with _registry:
        held = _held.setdefault(path, _Held())
    with held.rlock:  # only while taking it: a release may come from another thread
        if held.depth == 0:
            held.fd = _acquire_file(path, float("inf"), waiting)
        held.depth += 1
    released = threading.Event()

    def release() -> None:
        if released.is_set():
            return
        released.set()
        with held.rlock:
            held.depth -= 1
            if held.depth == 0 and held.fd is not None:
                os.close(held.fd)
                held.fd = None

    return release
