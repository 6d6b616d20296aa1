"""Assemble the simulated TXM: devices, phantom and ground truth."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ophyd_async.core import (
    Device,
    PathProvider,
    StaticPathProvider,
    StreamResourceDataProvider,
    UUIDFilenameProvider,
    WatchableAsyncStatus,
)

from .detector import TXMDetector
from .faults import FaultSchedule
from .i0_monitor import FluxDriftModel, I0Monitor
from .image_model import DetectorNoiseConfig, DriftConfig, OpticsConfig, TXMImageModel
from .motors import SimAxis
from .optics import FocusPositions
from .phantom import Phantom, PhantomConfig, make_phantom
from .ring import RingCurrentModel, SimRingCurrent
from .shutter import SimShutter
from .stage import SampleStage
from .state import BeamlineStateSources
from .xray_physics import truth_edge_energy_map

__all__ = [
    "DEFAULT_ENERGY_EV",
    "DET_Z_LIMITS_MM",
    "ENERGY_LIMITS_EV",
    "ZP_Z_LIMITS_MM",
    "MotionConfig",
    "PauseSafeTXMDetector",
    "SimTXM",
    "make_sim_txm",
]

logger = logging.getLogger(__name__)

#: Monochromator range (FXI 18-ID operates about 5-11 keV), eV.
ENERGY_LIMITS_EV = (5000.0, 11000.0)
#: Zone-plate (sample-to-ZP distance p) travel, mm; covers p(5 keV)..p(11 keV).
ZP_Z_LIMITS_MM = (20.0, 80.0)
#: Detector (ZP-to-detector distance q) travel, mm.
DET_Z_LIMITS_MM = (1000.0, 4000.0)
DEFAULT_ENERGY_EV = 8333.0


@dataclass(frozen=True)
class MotionConfig:
    """Velocities and settle times of the simulated axes (fast defaults).

    A 3.75 eV energy step takes about 0.09 s; zone plate and detector follow
    in parallel within the same time when moved together.
    """

    energy_velocity_ev_s: float = 50.0
    energy_settle_s: float = 0.01
    zp_velocity_mm_s: float = 2.0
    det_velocity_mm_s: float = 100.0
    optics_settle_s: float = 0.005
    sample_velocity_um_s: float = 5000.0
    shutter_time_s: float = 0.01


class PauseSafeTXMDetector(TXMDetector):
    """A `TXMDetector` whose files hold only the frames of stored events after a pause.

    When the RunEngine pauses or suspends, it rewinds to its last checkpoint and
    triggers again. A frame exposed (or read) for an event that was never saved
    would stay in the HDF5 file, and tiled, which reads the file by position,
    would show it in place of the next frame. `pause` waits for the exposure in
    flight, then truncates the file to the frames of saved events and rewinds
    the StreamDatum counter. Subscribe `observe` to the RunEngine so it knows
    which events were saved; without it, every frame read counts as saved.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._saved_frames: dict[str, int] = {}
        self._observed = False
        self._trigger_status: WatchableAsyncStatus | None = None
        #: Frames dropped by pauses (for logs and tests).
        self.frames_dropped = 0

    def trigger(self) -> WatchableAsyncStatus:
        """Trigger one exposure (remembered, so that a pause can wait for it)."""
        status = super().trigger()
        self._trigger_status = status
        return status

    def observe(self, name: str, doc: dict) -> None:
        """RunEngine document callback: note how many frames stored events hold."""
        if name == "start":
            self._observed = True
            self._saved_frames.clear()
        elif name == "stream_datum":
            self._observed = True
            uid = doc["stream_resource"]
            stop = int(doc["indices"]["stop"])
            self._saved_frames[uid] = max(self._saved_frames.get(uid, 0), stop)

    async def pause(self) -> None:
        """Finish the exposure in flight, then drop frames no saved event refers to."""
        # The trigger may not have started its exposure yet: wait for the whole trigger.
        status, self._trigger_status = self._trigger_status, None
        try:
            if status is not None and not status.done:
                await status
            if self._acquire_logic is not None:
                await self._acquire_logic.wait_for_idle()
        except Exception:
            logger.exception("%s: the exposure interrupted by the pause failed", self.name)
        ctx = self._prepare_ctx
        if ctx is None:
            return
        for provider in ctx.streamable_data_providers:
            if not isinstance(provider, StreamResourceDataProvider):
                continue
            uid = provider.bundles[0].stream_resource_doc["uid"]
            saved = self._saved_frames.get(uid, 0) if self._observed else provider.last_emitted
            dropped = self.writer.truncate(saved)
            provider.last_emitted = min(provider.last_emitted, saved)
            if dropped:
                self.frames_dropped += dropped
                logger.info(
                    "%s: paused; dropped %d frame(s) of unsaved events (the rewind retakes them)",
                    self.name, dropped,
                )  # fmt: skip

    async def resume(self) -> None:
        """Nothing to do: the next trigger writes where the stored frames end."""


