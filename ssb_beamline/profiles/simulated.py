"""A ready-made simulated beamline session: sim TXM, RunEngine, tiled, live analysis."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bluesky.run_engine import RunEngine
from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider
from ophyd_async.plan_stubs import ensure_connected

from ssb_beamline.callbacks import LiveUpdate
from ssb_beamline.callbacks.background import BackgroundCallback
from ssb_beamline.plans import ni_k_edge_grid, xanes_scan
from ssb_beamline.plans.focus_models import FocusModel, register_focus_model
from ssb_beamline.plans.suspenders import checkpoint_after_each_event
from ssb_beamline.private_files import make_private_dir
from ssb_beamline.profiles.session_wiring import wire_session
from ssb_beamline.profiles.sim_session import (
    RunAborted,
    SimulatedSession,
    quiet_disk_full_tracebacks,
)
from ssb_beamline.profiles.zmq_link import attach_publisher
from ssb_beamline.progress import LogProgress, enable_progress_logging
from ssb_beamline.sim_devices.factory import SimTXM, make_sim_txm
from ssb_beamline.sim_devices.faults import FaultSchedule
from ssb_beamline.sim_devices.phantom import PhantomConfig
from ssb_beamline.storage import TiledResultSink, TiledStore, open_store
from ssb_beamline.storage.catalog import ScanIdCounter
from ssb_beamline.storage.journal import DocumentJournal, JournaledWriter
from ssb_beamline.storage.server_config import default_data_dir

__all__ = [
    "SIM_FOCUS_MODEL",
    "RunAborted",
    "SimulatedBeamline",
    "attach_journaled_writer",
    "new_run_engine",
    "quiet_disk_full_tracebacks",
    "result_sink",
    "sim_focus_model",
    "simulated_beamline",
]

logger = logging.getLogger(__name__)

#: Name under which the simulated profiles register their focus model (``focus="sim"``).
SIM_FOCUS_MODEL = "sim"


def sim_focus_model(txm: Any) -> FocusModel:
    """The in-focus (zone-plate z, detector z) of a simulated microscope, as a focus model.

    Parameters
    ----------
    txm : SimTXM or SimTomo
        The simulated microscope.
    """

    def focus(energy_ev: float) -> tuple[float, float]:
        positions = txm.focus_positions(energy_ev)
        return positions.zp_z_mm, positions.det_z_mm

    return focus


@dataclass
class SimulatedBeamline(SimulatedSession[SimTXM]):
    """Everything a simulated XANES session needs, wired together.

    Attributes
    ----------
    RE : bluesky.RunEngine
        With the tiled writer and the live XANES analysis subscribed.
    txm : SimTXM
        The simulated microscope (devices, phantom, ground truth).
    store : TiledStore
        The tiled store (embedded server unless a URI was given).
    outcomes : list of LiveOutcome
        One per analysed run, newest last.
    on_update : callable or None
        Called with a :class:`LiveUpdate` after each analysed image.
    writer, live : BackgroundCallback or None
        The tiled writer and the live analysis, each on its own thread.
    journal : DocumentJournal or None
        The local journal of every document.
    faults : FaultSchedule or None
        Faults being injected.
    aborted : list of str
        Start uids of the runs aborted in this session.
    own_runs : set of str
        Start uids of the runs this session took (another process may share the journal).
    publisher : bluesky.callbacks.zmq.Publisher or None
        The 0MQ publisher, when documents go to an analysis worker.
    """

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
        focus = sim_focus_model(txm)

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


def result_sink(store: TiledStore) -> TiledResultSink:
    """Where live results go: tiled's ``results``, linked from each run, journaled on failure.

    Parameters
    ----------
    store : TiledStore
        The session's store.
    """
    return TiledResultSink(store.results, store.journal_dir, runs=store.raw)


def new_run_engine(store: TiledStore) -> RunEngine:
    """A RunEngine whose scan ids persist in the store's data directory (and in tiled).

    Parameters
    ----------
    store : TiledStore
        The session's store (its data directory keeps the scan-id counter).
    """
    counter = ScanIdCounter(store.journal_dir.parent, store.raw)
    RE = RunEngine({}, call_returns_result=False, scan_id_source=counter)
    # a Python session shows each run's progress at INFO (unless logging is configured)
    enable_progress_logging()
    RE.subscribe(LogProgress())
    return RE


def attach_journaled_writer(session: SimulatedSession, store: TiledStore) -> None:
    """Journal every document locally and write it to tiled, on a background thread.

    Parameters
    ----------
    session : SimulatedSession
        The session to subscribe the writer to.
    store : TiledStore
        Where the documents go, and whose journal folder keeps them meanwhile.
    """
    session.journal = DocumentJournal(store.journal_dir)
    session.writer = BackgroundCallback(JournaledWriter(store.raw, session.journal), "tiled writer")
    session.RE.subscribe(session.writer)


def simulated_beamline(  # noqa: PLR0913 -- keyword-only options of the simulated session
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
    zmq_publish: str | None = None,
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
    zmq_publish : str, optional
        ``HOST:PORT`` of a 0MQ proxy's input: publish every document there for an
        analysis worker (``ssb-beamline analyze --zmq``); pass
        ``live_analysis=False`` so that the runs are not analysed twice.
    **txm_options
        Passed to :func:`~ssb_beamline.sim_devices.factory.make_sim_txm`.
    """
    store = open_store(tiled_uri, data_dir=data_dir)
    try:
        # a remote server reads the files from its own data directory: by default the
        # same one as here ($SSB_DATA_DIR), always as an absolute path
        local = Path(data_dir or default_data_dir()).expanduser().resolve() / "detector"
        folder = Path(detector_dir or store.detector_dir or local).expanduser().resolve()
        make_private_dir(folder)
        txm = make_sim_txm(
            phantom,
            StaticPathProvider(UUIDFilenameProvider(), folder),
            **txm_options,
        )
        # queue items name the focus model: focus="sim" (the latest simulated session's)
        register_focus_model(SIM_FOCUS_MODEL, sim_focus_model(txm))
        RE = new_run_engine(store)
        quiet_disk_full_tracebacks(RE)
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
        if zmq_publish:
            beamline.publisher = attach_publisher(RE, zmq_publish)
    except BaseException:
        store.close()
        raise
    return beamline
