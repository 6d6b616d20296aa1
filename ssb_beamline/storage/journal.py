"""A local journal of every document, so that no run is lost when tiled is down.

Each run's documents are appended to ``<journal>/<run uid>.jsonl`` before they are
sent to tiled. A run whose documents all reached tiled is marked synced (renamed
``.synced.jsonl``); any other run is pending and is written to tiled again, from
its first document, by :func:`~.sync.sync_pending` (``ssb-beamline sync``), after
the partial copy in tiled is removed. The detector's HDF5 files stay where they
were written, so the journal holds only the (small) documents.

A run whose process died is recognised (its journal is not locked by a writer):
a torn last line (the write the crash interrupted) is set aside, and the run is
closed with a stop document (``exit_status="abort"``) when it is synced, so that it
can be replayed. Analysis results that could not be published are journaled too
(see :mod:`.result_journal`) and uploaded by the same :func:`~.sync.sync_pending`.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from ssb_beamline._jsonable import jsonable
from ssb_beamline.private_files import make_private_dir, open_private

from .server_config import DataDirectoryError
from .stop_record import confirm_stop_recorded

try:  # POSIX: a run being acquired holds a lock on its journal file
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "PENDING_SUFFIX",
    "SYNCED_SUFFIX",
    "DocumentJournal",
    "JournalCorruptError",
    "JournaledWriter",
]

logger = logging.getLogger(__name__)

PENDING_SUFFIX = ".jsonl"
SYNCED_SUFFIX = ".synced.jsonl"


class JournalCorruptError(ValueError):
    """A journal file cannot be read back; the message names the file and line.

    Attributes
    ----------
    path : Path or None
        The journal file.
    line : int or None
        The line (1-based) that is damaged, when one is.
    """

    def __init__(self, message: str, *, path: Path | None = None, line: int | None = None):
        super().__init__(message)
        self.path = path
        self.line = line


class DocumentJournal:
    """Append-only JSON-lines files of each run's documents in ``directory``.

    Parameters
    ----------
    directory : str or pathlib.Path
        Folder of the journal files (created 0700 if missing); one
        ``<uid>.jsonl`` file per run, renamed ``<uid>.synced.jsonl`` once the run
        has reached tiled.

    Raises
    ------
    DataDirectoryError
        If the directory cannot be created.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        try:
            make_private_dir(self.directory)
        except OSError as exc:
            raise DataDirectoryError(self.directory, exc, "journal directory") from exc
        self._files: dict[str, object] = {}

    def path(self, uid: str, *, synced: bool = False) -> Path:
        return self.directory / f"{uid}{SYNCED_SUFFIX if synced else PENDING_SUFFIX}"

    def append(self, uid: str, name: str, doc: dict) -> None:
        """Record one document of run ``uid`` (flushed; fsynced at the stop document)."""
        f = self._files.get(uid)
        if f is None:
            f = self._files[uid] = open_private(self.path(uid), "a", encoding="utf-8")
            if fcntl is not None:  # released when the file closes or the process dies
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        f.write(json.dumps(jsonable({"name": name, "doc": doc}, finite=False)) + "\n")
        f.flush()
        if name == "stop":
            os.fsync(f.fileno())
            f.close()
            del self._files[uid]

    def is_being_written(self, uid: str) -> bool:
        """Whether a live writer (this process or another) still appends to the run."""
        if uid in self._files:
            return True
        path = self.path(uid)
        if fcntl is None or not path.exists():
            return False
        with path.open("a", encoding="utf-8") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return False

    def mark_synced(self, uid: str) -> None:
        """The run is complete in tiled: keep its journal, but not as pending."""
        self.path(uid).rename(self.path(uid, synced=True))

    def pending(self) -> list[str]:
        """Uids of runs whose documents have not all reached tiled, oldest first."""
        files = [
            p
            for p in self.directory.glob(f"*{PENDING_SUFFIX}")
            if not p.name.endswith(SYNCED_SUFFIX)
        ]
        return [
            p.name[: -len(PENDING_SUFFIX)] for p in sorted(files, key=lambda p: p.stat().st_mtime)
        ]

    def read(self, uid: str) -> Iterator[tuple[str, dict]]:
        """The journaled documents of a run, in order (see :meth:`records`)."""
        for _, name, doc in self.records(uid):
            yield name, doc

    def records(self, uid: str) -> Iterator[tuple[int, str, dict]]:
        """The journaled documents of a run with their line numbers: ``(line, name, doc)``.

        Raises
        ------
        JournalCorruptError
            For a line that is not a journaled document. A run that never got its
            stop document (the process died) reads fine up to its last document; a
            torn last line (the write the crash interrupted) is logged and skipped.
        """
        path = self.path(uid)
        if not path.exists():
            path = self.path(uid, synced=True)
        if not path.exists():
            raise JournalCorruptError(
                f"No journal for run {uid} in {self.directory}.", path=self.directory
            )
        with path.open(encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, start=1):
                try:
                    record = json.loads(line)
                    name, doc = record["name"], record["doc"]
                    if not isinstance(name, str) or not isinstance(doc, dict):
                        raise TypeError("'name' must be a string and 'doc' an object")
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    if not line.endswith("\n"):  # only the last line can lack one
                        logger.warning(
                            "%s, line %d, is a torn write (the process died while writing "
                            "it); that document never reached tiled and is dropped, the "
                            "%d before it are kept",
                            path,
                            number,
                            number - 1,
                        )
                        return
                    raise JournalCorruptError(
                        f"{path}, line {number}, is not a journaled document ({exc}). The "
                        "journal is damaged: restore it from a backup, or move it aside to "
                        "skip this run (its detector files are untouched).",
                        path=path,
                        line=number,
                    ) from None
                yield number, name, doc

    def close_interrupted(self, uid: str) -> dict | None:
        """Close a run whose writer died: set a torn last line aside, journal a stop.

        Returns the stop document added (None if the run had one). A run still being
        written is left alone.

        Raises
        ------
        JournalCorruptError
            If the run is still being written, or its journal is damaged.
        """
        if self.is_being_written(uid):
            raise JournalCorruptError(
                f"Run {uid} is still being acquired (its journal {self.path(uid)} is open "
                "by a writer); sync it after the run ends.",
                path=self.path(uid),
            )
        docs = list(self.read(uid))
        if any(name == "stop" for name, _ in docs):
            return None
        path = self.path(uid)
        data = path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):  # the torn write: keep it beside the journal, not in it
            with open_private(path.with_name(path.name + ".torn"), "wb") as torn:
                torn.write(data[keep:])
            with path.open("r+b") as f:
                f.truncate(keep)
        if not docs or docs[0][0] != "start":
            raise JournalCorruptError(
                f"{path}, line 1, is not the run's start document; the run cannot be "
                "written to tiled. Move the journal aside (its detector files are untouched).",
                path=path,
                line=1,
            )
        streams = {d.get("uid"): d.get("name") for n, d in docs if n == "descriptor"}
        events = Counter(streams.get(d.get("descriptor")) for n, d in docs if n == "event")
        times = [d["time"] for _, d in docs if isinstance(d.get("time"), int | float)]
        stop = {
            "uid": str(uuid.uuid4()),
            "run_start": uid,
            "time": max(times, default=time.time()),
            "exit_status": "abort",
            "reason": "the acquisition stopped without closing the run; closed from the "
            "journal by ssb-beamline sync",
            "num_events": {str(k): v for k, v in events.items()},
        }
        self.append(uid, "stop", stop)
        logger.warning("run %s had no stop document; closed it (exit_status abort)", uid)
        return stop


