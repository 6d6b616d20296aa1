"""The plumbing of a simulated session, shared by the XANES and tomography sessions.

:class:`SimulatedSession` runs plans on the RunEngine, waits until their data
are written and analysed, pauses / resumes / aborts, injects faults and closes
everything in order.  It is generic in its instrument (``txm``), so the
XANES session holds a ``SimTXM`` and the tomography session a ``SimTomo``,
each typed as such.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeVar

from bluesky.run_engine import RunEngine
from bluesky.utils import RunEngineInterrupted

from ssb_beamline.callbacks import LiveOutcome, LiveUpdate
from ssb_beamline.callbacks.background import BackgroundCallback, CallbackFailedError
from ssb_beamline.diskspace import DiskFullError, disk_full_cause
from ssb_beamline.sim_devices.faults import FaultSchedule
from ssb_beamline.storage import TiledStore
from ssb_beamline.storage.journal import DocumentJournal

__all__ = ["RunAborted", "SimulatedSession", "quiet_disk_full_tracebacks"]

logger = logging.getLogger(__name__)

#: The instrument a session drives (``SimTXM``, ``SimTomo``, an EPICS beamline).
InstrumentT = TypeVar("InstrumentT")


class RunAborted(RunEngineInterrupted):
    """A paused run was aborted when the session closed; its data are stored.

    Attributes
    ----------
    uids : tuple of str
        Start uids of the aborted run(s) (exit_status "abort" in tiled).
    """

    def __init__(self, uids: tuple[str, ...]) -> None:
        self.uids = tuple(uids)
        names = ", ".join(uids) or "(none)"
        super().__init__(
            f"The scan was interrupted and aborted; run {names} is stored in tiled with "
            "exit_status 'abort', with every event taken before the interruption."
        )


class _DropExpectedAbort(logging.Filter):
    """Drop the RunEngine's "Run aborted" traceback while we abort on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Run aborted"


