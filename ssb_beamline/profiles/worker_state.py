"""What the analysis worker remembers across restarts: the runs it was analysing.

``<state dir>/worker-state.json`` lists the runs whose start document the worker
saw and whose results it has not finished (``in_progress``), and the last runs it
finished (``done``, so that a run whose analysis failed is not retried at every
start). It is rewritten atomically (temporary file + rename) at each change, so a
worker killed at any instant leaves a readable file. ``worker.lock`` (an ``flock``
released by the kernel when the process dies) keeps a second worker off the same
state.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from ssb_beamline.private_files import make_private_dir

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None  # type: ignore[assignment]

__all__ = ["WorkerBusyError", "WorkerState"]

logger = logging.getLogger(__name__)

#: Finished runs remembered (the newest).
DONE_KEPT = 2000


class WorkerBusyError(RuntimeError, ValueError):
    """Another worker holds the state directory."""


class WorkerState:
    """The worker's persistent record of runs in progress and done, in ``directory``.

    Parameters
    ----------
    directory : str or pathlib.Path
        The worker's state folder (created 0700); holds ``worker-state.json`` and the
        lock ``worker.lock``. One worker per folder.

    Raises
    ------
    WorkerBusyError
        If another live worker holds ``directory``.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        make_private_dir(self.directory)
        self.path = self.directory / "worker-state.json"
        self._lock = self._take_lock()
        self.in_progress: dict[str, float] = {}
        self.done: list[str] = []
        if self.path.exists():
            record = json.loads(self.path.read_text())
            self.in_progress = dict(record.get("in_progress", {}))
            self.done = list(record.get("done", []))

    def _take_lock(self):
        lock = (self.directory / "worker.lock").open("a+")
        if fcntl is not None:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                holder = lock.read().strip() or "?"
                lock.close()
                raise WorkerBusyError(
                    f"Another analysis worker (pid {holder}) uses {self.directory}. Stop it, "
                    "or give this one its own --state-dir (two workers on one server would "
                    "store every result twice)."
                ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        return lock

    def begin(self, uid: str) -> None:
        """The worker saw the start document of run ``uid``."""
        self.in_progress[uid] = time.time()
        self._save()

    def finish(self, uid: str) -> None:
        """Run ``uid`` needs nothing more (results stored, or nothing to analyse)."""
        self.in_progress.pop(uid, None)
        if uid not in self.done:
            self.done = [*self.done, uid][-DONE_KEPT:]
        self._save()

    def is_done(self, uid: str) -> bool:
        """Whether run ``uid`` has been analysed and stored."""
        return uid in self.done

    def _save(self) -> None:
        record = {"in_progress": self.in_progress, "done": self.done}
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def close(self) -> None:
        """Release the lock (the record stays)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None