class JournaledWriter:
    """Journal each document, then hand it to tiled's writer; never lose a run.

    When writing to tiled fails (the server died, the disk filled), the failure is
    logged at ERROR level once per run, the run's remaining documents are only
    journaled, and at its stop document the run is written again from the journal
    if tiled answers by then; otherwise it stays pending for :func:`~.sync.sync_pending`.

    Parameters
    ----------
    raw : tiled container client
        The container of raw runs, with write access.
    journal : DocumentJournal
        Where every document is appended first.
    writer_factory : callable, optional
        ``writer_factory(raw) -> callable(name, doc)``; None: bluesky's
        ``TiledWriter`` writing every ``LIVE_BATCH_SIZE`` events of a stream, and a
        stream's rest once it is idle (:class:`.live_writer.LiveTiledWriter`).
    """

    def __init__(
        self,
        raw,
        journal: DocumentJournal,
        writer_factory: Callable | None = None,
    ) -> None:
        self.raw = raw
        self.journal = journal
        self._factory = writer_factory or _live_tiled_writer
        self._writer: Callable | None = None  # made at each run's start
        self._uid: str | None = None
        self._failed = False
        self.failures: list[str] = []

    def __call__(self, name: str, doc: dict) -> None:
        if name == "start":
            self._uid, self._failed, self._writer = doc["uid"], False, None
        uid = self._uid or doc.get("run_start", "unknown")
        self.journal.append(uid, name, doc)
        if not self._failed:
            try:
                if self._writer is None:
                    self._writer = self._factory(self.raw)
                write_document(self._writer, name, doc)
            except Exception as exc:
                self._failed = True
                message = f"run {uid}: writing {name} to tiled failed ({type(exc).__name__}: {exc})"
                self.failures.append(message)
                logger.error(
                    "%s; the acquisition goes on, documents are kept in %s and will be "
                    "written when tiled is back (`ssb-beamline sync`)",
                    message,
                    self.journal.directory,
                )
        if name == "stop":
            if not self._failed and self._stop_kept(uid, doc):
                self.journal.mark_synced(uid)
                return
            from .sync import sync_run

            try:
                sync_run(self.raw, self.journal, uid, writer_factory=self._factory)
            except Exception as exc:
                logger.error(
                    "run %s stays pending in %s: tiled still fails (%s)",
                    uid,
                    self.journal.directory,
                    exc,
                )

    def _stop_kept(self, uid: str, stop: dict) -> bool:
        """True if tiled holds the stop it was sent (a concurrent update can drop it)."""
        if self.raw is None:  # a writer that is not tiled's: nothing to read back
            return True
        try:
            confirm_stop_recorded(self.raw, uid, stop)
        except Exception as exc:
            self._failed = True
            self.failures.append(f"run {uid}: {exc}")
            logger.error("run %s: the stop document is not in tiled (%s)", uid, exc)
            return False
        return True


