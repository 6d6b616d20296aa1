"""A ready-made simulated beamline session: sim TXM, RunEngine, tiled, live analysis."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bluesky.run_engine import RunEngine
from bluesky.utils import RunEngineInterrupted
from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider
from ophyd_async.plan_stubs import ensure_connected

from ssb_beamline.callbacks import LiveOutcome, LiveUpdate
from ssb_beamline.callbacks.background import BackgroundCallback, CallbackFailedError
from ssb_beamline.plans import ni_k_edge_grid, xanes_scan
from ssb_beamline.plans.suspenders import checkpoint_after_each_event
from ssb_beamline.profiles.session_wiring import wire_session
from ssb_beamline.sim_devices.factory import SimTXM, make_sim_txm
from ssb_beamline.sim_devices.faults import FaultSchedule
from ssb_beamline.sim_devices.phantom import PhantomConfig
from ssb_beamline.storage import TiledStore, open_store
from ssb_beamline.storage.journal import DocumentJournal, JournaledWriter

logger = logging.getLogger(__name__)


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


@dataclass
class SimulatedBeamline:
    """Everything a simulated XANES session needs, wired together.

    Attributes
    ----------
    RE : RunEngine with the tiled writer and the live XANES analysis subscribed
    txm : the simulated microscope (devices, phantom, ground truth)
    store : the tiled store (embedded server unless a URI was given)
    outcomes : one :class:`LiveOutcome` per analysed run, newest last
    """

    RE: RunEngine
    txm: SimTXM
    store: TiledStore
    outcomes: list[LiveOutcome] = field(default_factory=list)
    on_update: Callable[[LiveUpdate], None] | None = None
    writer: BackgroundCallback | None = None
    journal: DocumentJournal | None = None
    live: BackgroundCallback | None = None
    faults: FaultSchedule | None = None
    aborted: list[str] = field(default_factory=list)
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
        """
        return self._finish(self.RE(plan), timeout)

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
        if self.live is not None:
            try:
                self.live.flush(timeout)
            except CallbackFailedError:
                logger.exception("live analysis failed; the acquisition was not affected")
        if self.writer is not None:
            self.writer.flush(timeout)
            pending = self.journal.pending() if self.journal is not None else []
            if pending:
                logger.error(
                    "%d run(s) are not (completely) in tiled yet: %s. Their documents are "
                    "journaled in %s; run `ssb-beamline sync` when tiled is back.",
                    len(pending),
                    ", ".join(pending),
                    self.journal.directory,
                )
        return uids

    def _notify(self, update: LiveUpdate) -> None:
        if self.on_update is not None:
            self.on_update(update)

    def xanes(
        self,
        energies: Any = "standard",
        *,
        track_focus: bool = True,
        exposure_time: float | None = None,
        n_dark: int = 5,
        flat_every: int = 1,
        sample: Mapping[str, Any] | None = None,
        md: Mapping[str, Any] | None = None,
    ):
        """A ``xanes_scan`` plan on this TXM (``energies``: a preset name or a list, eV)."""
        txm = self.txm
        grid = ni_k_edge_grid(energies) if isinstance(energies, str) else energies

        def focus(energy_ev: float) -> tuple[float, float]:
            positions = txm.focus_positions(energy_ev)
            return positions.zp_z_mm, positions.det_z_mm

        config = txm.phantom.config if hasattr(txm.phantom, "config") else None
        return xanes_scan(
            txm.detector,
            txm.energy,
            txm.zp_z,
            txm.det_z,
            txm.sample.x,
            txm.shutter,
            txm.i0,
            grid,
            sample_out=txm.sample_out_x_um,
            focus=focus if track_focus else None,
            exposure_time=exposure_time,
            n_dark=n_dark,
            flat_every=flat_every,
            sample=dict(
                sample
                or {
                    "name": "simulated NMC811 / Li6PS5Cl / carbon composite cathode",
                    "phantom_seed": getattr(config, "seed", None),
                }
            ),
            optics={
                "magnification": txm.model.optics.magnification,
                "pixel_size_um": txm.pixel_size_um,
                "simulated": True,
            },
            baseline=[
                txm.sample,
                txm.shutter,
                *(d for d in (txm.ring_current, txm.fe_shutter) if d is not None),
            ],
            md=md,
        )

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
            self.store.close()

    def __enter__(self) -> SimulatedBeamline:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        aborted_before = len(self.aborted)
        self.close()
        if isinstance(exc, RunEngineInterrupted) and not isinstance(exc, RunAborted):
            uids = tuple(self.aborted[aborted_before:])
            if uids:
                raise RunAborted(uids) from exc


