"""The simulated beamline as a bluesky-queueserver worker namespace.

In the RE worker (`bluesky_queueserver.is_re_worker_active`) this builds a
:func:`~ssb_beamline.profiles.simulated.simulated_beamline` session (RunEngine,
journaled tiled writer, in-process live XANES analysis, suspenders) and, on the
same RunEngine, a simulated holotomography microscope (``tomo_*`` devices) with its
live tomography analysis. When ``qserver-list-plans-devices`` loads the startup,
only the devices are built (tiny phantoms, nothing connected, no storage), so
listing touches no server.

Environment
-----------
SSB_TILED_URI, SSB_TILED_API_KEY
    The tiled server to store into; without ``SSB_TILED_URI`` the embedded server
    in ``SSB_DATA_DIR`` (default ``~/ssb-data``) is started.
SSB_DETECTOR_DIR
    Where the simulated cameras write HDF5 (must be readable by the tiled server);
    default the embedded server's detector folder, or ``$SSB_DATA_DIR/detector``.
SSB_SIM_PHANTOM_PX
    Side of the square 2D phantom, px (default: the profile's 512).
SSB_LIVE_ANALYSIS
    ``0`` leaves the live analysis to a separate process (``ssb-beamline analyze
    --zmq``); default ``1``: in-process.
SSB_ZMQ_PUBLISH
    ``host:port`` of a 0MQ proxy: documents are also published there.

Focus models: ``focus="sim"`` (2D TXM) and ``focus="sim_tomo"`` (tomography).
"""

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from ssb_beamline.plans.focus_models import register_focus_model
from ssb_beamline.private_files import make_private_dir
from ssb_beamline.profiles.qserver.namespace import ZMQ_PUBLISH_ENV, queue_namespace

__all__ = [
    "DETECTOR_DIR_ENV",
    "LIVE_ANALYSIS_ENV",
    "PHANTOM_PX_ENV",
    "TOMO_FOCUS_MODEL",
    "sim_devices",
    "sim_namespace",
    "sim_phantom",
    "stxm_devices",
]

logger = logging.getLogger(__name__)

DETECTOR_DIR_ENV = "SSB_DETECTOR_DIR"
PHANTOM_PX_ENV = "SSB_SIM_PHANTOM_PX"
LIVE_ANALYSIS_ENV = "SSB_LIVE_ANALYSIS"
#: Focus model name of the simulated tomography microscope.
TOMO_FOCUS_MODEL = "sim_tomo"
#: Side of the phantoms built only to list plans and devices, px.
_LISTING_PX = 32


