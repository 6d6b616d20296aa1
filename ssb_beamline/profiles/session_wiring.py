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
    """Subscribe the live tomography / 3D XANES / holotomography analysis (own thread)."""
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