@dataclass
class SimTXM:
    """The simulated TXM: ophyd-async devices plus phantom and ground truth.

    Attributes
    ----------
    energy : SimAxis
        Monochromator energy, eV (``energy.user_readback``, limits in
        ``energy.low_limit_travel`` / ``energy.high_limit_travel``).
    zp_z : SimAxis
        Zone-plate position = sample-to-zone-plate distance ``p``, mm.
    det_z : SimAxis
        Detector position = zone-plate-to-detector distance ``q``, mm.
    sample : SampleStage
        ``sample.x``, ``sample.y``, ``sample.z`` (um), ``sample.rotation`` (deg).
    shutter : SimShutter
        ``bps.mv(shutter, "Closed")`` gives dark frames.
    i0 : I0Monitor
        ``i0.flux``: relative incident flux.
    detector : TXMDetector
        Camera; ``detector.exposure_time`` (s). A `PauseSafeTXMDetector`.
    phantom : Phantom
        The sample ground truth.
    model : TXMImageModel
        Frame formation (physics, optics, beam profile, noise).
    ring_current : SimRingCurrent, optional
        Storage-ring current, mA (``ring_current.current``, data key
        ``ring_current``); ``i0`` follows it and a dump gives dark frames.
    fe_shutter : SimShutter, optional
        Front-end (safety) shutter; closed gives dark frames.
    faults : FaultSchedule, optional
        Faults bound to ``ring_current`` and ``fe_shutter``; subscribe it to the
        RunEngine (``simulated_beamline`` does).
    """

    energy: SimAxis
    zp_z: SimAxis
    det_z: SimAxis
    sample: SampleStage
    shutter: SimShutter
    i0: I0Monitor
    detector: TXMDetector
    phantom: Phantom
    model: TXMImageModel
    ring_current: SimRingCurrent | None = None
    fe_shutter: SimShutter | None = None
    faults: FaultSchedule | None = None
    _truth_cache: dict = field(default_factory=dict, repr=False)

    @property
    def devices(self) -> list[Device]:
        """All top-level devices (for ``ensure_connected`` or ``connect``)."""
        devices: list[Device] = [self.energy, self.zp_z, self.det_z, self.sample, self.shutter,
                                 self.i0, self.detector]  # fmt: skip
        return devices + [d for d in (self.ring_current, self.fe_shutter) if d is not None]

    async def connect(self, mock: bool = False, timeout: float = 10.0) -> None:
        """Connect all devices (run in the RunEngine's event loop)."""
        await asyncio.gather(*(d.connect(mock=mock, timeout=timeout) for d in self.devices))

    def focus_positions(self, energy_ev: float) -> FocusPositions:
        """In-focus ``zp_z``/``det_z`` (mm) at ``energy_ev`` for this TXM's optics."""
        return self.model.optics.focus(energy_ev)

    @property
    def pixel_size_um(self) -> float:
        """Pixel size at the sample, um."""
        return self.model.pixel_size_um

    @property
    def sample_out_x_um(self) -> float:
        """A ``sample.x`` position (um) that takes the sample fully out of view."""
        return float(np.ceil(self.model.field_of_view_um[1] * 1.5))

    def truth_soc(self) -> np.ndarray:
        """SOC map, NaN outside NMC particles, (H, W) float32."""
        return np.where(self.phantom.labels > 0, self.phantom.soc, np.nan).astype(np.float32)

    def truth_edge_energy_map(self) -> np.ndarray:
        """Half-step Ni K-edge energy map (eV), NaN outside NMC, (H, W) float32."""
        if "edge" not in self._truth_cache:
            self._truth_cache["edge"] = truth_edge_energy_map(self.phantom)
        return self._truth_cache["edge"]