def sim_phantom(px: int | None) -> Any:
    """The 2D phantom of the startup: the profile's default, or ``px`` x ``px`` small."""
    from ssb_beamline.sim_devices.phantom import PhantomConfig

    if px is None:
        return PhantomConfig()
    return PhantomConfig(
        shape=(px, px), n_particles=max(3, px // 16), radius_range_um=(0.8, 2.0), min_gap_um=0.3
    )


def _phantom_px() -> int | None:
    text = os.environ.get(PHANTOM_PX_ENV)
    if not text:
        return None
    if not text.isdigit() or int(text) < 32:
        raise ValueError(f"{PHANTOM_PX_ENV}={text!r}: give an integer side >= 32 px, e.g. 64.")
    return int(text)


def _make_tomo(folder: Path, px: int) -> Any:
    """A small simulated holotomography microscope, devices named ``tomo_*``."""
    from ssb_beamline.profiles.simulated_tomo import (
        HOLO_DISTANCE_MM,
        HOLO_ENERGY_EV,
        full_view_margin,
        pad_phantom3d,
    )
    from ssb_beamline.sim_devices.phantom3d import Phantom3DConfig, make_phantom3d
    from ssb_beamline.sim_devices.projection import PhantomProjector
    from ssb_beamline.sim_devices.tomo_factory import make_sim_tomo

    config = Phantom3DConfig(shape=(px // 2, px, px), radius_range_um=(0.4, 1.0), n_particles=8)
    sample = make_phantom3d(config)
    padded = pad_phantom3d(sample, full_view_margin(sample.shape))
    return make_sim_tomo(
        projector=PhantomProjector(padded), directory=folder, mode="holo",
        energy_ev=HOLO_ENERGY_EV, rotation_velocity_deg_s=360.0, exposure_time=0.01,
        rotation_max_velocity_deg_s=720.0, holo_z_mm=HOLO_DISTANCE_MM,
        holo_z_limits_mm=(0.05, 100.0), name_prefix="tomo_",
    )  # fmt: skip


def _make_stxm(px: int) -> Any:
    """A simulated Ni L3 STXM on a ``px`` x ``px`` phantom, devices named ``stxm_*``."""
    from ssb_beamline.sim_devices.phantom import PhantomConfig
    from ssb_beamline.sim_devices.stxm import make_sim_stxm

    return make_sim_stxm(PhantomConfig(shape=(px, px), pixel_size_um=0.1, n_particles=4,
                                       radius_range_um=(0.5, 1.2), seed=3))  # fmt: skip


def stxm_devices(stxm: Any) -> dict[str, Any]:
    """The queue-server names of the simulated STXM's devices."""
    return {
        "stxm_detector": stxm.detector, "stxm_energy": stxm.energy, "stxm_stage": stxm.stage,
        "stxm_stage_x": stxm.stage.x, "stxm_stage_y": stxm.stage.y,
        "stxm_shutter": stxm.shutter, "stxm_i0": stxm.i0,
    }  # fmt: skip


def sim_devices(txm: Any, tomo: Any) -> dict[str, Any]:
    """The queue-server names of the simulated devices."""
    return {
        "detector": txm.detector, "energy": txm.energy, "zp_z": txm.zp_z, "det_z": txm.det_z,
        "sample": txm.sample, "sample_x": txm.sample.x, "shutter": txm.shutter, "i0": txm.i0,
        "tomo_detector": tomo.detector, "tomo_energy": tomo.energy, "tomo_zp_z": tomo.zp_z,
        "tomo_det_z": tomo.det_z, "tomo_sample": tomo.sample, "tomo_sample_x": tomo.sample.x,
        "tomo_rotation": tomo.sample.rotation, "tomo_holo_z": tomo.holo_z,
        "tomo_shutter": tomo.shutter, "tomo_i0": tomo.i0,
    }  # fmt: skip


def _listing_namespace() -> dict[str, Any]:
    from ssb_beamline.profiles.simulated import SIM_FOCUS_MODEL, sim_focus_model
    from ssb_beamline.sim_devices.factory import make_sim_txm

    folder = Path(tempfile.gettempdir()) / "ssb-qserver-listing"  # never written
    txm = make_sim_txm(sim_phantom(_LISTING_PX), directory=folder)
    tomo = _make_tomo(folder, _LISTING_PX)
    register_focus_model(SIM_FOCUS_MODEL, sim_focus_model(txm))
    register_focus_model(TOMO_FOCUS_MODEL, sim_focus_model(tomo))
    devices = {**sim_devices(txm, tomo), **stxm_devices(_make_stxm(_LISTING_PX))}
    return queue_namespace(None, devices)


def _worker_namespace() -> dict[str, Any]:
    from event_model import RunRouter
    from ophyd_async.plan_stubs import ensure_connected

    from ssb_beamline.callbacks.background import BackgroundCallback
    from ssb_beamline.callbacks.holo_live import tomo_live_factory
    from ssb_beamline.profiles.simulated import result_sink, sim_focus_model, simulated_beamline
    from ssb_beamline.reference_data import ni_k_edge_references
    from ssb_beamline.storage.server_config import TILED_URI_ENV, default_data_dir

    live = os.environ.get(LIVE_ANALYSIS_ENV, "1").strip().lower() not in ("0", "off", "no")
    detector_dir = os.environ.get(DETECTOR_DIR_ENV)
    if detector_dir is None and os.environ.get(TILED_URI_ENV):
        detector_dir = str(default_data_dir() / "detector")
    px = _phantom_px()
    session = simulated_beamline(phantom=sim_phantom(px), detector_dir=detector_dir,
                                 live_analysis=live,
                                 zmq_publish=os.environ.get(ZMQ_PUBLISH_ENV) or None)  # fmt: skip
    try:
        folder = Path(detector_dir or session.store.detector_dir) / "tomo"
        make_private_dir(folder)
        tomo = _make_tomo(folder, min(px or 64, 64))
        session.RE(ensure_connected(*tomo.devices))
        register_focus_model(TOMO_FOCUS_MODEL, sim_focus_model(tomo))
        if live:
            factory = tomo_live_factory(ni_k_edge_references(), sink=result_sink(session.store))
            tomo_live = BackgroundCallback(RunRouter([factory]), "live tomography")
            session.RE.subscribe(tomo_live)
            session.tomo_live = tomo_live  # type: ignore[attr-defined]  # kept alive with it
        stxm = _make_stxm(min(px or 128, 128))
        session.RE(ensure_connected(*stxm.devices))
        if live:
            from ssb_beamline.callbacks.stxm_live import stxm_live_factory

            stxm_factory = stxm_live_factory(sink=result_sink(session.store))
            stxm_live = BackgroundCallback(RunRouter([stxm_factory]), "live STXM analysis")
            session.RE.subscribe(stxm_live)
            session.stxm_live = stxm_live  # type: ignore[attr-defined]  # kept alive with it
    except BaseException:
        session.close()
        raise
    logger.info("Queue-server worker: simulated beamline ready (live analysis %s)", live)
    namespace = queue_namespace(session.RE, {**sim_devices(session.txm, tomo),
                                             **stxm_devices(stxm)})  # fmt: skip
    namespace["_session"] = session
    return namespace


def sim_namespace() -> dict[str, Any]:
    """The worker namespace in the RE worker, the device listing elsewhere."""
    from bluesky_queueserver import is_re_worker_active

    return _worker_namespace() if is_re_worker_active() else _listing_namespace()
