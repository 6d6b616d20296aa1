"""A ready-made simulated STXM session: sim STXM, RunEngine, tiled, live valence-ratio maps.

Like :func:`~ssb_beamline.profiles.simulated.simulated_beamline` (same store,
journaled tiled writer, session methods ``run`` / ``resume`` / ``abort`` /
``close``), for :func:`~ssb_beamline.sim_devices.stxm.make_sim_stxm`; the live
analysis is :func:`~ssb_beamline.callbacks.stxm_live.stxm_live_factory` on its own
thread. :func:`replay_stxm_runs` pushes stored STXM runs through the same analysis.

Examples
--------
>>> from ssb_beamline.profiles.stxm import simulated_stxm
>>> with simulated_stxm() as session:                         # doctest: +SKIP
...     (uid,) = session.run(session.ratio_scan(nx=64, ny=64))
...     session.outcomes[-1].maps["ratio"]
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from event_model import RunRouter
from ophyd_async.plan_stubs import ensure_connected

from ssb_beamline.callbacks.background import BackgroundCallback
from ssb_beamline.callbacks.stxm_live import STXM_PLANS, STXMLiveAnalysis, stxm_live_factory
from ssb_beamline.callbacks.xanes_results import LiveOutcome
from ssb_beamline.plans.stxm import NI_L3_PEAKS_EV, ni_l3_stack_grid, stxm_ratio_scan
from ssb_beamline.plans.stxm import stxm_stack_scan as _stack_plan
from ssb_beamline.plans.suspenders import checkpoint_after_each_event
from ssb_beamline.profiles.simulated import (
    SimulatedBeamline,
    attach_journaled_writer,
    new_run_engine,
    result_sink,
)
from ssb_beamline.sim_devices.phantom import PhantomConfig
from ssb_beamline.sim_devices.stxm import SimSTXM, STXMSampleConfig, make_sim_stxm
from ssb_beamline.sim_devices.stxm_physics import l3_coefficients
from ssb_beamline.storage import TiledResultSink, TiledStore, open_store
from ssb_beamline.storage.replay import ReplayError, check_run_closed, resolve_uid, run_documents

__all__ = [
    "DEFAULT_STXM_PHANTOM",
    "SimulatedSTXM",
    "reference_ratios",
    "replay_stxm_runs",
    "simulated_stxm",
]

logger = logging.getLogger(__name__)

#: Default sample: a 12.8 um field of a few NMC particles (0.1 um TXM pixels).
DEFAULT_STXM_PHANTOM = PhantomConfig(
    shape=(128, 128), pixel_size_um=0.1, n_particles=7, radius_range_um=(0.8, 2.0), seed=3
)


def reference_ratios(e1: float, e2: float) -> tuple[float, float, float]:
    """(R_Ni2+, R_Ni3+, k) of pure NMC811 end members: what measured standards would give.

    ``R = OD(e2) / OD(e1)`` of the all-Ni2+ and all-Ni3+ material of the simulated
    sample, ``k = OD_Ni3+(e1) / OD_Ni2+(e1)``.

    Parameters
    ----------
    e1, e2 : float
        The two energies of the ratio, eV (the Ni L3 peaks of Ni2+ and Ni3+, e.g.
        853.0 and 855.5).

    Returns
    -------
    r2, r3 : float
        ``OD(e2) / OD(e1)`` of the all-Ni2+ and all-Ni3+ material.
    k : float
        ``OD_Ni3+(e1) / OD_Ni2+(e1)`` (for the Ni3+ fraction formula).
    """
    c1, c2 = l3_coefficients(e1), l3_coefficients(e2)
    r2 = float(c2.nmc(0.0) / c1.nmc(0.0))
    r3 = float(c2.nmc(1.0) / c1.nmc(1.0))
    return r2, r3, float(c1.nmc(1.0) / c1.nmc(0.0))


@dataclass
class SimulatedSTXM(SimulatedBeamline):
    """A simulated STXM session (``txm`` holds the `SimSTXM`, also as ``stxm``).

    Attributes
    ----------
    analyses : list of STXMLiveAnalysis
        The live analysis of each run (OD maps, recovered fly positions), newest last.
    RE : bluesky.RunEngine
        With the tiled writer and the live STXM analysis subscribed.
    txm : SimSTXM
        The simulated microscope (also ``stxm``).
    store : TiledStore
        The tiled store (embedded server unless a URI was given).
    outcomes : list of LiveOutcome
        One per analysed run, newest last.
    on_update : callable or None
        Called with an ``STXMUpdate`` after each line.
    writer, live : BackgroundCallback or None
        The tiled writer and the live analysis, each on its own thread.
    journal : DocumentJournal or None
        The local journal of every document.
    faults : FaultSchedule or None
        Faults being injected.
    aborted : list of str
        Start uids of the runs aborted in this session.
    own_runs : set of str
        Start uids of the runs this session took.
    publisher : bluesky.callbacks.zmq.Publisher or None
        The 0MQ publisher, when documents go to an analysis worker.
    """

    analyses: list[STXMLiveAnalysis] = field(default_factory=list)

    @property
    def stxm(self) -> SimSTXM:
        """The simulated microscope (devices, sample, truth accessors)."""
        return self.txm

    def xanes(self, *args: Any, **kwargs: Any):
        """Not available: this is an STXM session (use :meth:`ratio_scan` / :meth:`stack_scan`)."""
        raise NotImplementedError(
            "This is an STXM session; use ratio_scan() or stack_scan(), or "
            "simulated_beamline() for a TXM XANES scan."
        )

    def _common(self, sample: Mapping[str, Any] | None) -> dict[str, Any]:
        s = self.stxm
        seed = s.phantom.config.seed
        return {
            "sample_out": s.sample_out_um,
            "sample": dict(sample or {"name": "simulated NMC811 thin section (0.1 um)",
                                      "phantom_seed": seed}),
            "baseline": [s.shutter],
        }  # fmt: skip

    def ratio_scan(self, energies: Sequence[float] = NI_L3_PEAKS_EV, *, nx: int = 48,
                   ny: int = 48, step_um: float = 0.2, dwell_time: float = 0.001,
                   mode: str = "fly", calibrated: bool = True,
                   sample: Mapping[str, Any] | None = None, **kwargs: Any):  # fmt: skip
        """A ``stxm_ratio_scan`` plan; ``calibrated`` adds the end members' reference ratios."""
        s = self.stxm
        pair = kwargs.get("ratio_energies") or list(energies)[:2]
        if calibrated and "reference_ratios" not in kwargs:
            r2, r3, k = reference_ratios(*pair)
            kwargs.update(reference_ratios=[r2, r3], reference_e1_ratio=k)
        return stxm_ratio_scan(s.detector, s.energy, s.stage.x, s.stage.y, s.shutter, s.i0,
                               list(energies), nx=nx, ny=ny, step_um=step_um,
                               dwell_time=dwell_time, mode=mode, **self._common(sample),
                               **kwargs)  # fmt: skip

    def stack_scan(self, energies: Sequence[float] | None = None, *, nx: int = 32,
                   ny: int = 32, step_um: float = 0.4, dwell_time: float = 0.001,
                   mode: str = "fly", sample: Mapping[str, Any] | None = None,
                   **kwargs: Any):  # fmt: skip
        """A ``stxm_stack_scan`` plan (default: `ni_l3_stack_grid`)."""
        s = self.stxm
        return _stack_plan(s.detector, s.energy, s.stage.x, s.stage.y, s.shutter, s.i0,
                           list(energies or ni_l3_stack_grid()), nx=nx, ny=ny, step_um=step_um,
                           dwell_time=dwell_time, mode=mode, **self._common(sample),
                           **kwargs)  # fmt: skip