#: event-model's warning when a run's callback raises at its start or a descriptor: it
#: guesses an old factory API (documents "passed twice"), which is never the cause here.
_ROUTER_GUESS = r"The callback .* raised .* when RunRouter passed it a"


def write_document(writer: Callable[[str, dict], None], name: str, doc: dict) -> None:
    """``writer(name, doc)``; a failure raises its own error without event-model's guess.

    The caller reports the failure (the run is journaled); event-model's warning
    would print, next to it, that an old API was probably used.
    """
    if name not in ("start", "descriptor"):
        writer(name, doc)
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_ROUTER_GUESS, category=UserWarning)
        writer(name, doc)


def _tiled_writer(raw):  # the default of :func:`.sync.sync_run`: a whole run at once
    from bluesky.callbacks.tiled_writer import TiledWriter

    return TiledWriter(raw)


#: Events (and detector frames) of a stream the live writer gathers per write. bluesky's
#: default (10000) writes a whole scan's streams, tables and detector data after its stop
#: document (about 5 s of requests for a 41-energy scan on a loaded 2-core machine), when
#: the live analysis stores its results on the same server; in batches of 8 most of it is
#: written while the scan runs, and :class:`.live_writer.LiveTiledWriter` writes a stream
#: that went idle (darks, flats) before the stop too.
LIVE_BATCH_SIZE = 8


def _live_tiled_writer(raw):
    from .live_writer import LiveTiledWriter

    return LiveTiledWriter(raw, batch_size=LIVE_BATCH_SIZE)


def __getattr__(name: str):
    """``sync_run`` and ``sync_pending`` moved to :mod:`.sync`; still importable here."""
    if name in ("sync_run", "sync_pending"):
        from . import sync

        return getattr(sync, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