class _DropDiskFullTraceback(logging.Filter):
    """Drop the RunEngine's "Run aborted" traceback of a run stopped by a full disk.

    :meth:`SimulatedSession.run` raises the `DiskFullError` itself, whose message
    names the file system and the fix; the traceback would only bury it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (record.getMessage() == "Run aborted" and disk_full_cause(exc) is not None)


_DISK_FULL_FILTER = _DropDiskFullTraceback()


def quiet_disk_full_tracebacks(RE: RunEngine) -> None:
    """Install :class:`_DropDiskFullTraceback` on the RunEngine's logger (once).

    Parameters
    ----------
    RE : bluesky.RunEngine
        The RunEngine whose logger (bluesky's shared ``"bluesky"`` logger) gets the
        filter; a disk-full failure is then reported once, by the session, without
        bluesky's traceback.
    """
    re_logger = getattr(RE.log, "logger", None)  # bluesky's shared "bluesky" logger
    if re_logger is not None and _DISK_FULL_FILTER not in re_logger.filters:
        re_logger.addFilter(_DISK_FULL_FILTER)


@dataclass
class SimulatedSession(Generic[InstrumentT]):
    """A simulated session's plumbing: RunEngine, writer, live analysis, faults, store.

    Generic in its instrument, so ``txm`` is typed as what it holds
    (:class:`SimulatedBeamline`: a ``SimTXM``; ``SimulatedTomography``: a ``SimTomo``).

    Attributes
    ----------
    RE : bluesky.RunEngine
        With the tiled writer and the live XANES analysis subscribed.
    txm : SimTXM or SimTomo
        The simulated instrument (devices, phantom, ground truth).
    store : TiledStore
        The tiled store (embedded server unless a URI was given).
    outcomes : list of LiveOutcome
        One per analysed run, newest last.
    on_update : callable or None
        Called with a :class:`~ssb_beamline.callbacks.LiveUpdate` after each analysed
        image (progress displays); None: nothing is called.
    writer : BackgroundCallback or None
        The journaled tiled writer, on its own thread (None: runs are not written).
    journal : DocumentJournal or None
        The local journal every document reaches before tiled.
    live : BackgroundCallback or None
        The live analysis, on its own thread (None: no live analysis).
    faults : FaultSchedule or None
        Faults being injected (:meth:`inject_faults`).
    aborted : list of str
        Start uids of the runs aborted in this session.
    own_runs : set of str
        Start uids of the runs this session took (another process may share the
        journal).
    publisher : bluesky.callbacks.zmq.Publisher or None
        The 0MQ publisher, when documents go to an analysis worker.
    """

    RE: RunEngine
    txm: InstrumentT
    store: TiledStore
    outcomes: list[LiveOutcome] = field(default_factory=list)
    on_update: Callable[[LiveUpdate], None] | None = None
    writer: BackgroundCallback | None = None
    journal: DocumentJournal | None = None
    live: BackgroundCallback | None = None
    faults: FaultSchedule | None = None
    aborted: list[str] = field(default_factory=list)
    #: Start uids of the runs this session took (another process may share the journal).
    own_runs: set[str] = field(default_factory=set)
    publisher: Any = None  # bluesky's 0MQ Publisher, when documents go to a worker
    _fault_token: int | None = field(default=None, repr=False)

    def run(self, plan, *, timeout: float = 600.0) -> tuple[str, ...]:
        """Run a plan, then wait until its data are written and analysed.

        Raises
        ------
        CallbackFailedError
            If writing to tiled failed (the message says where and why).
        bluesky.utils.RunEngineInterrupted
            If the run paused (Ctrl-C, ``RE.request_pause``): it stays paused; call
            :meth:`resume` or :meth:`abort` (closing the session aborts it).
        ssb_beamline.diskspace.DiskFullError
            If the detector's file system filled up: the run is closed (exit status
            "fail") with the frames taken so far, journaled and written to tiled.
        """
        try:
            uids = self.RE(plan)
        except Exception as exc:
            full = disk_full_cause(exc)
            if full is None:
                raise
            self._finish((), timeout)  # the closed run reaches the journal and tiled
            raise DiskFullError(full.path, str(full)) from exc
        return self._finish(uids, timeout)

    def resume(self, *, timeout: float = 600.0) -> tuple[str, ...]:
        """Resume a paused run from its last checkpoint; then as :meth:`run`."""
        return self._finish(self.RE.resume(), timeout)

    def abort(self, reason: str = "", *, timeout: float = 600.0) -> tuple[str, ...]:
        """Abort a paused run: it is stored with exit_status "abort" and its stop document.

        Returns the start uids of the aborted run(s), after their documents are written.
        """
        # bluesky logs the traceback of the abort it was asked for; this one is expected
        quiet = _DropExpectedAbort()
        re_logger = getattr(self.RE.log, "logger", None)
        if re_logger is not None:
            re_logger.addFilter(quiet)
        try:
            uids = self.RE.abort(reason)
        finally:
            if re_logger is not None:
                re_logger.removeFilter(quiet)
        self.aborted.extend(uids)
        logger.warning("Run(s) %s aborted%s", ", ".join(uids), f": {reason}" if reason else "")
        return self._finish(uids, timeout)

    def inject_faults(self, schedule: FaultSchedule | None) -> FaultSchedule | None:
        """Fire ``schedule`` during the next runs (replaces the previous schedule).

        The schedule is bound to this TXM's ring current and front-end shutter and
        to ``RE.request_pause``; None removes the current schedule.
        """
        if self._fault_token is not None:
            self.RE.unsubscribe(self._fault_token)
            self._fault_token = None
        self.faults = self.txm.faults = schedule
        if schedule is not None:
            schedule.bind(
                ring=self.txm.ring_current,
                fe_shutter=self.txm.fe_shutter,
                pause=self.RE.request_pause,
            )
            self._fault_token = self.RE.subscribe(schedule)
        return schedule

    def _finish(self, uids: tuple[str, ...], timeout: float) -> tuple[str, ...]:
        self.own_runs.update(uids)
        if self.live is not None:
            try:
                self.live.flush(timeout)
            except CallbackFailedError:
                logger.exception("live analysis failed; the acquisition was not affected")
        if self.writer is not None:
            self.writer.flush(timeout)
            pending = self.journaled_only()
            if pending:
                logger.error(
                    "%d run(s) are not (completely) in tiled yet: %s. Their documents are "
                    "journaled in %s; run `ssb-beamline sync` when tiled is back.",
                    len(pending),
                    ", ".join(pending),
                    self.journal.directory,
                )
        return uids

    def journaled_only(self) -> list[str]:
        """The session's runs whose documents are journaled but not all in tiled.

        Runs of other sessions sharing the data directory (their live runs are
        pending too) are not this session's concern.
        """
        if self.journal is None:
            return []
        return [uid for uid in self.journal.pending() if uid in self.own_runs]

    def _notify(self, update: LiveUpdate) -> None:
        if self.on_update is not None:
            self.on_update(update)

    def close(self) -> None:
        """Abort a paused run (so that it is stored complete), then stop the workers."""
        try:
            if self.RE.state == "paused":
                self.abort("the session closed while the run was paused")
        finally:
            self.RE.clear_suspenders()  # also stops polling the ring current and shutter
            for worker in (self.live, self.writer):
                if worker is not None:
                    worker.close()
            if self.publisher is not None:
                self.publisher.close()
            self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        aborted_before = len(self.aborted)
        self.close()
        if isinstance(exc, RunEngineInterrupted) and not isinstance(exc, RunAborted):
            uids = tuple(self.aborted[aborted_before:])
            if uids:
                raise RunAborted(uids) from exc