def simulated_stxm(
    *,
    phantom: PhantomConfig | None = None,
    sample: STXMSampleConfig | None = None,
    tiled_uri: str | None = None,
    data_dir: str | Path | None = None,
    live_analysis: bool = True,
    write_to_tiled: bool = True,
    **stxm_kwargs: Any,
) -> SimulatedSTXM:
    """Build and connect a simulated STXM session.

    Parameters
    ----------
    phantom : PhantomConfig, optional
        The sample (default `DEFAULT_STXM_PHANTOM`); the same config as a TXM
        session's gives the same particles.
    sample : STXMSampleConfig, optional
        Section thickness, stage offset, counting chain.
    tiled_uri, data_dir, live_analysis, write_to_tiled
        As for :func:`~ssb_beamline.profiles.simulated.simulated_beamline`.
    **stxm_kwargs
        Passed to :func:`~ssb_beamline.sim_devices.stxm.make_sim_stxm`.
    """
    store = open_store(tiled_uri, data_dir=data_dir)
    try:
        stxm = make_sim_stxm(phantom or DEFAULT_STXM_PHANTOM, sample, **stxm_kwargs)
        RE = new_run_engine(store)
        RE(ensure_connected(*stxm.devices))
        RE.preprocessors.append(checkpoint_after_each_event)
        session = SimulatedSTXM(RE, stxm, store)
        if write_to_tiled:
            attach_journaled_writer(session, store)
        if live_analysis:
            factory = stxm_live_factory(sink=result_sink(store) if write_to_tiled else None,
                                        outcomes=session.outcomes,
                                        analyses=session.analyses)  # fmt: skip
            session.live = BackgroundCallback(RunRouter([factory]), "live STXM analysis")
            RE.subscribe(session.live)
    except BaseException:
        store.close()
        raise
    return session


def replay_stxm_runs(store: TiledStore, uids: Iterable[str], *,
                     store_results: bool = True) -> list[LiveOutcome]:  # fmt: skip
    """Push stored STXM runs through a fresh live STXM analysis (results: ``source="replay"``).

    Parameters
    ----------
    store : TiledStore
        The store holding the runs (and receiving the results).
    uids : iterable of str
        Uids or unique prefixes of closed ``stxm_ratio_scan`` / ``stxm_stack_scan``
        runs; all are checked before any is replayed.
    store_results : bool, default True
        Store each replay's maps as a new results version (keyword only); False
        keeps them in the outcomes only.

    Returns
    -------
    list of LiveOutcome
        One per run, in the order given.

    Raises
    ------
    ReplayError
        For an unknown uid, an open run, or a run not taken by an STXM plan.
    """
    runs = {}
    for partial in uids:
        uid = resolve_uid(store.raw, partial)
        run = store.raw[uid]
        check_run_closed(run)
        plan = (run.metadata.get("start") or {}).get("plan_name")
        if plan not in STXM_PLANS:
            raise ReplayError(
                f"Run {uid} was taken by {plan!r}, not {' or '.join(STXM_PLANS)}; there is "
                "no STXM analysis to replay it through."
            )
        runs[uid] = run
    sink = TiledResultSink(store.results, store.journal_dir, runs=store.raw) if store_results \
        else None  # fmt: skip
    outcomes = []
    for uid, run in runs.items():
        callback = STXMLiveAnalysis(sink=sink, source="replay")
        for name, doc in run_documents(run, fill="never"):
            callback(name, doc)
        outcomes.append(callback.outcome)
        logger.info("replayed STXM run %s: %s", uid, "ok" if callback.outcome.ok else "failed")
    return outcomes
