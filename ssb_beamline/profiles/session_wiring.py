"""What every XANES session subscribes: suspenders, journaled tiled writer, live analysis.

Shared by the simulated profile and the beamline-file profile, so both sessions
store and analyse runs identically.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from event_model import RunRouter

from ssb_beamline.callbacks import xanes_live_factory
from ssb_beamline.callbacks.background import BackgroundCallback
from ssb_beamline.plans.suspenders import beamline_suspenders
from ssb_beamline.profiles.standard import standard_post_processors
from ssb_beamline.reference_data import ni_k_edge_references
from ssb_beamline.storage import TiledStore

if TYPE_CHECKING:
    from ssb_beamline.profiles.sim_session import SimulatedSession

__all__ = ["attach_tomo_analysis", "wire_session"]


def wire_session(
    session: SimulatedSession,
    store: TiledStore,
    ring_current: Any,
    fe_shutter: Any,
    *,
    live_analysis: bool = True,
    write_to_tiled: bool = True,
    suspenders: bool = True,
    suspender_options: Mapping[str, float] | None = None,
) -> None:
    """Install the beam suspenders and subscribe the tiled writer and live XANES analysis.

    Writer and live analysis run on their own threads: the RunEngine only queues
    documents, so neither can slow or stop the acquisition.

    Parameters
    ----------
    session : SimulatedSession
        The session to wire (its ``RE``, ``outcomes``, ``writer``, ``live``).
    store : TiledStore
        Where runs and results are written.
    ring_current : device or signal or None
        Ring current, mA, watched by a suspender; None: no ring suspender.
    fe_shutter : device or signal or None
        Front-end shutter watched by a suspender; None: no shutter suspender.
    live_analysis : bool, default True
        Subscribe the live XANES analysis (keyword only).
    write_to_tiled : bool, default True
        Subscribe the journaled tiled writer, and publish results to tiled.
    suspenders : bool, default True
        Install the beam suspenders.
    suspender_options : mapping of str to float, optional
        ``ring_floor_ma``, ``resume_ma`` (mA) and ``sleep_s`` (s) of
        :func:`~ssb_beamline.plans.suspenders.beamline_suspenders`; an unknown key raises
        ``TypeError``.
    """
    from ssb_beamline.profiles.simulated import attach_journaled_writer, result_sink

    RE = session.RE
    if suspenders:
        for suspender in beamline_suspenders(
            ring_current, fe_shutter, **dict(suspender_options or {})
        ):
            RE.install_suspender(suspender)
    if write_to_tiled:
        attach_journaled_writer(session, store)
    if live_analysis:
        factory = xanes_live_factory(
            ni_k_edge_references(),
            sink=result_sink(store) if write_to_tiled else None,
            on_update=session._notify,
            outcomes=session.outcomes,
            post_processors=standard_post_processors(),
        )
        session.live = BackgroundCallback(RunRouter([factory]), "live analysis")
        RE.subscribe(session.live)


def attach_tomo_analysis(
    session: SimulatedSession,
    store: TiledStore,
    write_to_tiled: bool = True,
    tomo_options: Mapping[str, Any] | None = None,
    holo_options: Mapping[str, Any] | None = None,
) -> None:
    """Subscribe the live tomography / 3D XANES / holotomography analysis (own thread).

    Parameters
    ----------
    session : SimulatedSession
        The session whose RunEngine gets the analysis; its ``outcomes`` receive each
        run's ``TomoOutcome`` and ``session.live`` is set.
    store : TiledStore
        Where results are stored.
    write_to_tiled : bool, default True
        Publish the volumes to ``store.results``; False keeps them in the outcomes.
    tomo_options, holo_options : mapping, optional
        Keyword arguments of :class:`~ssb_beamline.callbacks.TomoLiveAnalysis` and
        :class:`~ssb_beamline.callbacks.HoloLiveAnalysis` (see
        :func:`~ssb_beamline.callbacks.tomo_live_factory`).
    """
    from ssb_beamline.callbacks.holo_live import tomo_live_factory
    from ssb_beamline.profiles.simulated import result_sink

    factory = tomo_live_factory(
        ni_k_edge_references(),
        sink=result_sink(store) if write_to_tiled else None,
        outcomes=session.outcomes,
        tomo_options=tomo_options,
        holo_options=holo_options,
    )
    session.live = BackgroundCallback(RunRouter([factory]), "live tomography")
    session.RE.subscribe(session.live)