def make_sim_txm(  # noqa: PLR0913 -- keyword-only options of the simulator
    phantom_config: PhantomConfig | None = None,
    path_provider: PathProvider | None = None,
    *,
    directory: str | Path | None = None,
    energy_ev: float = DEFAULT_ENERGY_EV,
    exposure_time: float = 0.02,
    motion: MotionConfig | None = None,
    noise: DetectorNoiseConfig | None = None,
    drift: DriftConfig | None = None,
    optics: OpticsConfig | None = None,
    flux_model: FluxDriftModel | None = None,
    name_prefix: str = "",
    ring: RingCurrentModel | None = None,
    faults: FaultSchedule | None = None,
    sample_phantom: Phantom | None = None,
) -> SimTXM:
    """Build a simulated TXM, in focus at ``energy_ev``, with names set.

    Parameters
    ----------
    phantom_config : PhantomConfig, optional
        Sample; default ``PhantomConfig()`` (512x512, seed 0).
    path_provider : PathProvider, optional
        Where the detector writes HDF5 files. Give this or ``directory``.
    directory : str or Path, optional
        Shortcut for ``StaticPathProvider(UUIDFilenameProvider(), directory)``.
    energy_ev : float
        Start energy; zone plate and detector start in focus there.
    exposure_time : float
        Initial detector exposure, s.
    motion, noise, drift, optics : optional
        `MotionConfig`, `DetectorNoiseConfig`, `DriftConfig` (off by default),
        `OpticsConfig`.
    flux_model : FluxDriftModel, optional
        I0 drift; default seeded from the phantom seed.
    name_prefix : str
        Prefix for device names (``energy``, ``zp_z``, ``det_z``, ``sample``,
        ``shutter``, ``i0``, ``detector``, ``ring``, ``fe_shutter``); children use
        ``_`` (``sample_x``, ``ring_current``).
    ring : RingCurrentModel, optional
        Storage-ring current model (top-up ~400 mA by default).
    faults : FaultSchedule, optional
        Bound to this TXM's ring and front-end shutter, kept as ``txm.faults``.
    sample_phantom : Phantom, optional
        A ready sample (e.g. the projection of a 3D phantom) instead of one made
        from ``phantom_config`` (its own ``config`` is used then).

    Returns
    -------
    SimTXM
        Not yet connected: ``await txm.connect()`` in the RunEngine loop, or
        ``RE(ensure_connected(*txm.devices))``.
    """
    if path_provider is None:
        if directory is None:
            raise ValueError("make_sim_txm needs a path_provider or a directory")
        path_provider = StaticPathProvider(UUIDFilenameProvider(), Path(directory))
    if sample_phantom is not None:
        phantom_config = sample_phantom.config
    phantom_config = phantom_config or PhantomConfig()
    motion = motion or MotionConfig()
    optics = optics or OpticsConfig()
    seed = phantom_config.seed
    phantom = sample_phantom if sample_phantom is not None else make_phantom(phantom_config)
    model = TXMImageModel(
        phantom,
        noise=noise or DetectorNoiseConfig(seed=seed),
        drift=drift or DriftConfig(seed=seed),
        optics=optics,
        beam_seed=seed,
    )
    focus = optics.focus(energy_ev)
    energy = SimAxis(
        energy_ev,
        "eV",
        limits=ENERGY_LIMITS_EV,
        velocity=motion.energy_velocity_ev_s,
        settle_time=motion.energy_settle_s,
    )
    zp_z = SimAxis(
        focus.zp_z_mm,
        "mm",
        limits=ZP_Z_LIMITS_MM,
        velocity=motion.zp_velocity_mm_s,
        settle_time=motion.optics_settle_s,
    )
    det_z = SimAxis(
        focus.det_z_mm,
        "mm",
        limits=DET_Z_LIMITS_MM,
        velocity=motion.det_velocity_mm_s,
        settle_time=motion.optics_settle_s,
    )
    sample = SampleStage(velocity_um_s=motion.sample_velocity_um_s)
    shutter = SimShutter(actuation_time=motion.shutter_time_s)
    ring_current = SimRingCurrent(ring)
    fe_shutter = SimShutter(actuation_time=motion.shutter_time_s)
    i0 = I0Monitor(flux_model or FluxDriftModel(seed=seed), ring=ring_current)
    sources = BeamlineStateSources(
        energy=energy, zp_z=zp_z, det_z=det_z, sample_x=sample.x, sample_y=sample.y,
        shutter=shutter, i0=i0, fe_shutter=fe_shutter, ring_current=ring_current,
    )  # fmt: skip
    detector = PauseSafeTXMDetector(path_provider, model, sources, exposure_time=exposure_time)
    if faults is not None:
        faults.bind(ring=ring_current, fe_shutter=fe_shutter)
    txm = SimTXM(energy, zp_z, det_z, sample, shutter, i0, detector, phantom, model,
                 ring_current, fe_shutter, faults)  # fmt: skip
    for attr in ("energy", "zp_z", "det_z", "sample", "shutter", "i0", "detector", "fe_shutter"):
        getattr(txm, attr).set_name(f"{name_prefix}{attr}", child_name_separator="_")
    ring_current.set_name(f"{name_prefix}ring", child_name_separator="_")
    logger.info(
        "Simulated TXM: %d particles, %s px at %.3f um, energy %.1f eV",
        phantom.n_particles, phantom.shape, phantom_config.pixel_size_um, energy_ev,
    )  # fmt: skip
    return txm