def attach_journaled_writer(session: SimulatedBeamline, store: TiledStore) -> None:
    """Journal every document locally and write it to tiled, on a background thread."""
    session.journal = DocumentJournal(store.journal_dir)
    session.writer = BackgroundCallback(JournaledWriter(store.raw, session.journal), "tiled writer")
    session.RE.subscribe(session.writer)


def simulated_beamline(
    *,
    tiled_uri: str | None = None,
    data_dir: str | Path | None = None,
    detector_dir: str | Path | None = None,
    phantom: PhantomConfig | None = None,
    on_update: Callable[[LiveUpdate], None] | None = None,
    live_analysis: bool = True,
    write_to_tiled: bool = True,
    suspenders: bool = True,
    suspender_options: Mapping[str, float] | None = None,
    faults: FaultSchedule | None = None,
    **txm_options: Any,
) -> SimulatedBeamline:
    """Build and connect a simulated beamline session.

    Parameters
    ----------
    tiled_uri : str, optional
        A running tiled server; default: the embedded server in ``data_dir``.
    data_dir : path, optional
        Data directory of the embedded server.
    detector_dir : path, optional
        Where the detector writes HDF5 files; default the embedded server's readable
        folder (a remote server must be able to read this folder).
    phantom : PhantomConfig, optional
        The simulated sample.
    on_update : callable, optional
        Progress of the live analysis (see :class:`LiveUpdate`); can be set later as
        ``beamline.on_update``.
    live_analysis, write_to_tiled : bool
        Subscribe the live XANES analysis / the tiled writer (both on by default;
        off only to measure their overhead).
    suspenders : bool
        Suspend the scan while the ring current is low or the front-end shutter
        closed, and resume when the beam is back (on by default).
    suspender_options : mapping, optional
        ``ring_floor_ma``, ``resume_ma``, ``sleep_s`` for
        :func:`~ssb_beamline.plans.suspenders.beamline_suspenders`.
    faults : FaultSchedule, optional
        Faults to inject (beam dumps, shutter closures, pauses); see
        :meth:`SimulatedBeamline.inject_faults`.
    **txm_options
        Passed to :func:`~ssb_beamline.sim_devices.factory.make_sim_txm`.
    """
    store = open_store(tiled_uri, data_dir=data_dir)
    try:
        folder = Path(detector_dir or store.detector_dir or Path(data_dir or ".") / "detector")
        folder.mkdir(parents=True, exist_ok=True)
        txm = make_sim_txm(
            phantom,
            StaticPathProvider(UUIDFilenameProvider(), folder),
            **txm_options,
        )
        RE = RunEngine({}, call_returns_result=False)
        RE(ensure_connected(*txm.devices))
        # a pause or suspension rewinds to the last checkpoint: never behind a stored event
        RE.preprocessors.append(checkpoint_after_each_event)
        if hasattr(txm.detector, "observe"):
            RE.subscribe(txm.detector.observe)  # which frames are stored, for pauses
        beamline = SimulatedBeamline(RE, txm, store, on_update=on_update)
        beamline.inject_faults(faults)
        wire_session(
            beamline, store, txm.ring_current, txm.fe_shutter,
            live_analysis=live_analysis, write_to_tiled=write_to_tiled,
            suspenders=suspenders, suspender_options=suspender_options,
        )  # fmt: skip
    except BaseException:
        store.close()
        raise
    return beamline
