"""``ssb-beamline sync``: write what the journals hold into tiled, every entry tried.

A run is pending in the :class:`~.journal.DocumentJournal` when tiled did not get
all of its documents: the server died before, during or after the scan, or the
acquisition process died. :func:`sync_run` removes whatever partial copy tiled has
and writes the run again from its journal, so every document is in tiled exactly
once. The partial copy holds tables that tiled manages itself (the event rows
bluesky's ``TiledWriter`` appends at the stop document), so it is removed with
``external_only=False``: tiled then drops those rows and its own records of the
detector files, never the detector files themselves. A run whose process died
without a stop document is closed first, honestly (``exit_status="abort"`` with the
reason, see :meth:`~.journal.DocumentJournal.close_interrupted`).

Journaled analysis results (:mod:`.result_journal`) are uploaded by
:func:`sync_results` as the next version of their run's results; an earlier
attempt of the same result that reached tiled only in part (the server died during
the upload) is removed first, so each result is stored once. Results stored
while their run's copy in tiled was partial are linked from the run again once it
is written from its journal.

One damaged entry never stops the others: :func:`sync_all` tries every pending
run and result and returns a :class:`SyncReport` whose failures each name the file
(and line) to fix. No library does this bookkeeping: tiled has no notion of a
journal, and bluesky's writer assumes the server is up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .journal import DocumentJournal, JournalCorruptError, _tiled_writer, write_document
from .result_journal import ResultJournal
from .result_layout import complete_versions, result_versions
from .result_link import link_run
from .results import TiledResultSink
from .stop_record import confirm_stop_recorded

__all__ = [
    "RunNotSyncedError",
    "SyncFailure",
    "SyncIncompleteError",
    "SyncReport",
    "sync_all",
    "sync_pending",
    "sync_results",
    "sync_run",
]

logger = logging.getLogger(__name__)


class RunNotSyncedError(RuntimeError):
    """tiled refused (or lost) one of a run's documents; the run stays pending.

    Attributes
    ----------
    path : Path
        The run's journal.
    line : int or None
        The journal line of the document tiled did not take.
    """

    def __init__(self, message: str, *, path: Path, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


@dataclass(frozen=True)
class SyncFailure:
    """One journal entry that could not be written to tiled.

    ``message`` names the file (and line) and says what to do; ``path`` and
    ``line`` are the same, for programs.

    Attributes
    ----------
    path : pathlib.Path
        The journal file (or result entry) that was not written.
    line : int or None
        Its line number, 1-based, when one document is at fault.
    message : str
        What failed and what to do (also ``str(failure)``).
    """

    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class SyncReport:
    """What one sync did: runs and results written, runs left to their writer, failures.

    Attributes
    ----------
    runs : list of str
        Uids of the runs written to tiled.
    results : list of str
        Where each journaled result was stored, ``results/<uid>/<version>``.
    busy : list of str
        Uids of runs still being acquired, left to their writer.
    failures : list of SyncFailure
        Entries that could not be written; they stay in the journal for the next sync.
    """

    runs: list[str] = field(default_factory=list)
    results: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    failures: list[SyncFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


class SyncIncompleteError(RuntimeError):
    """Some journal entries could not be synced (all the others were); see ``report``."""

    def __init__(self, report: SyncReport) -> None:
        lines = "\n".join(f"  - {f}" for f in report.failures)
        super().__init__(
            f"{len(report.failures)} journal entr{'y' if len(report.failures) == 1 else 'ies'} "
            f"could not be written to tiled (the others were):\n{lines}"
        )
        self.report = report


def sync_run(raw, journal: DocumentJournal, uid: str, *, writer_factory=None) -> None:
    """Write one journaled run to tiled from scratch (its partial copy is removed).

    A run whose writer died without a stop document is closed first (see
    :meth:`DocumentJournal.close_interrupted`).

    Parameters
    ----------
    raw : tiled container client
        The container of raw bluesky runs (``store.raw``), written with write access.
    journal : DocumentJournal
        The journal the live writer kept (``<data dir>/journal``).
    uid : str
        Full uid of the run to write (a pending journal of ``journal``).
    writer_factory : callable, optional
        ``writer_factory(raw) -> callable(name, doc)`` (keyword only); None: bluesky's
        ``TiledWriter``, as the live writer uses.

    Raises
    ------
    JournalCorruptError
        If the run is still being acquired, or its journal is damaged.
    RunNotSyncedError
        If tiled failed; the message names the journal line of the document.
    """
    journal.close_interrupted(uid)
    records = list(journal.records(uid))  # read it all before touching tiled
    path = journal.path(uid)
    if not records or records[0][1] != "start":
        raise JournalCorruptError(
            f"{path}, line 1, is not the run's start document; the run cannot be "
            "written to tiled. Move the journal aside (its detector files are untouched).",
            path=path,
            line=1,
        )
    if uid in raw:
        logger.info("removing the partial copy of run %s from tiled", uid)
        try:  # its event tables are tiled's own; the detector files are never deleted
            raw[uid].delete(recursive=True, external_only=False)
        except Exception as exc:
            raise RunNotSyncedError(
                f"{path}: tiled did not remove the partial copy of run {uid} "
                f"({type(exc).__name__}: {exc}); the run stays pending, run sync again "
                "when tiled answers.",
                path=path,
            ) from exc
    writer = (writer_factory or _tiled_writer)(raw)
    for line, name, doc in records:
        try:
            write_document(writer, name, doc)
        except Exception as exc:
            raise RunNotSyncedError(
                f"{path}, line {line}: tiled did not take this {name} document "
                f"({type(exc).__name__}: {exc}); the run stays pending, run sync again "
                "when tiled answers.",
                path=path,
                line=line,
            ) from exc
    _confirm_stop(raw, uid, records, path)
    journal.mark_synced(uid)
    logger.info("run %s written to tiled from the journal", uid)


def _confirm_stop(raw, uid: str, records: list, path: Path) -> None:
    """Read the stop back from tiled (a concurrent metadata update can drop it)."""
    stops = [(line, doc) for line, name, doc in records if name == "stop"]
    if not stops:
        return
    line, stop = stops[-1]
    try:
        confirm_stop_recorded(raw, uid, stop)
    except Exception as exc:
        raise RunNotSyncedError(
            f"{path}, line {line}: tiled did not keep the stop document "
            f"({type(exc).__name__}: {exc}); the run stays pending, run sync again.",
            path=path,
            line=line,
        ) from exc


def sync_results(
    results_container, journal: ResultJournal, report: SyncReport | None = None, *, runs=None
) -> list[str]:
    """Upload every journaled result as the next version of its run's results.

    A version that tiled got only part of (the server died during the upload) is
    removed once the complete copy is stored, so each result is stored once (see
    :meth:`~.results.TiledResultSink.upload_journaled`). An entry that cannot be
    read or uploaded stays in the journal, is logged and added to ``report``; the
    others are still tried.

    Parameters
    ----------
    results_container : tiled container client
        The ``results`` container (``results[uid][version]``), with write access.
    journal : ResultJournal
        The journal of results not yet stored (``<journal>/results``).
    report : SyncReport, optional
        Failures are appended to ``report.failures``; None: they are only logged.
    runs : tiled container client, optional
        The raw runs (keyword only): each result stored is linked from its run
        there (``results: {latest, versions}``); None: not linked.

    Returns
    -------
    list of str
        Where each result was stored, ``results/<uid>/<version>``.
    """
    # no journal: a failure leaves the entry
    sink = TiledResultSink(results_container, runs=runs)
    return sink.upload_journaled(
        journal, on_failure=lambda path, line, message: _fail(report, path, line, message)
    )


def _fail(report: SyncReport | None, path: Path, line: int | None, message: str) -> None:
    """Keep a failure in ``report`` (its reader shows it); without one, log it as an error."""
    if report is None:
        logger.error("%s", message)
    else:
        logger.info("%s", message)
        report.failures.append(SyncFailure(Path(path), line, message))


def sync_all(
    raw, journal: DocumentJournal, *, results=None, writer_factory: Callable | None = None
) -> SyncReport:
    """Write every pending run, then every journaled result, to tiled; try them all.

    Runs still being acquired (their journal is locked by a writer) are left to
    their writer (``report.busy``). Results journaled in ``<journal>/results`` go to
    ``results``, by default the ``results`` container beside ``raw``. Nothing an
    entry does raises here: each failure is logged and listed in the report.

    Parameters
    ----------
    raw : tiled container client
        The container of raw bluesky runs (``store.raw``), written with write access.
    journal : DocumentJournal
        The journal the live writer kept (``<data dir>/journal``).
    results : tiled container client, optional
        Where journaled results go (keyword only); None: the ``results`` container
        beside ``raw`` (each pending result is a failure if there is none).
    writer_factory : callable, optional
        ``writer_factory(raw) -> callable(name, doc)`` (keyword only); None: bluesky's
        ``TiledWriter``, as the live writer uses.

    Returns
    -------
    SyncReport
        What was written, left busy, or failed (``report.ok`` when nothing failed).
    """
    report = SyncReport()
    for uid in journal.pending():
        if journal.is_being_written(uid):
            logger.info("run %s is still being acquired; it is synced when it ends", uid)
            report.busy.append(uid)
            continue
        try:
            sync_run(raw, journal, uid, writer_factory=writer_factory)
        except (JournalCorruptError, RunNotSyncedError) as exc:
            _fail(report, exc.path or journal.path(uid), exc.line, str(exc))
        except OSError as exc:  # the journal itself (disk, permissions)
            _fail(report, journal.path(uid), None, f"{journal.path(uid)}: {exc}")
        else:
            report.runs.append(uid)
    result_journal = ResultJournal(journal.directory / "results")
    pending = result_journal.pending()
    if results is None and (report.runs or pending):
        results = _results_beside(raw)  # looked up once, for the links and the uploads
    if results is not None:
        _relink_results(raw, results, report.runs)
    if pending:
        if results is None:
            for entry in pending:
                _fail(
                    report,
                    entry,
                    None,
                    f"{entry}: not uploaded, tiled has no results container beside {raw}; "
                    "open the store with `ssb-beamline sync` (it creates one).",
                )
        else:
            report.results = sync_results(results, result_journal, report, runs=raw)
    return report


def _relink_results(raw, results, uids: list[str]) -> None:
    """Link each run just written from its journal to the results stored before.

    :func:`sync_run` writes a run's metadata anew, so the link to results stored
    while its copy in tiled was partial (their link then failed, or went with the
    partial copy) is restored here; results still journaled link themselves when
    uploaded. A failure is logged, never raised.
    """
    for uid in uids:
        try:
            if versions := complete_versions(results, uid):
                path = f"results/{uid}/{versions[-1]}"
                link_run(raw[uid], result_versions(results, uid), path, lambda u: raw[u])
        except Exception:  # the results are stored; only their link is missing
            logger.exception("results of run %s not linked from it: tiled failed", uid)


def sync_pending(raw, journal: DocumentJournal, *, results=None) -> list[str]:
    """As :func:`sync_all`, but returns the uids of the runs synced.

    Parameters
    ----------
    raw : tiled container client
        The container of raw bluesky runs (``store.raw``), written with write access.
    journal : DocumentJournal
        The journal the live writer kept (``<data dir>/journal``).
    results : tiled container client, optional
        Where journaled results go (keyword only); None: the ``results`` container
        beside ``raw``.

    Returns
    -------
    list of str
        Uids of the runs written to tiled.

    Raises
    ------
    SyncIncompleteError
        After every entry was tried, if any failed (``.report`` says which).
    """
    report = sync_all(raw, journal, results=results)
    if report.failures:
        raise SyncIncompleteError(report)
    return report.runs


def _results_beside(raw):
    from .connect import RESULTS_CONTAINER

    try:
        parent = raw.parent
        return parent.get(RESULTS_CONTAINER)
    except (AttributeError, KeyError):
        return None
