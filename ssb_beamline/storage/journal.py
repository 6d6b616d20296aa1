"""A local journal of every document, so that no run is lost when tiled is down.

Each run's documents are appended to ``<journal>/<run uid>.jsonl`` before they are
sent to tiled. A run whose documents all reached tiled is marked synced (renamed
``.synced.jsonl``); any other run is pending and is written to tiled again, from
its first document, by :func:`sync_pending` (``ssb-beamline sync``), after the
partial copy in tiled is removed. The detector's HDF5 files stay where they were
written, so the journal holds only the (small) documents.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

PENDING_SUFFIX = ".jsonl"
SYNCED_SUFFIX = ".synced.jsonl"


class JournalCorruptError(ValueError):
    """A journal file cannot be read back; the message names the file and line."""


def _to_json(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot journal a {type(value).__name__}")


class DocumentJournal:
    """Append-only JSON-lines files of each run's documents in ``directory``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, object] = {}

    def path(self, uid: str, *, synced: bool = False) -> Path:
        return self.directory / f"{uid}{SYNCED_SUFFIX if synced else PENDING_SUFFIX}"

    def append(self, uid: str, name: str, doc: dict) -> None:
        """Record one document of run ``uid`` (flushed; fsynced at the stop document)."""
        f = self._files.get(uid)
        if f is None:
            f = self._files[uid] = self.path(uid).open("a", encoding="utf-8")
        f.write(json.dumps({"name": name, "doc": doc}, default=_to_json) + "\n")
        f.flush()
        if name == "stop":
            os.fsync(f.fileno())
            f.close()
            del self._files[uid]

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
        """The journaled documents of a run, in order.

        Raises
        ------
        JournalCorruptError
            For a line that is not a journaled document. A run that never got its
            stop document (the process died) reads fine up to its last document.
        """
        path = self.path(uid)
        if not path.exists():
            path = self.path(uid, synced=True)
        if not path.exists():
            raise JournalCorruptError(f"No journal for run {uid} in {self.directory}.")
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                try:
                    record = json.loads(line)
                    yield record["name"], record["doc"]
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise JournalCorruptError(
                        f"{path}, line {number}, is not a journaled document ({exc}). The "
                        "journal is damaged: restore it from a backup, or move it aside to "
                        "skip this run (its detector files are untouched)."
                    ) from None


class JournaledWriter:
    """Journal each document, then hand it to tiled's writer; never lose a run.

    When writing to tiled fails (the server died, the disk filled), the failure is
    logged at ERROR level once per run, the run's remaining documents are only
    journaled, and at its stop document the run is written again from the journal
    if tiled answers by then; otherwise it stays pending for :func:`sync_pending`.

    Parameters
    ----------
    raw : tiled container of raw runs
    journal : DocumentJournal
    writer_factory : callable(raw) -> document callback; default bluesky's TiledWriter
    """

    def __init__(
        self,
        raw,
        journal: DocumentJournal,
        writer_factory: Callable | None = None,
    ) -> None:
        self.raw = raw
        self.journal = journal
        self._factory = writer_factory or _tiled_writer
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
                self._writer(name, doc)
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
            if not self._failed:
                self.journal.mark_synced(uid)
                return
            try:
                sync_run(self.raw, self.journal, uid, writer_factory=self._factory)
            except Exception as exc:
                logger.error(
                    "run %s stays pending in %s: tiled still fails (%s)",
                    uid,
                    self.journal.directory,
                    exc,
                )


def _tiled_writer(raw):
    from bluesky.callbacks.tiled_writer import TiledWriter

    return TiledWriter(raw)


def sync_run(raw, journal: DocumentJournal, uid: str, *, writer_factory=None) -> None:
    """Write one journaled run to tiled from scratch (its partial copy is removed)."""
    if uid in raw:
        logger.info("removing the partial copy of run %s from tiled", uid)
        raw[uid].delete(recursive=True)
    writer = (writer_factory or _tiled_writer)(raw)
    for name, doc in journal.read(uid):
        writer(name, doc)
    journal.mark_synced(uid)
    logger.info("run %s written to tiled from the journal", uid)


def sync_pending(raw, journal: DocumentJournal) -> list[str]:
    """Write every pending run to tiled; returns the uids synced."""
    synced = []
    for uid in journal.pending():
        sync_run(raw, journal, uid)
        synced.append(uid)
    return synced
