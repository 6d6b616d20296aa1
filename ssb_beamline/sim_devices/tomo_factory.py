"""Assemble a simulated tomography / holotomography microscope and its ground truth.

``make_sim_tomo(directory=...)`` returns a `SimTomo`: ophyd-async devices (energy,
zone plate, detector stage, sample stage with a rotation, shutter, I0 monitor,
camera and, for holotomography, the ``holo_z`` propagation axis), the frame model
and truth accessors (the exact angle of every frame, the rotation centre)::

    tomo = make_sim_tomo(directory="/tmp/tomo", mode="holo")
    RE(ensure_connected(*tomo.devices))
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from bluesky.protocols import Reading
from ophyd_async.core import (
    Device,
    PathProvider,
    SoftSignalBackend,
    StandardReadable,
    StaticPathProvider,
    TimeoutCalculator,
    UUIDFilenameProvider,
    soft_signal_rw,
)
from ophyd_async.core import StandardReadableFormat as Format

from . import factory as txm
from .i0_monitor import FluxDriftModel, I0Monitor
from .image_model import DetectorNoiseConfig, OpticsConfig
from .motors import SimAxis, SimAxisMoveLogic
from .optics import FocusPositions
from .projection_model import (
    HoloGeometry,
    ProjectionImageModel,
    Projector,
    TomoMode,
)
from .shutter import SimShutter
from .stage import translation_axes
from .tomo_detector import TomoDetector, TomoStateSources

__all__ = [
    "HOLO_Z_LIMITS_MM",
    "ROTATION_LIMITS_DEG",
    "RotationAxis",
    "SimTomo",
    "TomoStage",
    "TrackedMoveLogic",
    "make_sim_tomo",
]

logger = logging.getLogger(__name__)

#: Rotation travel, deg.
ROTATION_LIMITS_DEG = (-360.0, 360.0)
#: Focus-to-sample distance travel of holotomography, mm.
HOLO_Z_LIMITS_MM = (1.0, 100.0)


@dataclass
class TrackedMoveLogic(SimAxisMoveLogic):
    """`SimAxisMoveLogic` knowing its exact position at any UNIX time (`position_at`)."""

    update_period: float = 0.01
    position: float = 0.0
    trajectory: tuple[float, float, float, float] | None = None
    #: The latest move (start, old, new, duration), kept after it ends: the angle at
    #: a past instant (a camera frame computed late) is known exactly.
    last_trajectory: tuple[float, float, float, float] | None = None

    def _set(self, value: float, stamp: float | None = None) -> None:
        """Publish ``value`` as the readback, time-stamped ``stamp`` (UNIX s; default now).

        Like an encoder readback, value and time stamp must describe the same
        instant. ``readback_set`` stamps the value when it is called, which on a
        loaded machine (or while another thread holds the GIL) can be milliseconds
        after the instant the value was computed for: at 360 deg/s a 1 ms lag is
        0.36 deg of error in every fly-scan angle interpolated from the monitor.
        So the soft signal's reading is set with the instant the value belongs to.
        """
        self.position = value
        backend = getattr(self.readback_set, "__self__", None)
        if stamp is None or not isinstance(backend, SoftSignalBackend):
            self.readback_set(value)
            return
        backend.reading = Reading(
            value=backend.converter.write_value(value), timestamp=stamp, alarm_severity=0
        )
        if backend.callback:
            backend.callback(backend.reading)

    def position_at(self, t: float) -> float:
        """Exact position at UNIX time ``t`` during or after the latest move."""
        trajectory = self.trajectory or self.last_trajectory
        if trajectory is None:
            return self.position
        start, old, new, duration = trajectory
        fraction = min(max((t - start) / duration, 0.0), 1.0)
        return old + (new - old) * fraction

    async def move(self, new_position: float, timeout: TimeoutCalculator) -> None:
        """Ramp linearly to ``new_position``, updating the readback every period."""
        velocity, settle, old = await asyncio.gather(
            self.velocity.get_value(), self.settle_time.get_value(), self.readback.get_value()
        )
        await self.setpoint.set(new_position)
        self.done_set(0)
        try:
            duration = abs(new_position - old) / velocity if velocity > 0 else 0.0
            start = time.time()
            if duration > 0:
                self.trajectory = self.last_trajectory = (start, old, new_position, duration)
                self._set(old, start)  # the move starts from here, now
            else:  # an instant move: no trajectory to remember
                self.last_trajectory = None
            while (now := time.time()) - start < duration:
                self._set(self.position_at(now), now)
                await asyncio.sleep(min(self.update_period, start + duration - now))
            # it arrived at start + duration, however late this line runs
            self._set(new_position, start + duration if duration > 0 else None)
            self.trajectory = None
            if settle > 0:
                await asyncio.sleep(settle)
        finally:
            if self.trajectory is not None:  # stopped mid-move: stay where we are
                now = time.time()
                here = self.position_at(now)
                start, old = self.trajectory[:2]
                self.last_trajectory = (start, old, here, max(now - start, 1e-9))
                self._set(here, now)
                self.trajectory = None
            self.done_set(1)


class RotationAxis(SimAxis):
    """Rotation stage axis (deg) with a fast readback and a maximum velocity.

    ``position_at(t)`` is the exact angle at any instant (the camera sees it); the
    ``user_readback`` signal updates every ``update_period`` s, like an encoder
    readback that is monitored during fly scans.

    Parameters
    ----------
    initial_value : float
        Start angle, deg.
    limits : tuple of float
        Travel limits, deg.
    velocity, max_velocity : float
        Speed (changed by fly scans) and its maximum (``max_velocity`` signal, as on
        EPICS motors), deg/s.
    settle_time, update_period : float
        Settle time after a move and readback update period while moving, s.
    name : str
        Device name.
    """

    def __init__(
        self,
        initial_value: float = 0.0,
        *,
        limits: tuple[float, float] = ROTATION_LIMITS_DEG,
        velocity: float = 30.0,
        max_velocity: float = 360.0,
        settle_time: float = 0.005,
        update_period: float = 0.01,
        name: str = "",
    ) -> None:
        if not 0 < velocity <= max_velocity:
            raise ValueError(f"Need 0 < velocity <= max_velocity, got {velocity}, {max_velocity}")
        self._update_period = update_period
        self._initial = initial_value
        with self.add_children_as_readables(Format.CONFIG_SIGNAL):
            self.max_velocity = soft_signal_rw(float, max_velocity, units="deg/s")
        super().__init__(initial_value, "deg", limits=limits, velocity=velocity,
                         settle_time=settle_time, name=name)  # fmt: skip

    @cached_property
    def movable_logic(self) -> TrackedMoveLogic:
        """Move logic used by `StandardMovable.set`."""
        return TrackedMoveLogic(
            **self.move_logic_signals(), update_period=self._update_period, position=self._initial
        )

    def position_at(self, t: float) -> float:
        """Exact angle (deg) at UNIX time ``t`` (during the current move)."""
        return self.movable_logic.position_at(t)

    def position_now(self) -> float:
        """Exact angle now, deg."""
        return self.position_at(time.time())


class TomoStage(StandardReadable):
    """Sample stage: ``x``, ``y``, ``z`` (um, `SimAxis`) and ``rotation`` (`RotationAxis`)."""

    def __init__(
        self,
        *,
        xy_limits_um: tuple[float, float] = (-5000.0, 5000.0),
        velocity_um_s: float = 5000.0,
        rotation: RotationAxis | None = None,
        settle_time: float = 0.005,
        name: str = "",
    ) -> None:
        with self.add_children_as_readables():
            self.x, self.y, self.z = translation_axes(
                xy_limits_um, xy_limits_um, velocity_um_s, settle_time
            )
            self.rotation = rotation or RotationAxis()
        super().__init__(name=name)


@dataclass
class SimTomo:
    """Simulated tomography microscope: devices, frame model and ground truth.

    Attributes
    ----------
    energy, zp_z, det_z : SimAxis
        Monochromator (eV), zone plate and detector stage (mm), as in `SimTXM`.
    sample : TomoStage
        ``sample.x``/``y``/``z`` (um) and ``sample.rotation`` (deg).
    shutter : SimShutter
    i0 : I0Monitor
    detector : TomoDetector
    model : ProjectionImageModel
    holo_z : SimAxis or None
        Focus-to-sample distance (mm), ``mode="holo"`` only.
    """

    energy: SimAxis
    zp_z: SimAxis
    det_z: SimAxis
    sample: TomoStage
    shutter: SimShutter
    i0: I0Monitor
    detector: TomoDetector
    model: ProjectionImageModel
    holo_z: SimAxis | None = None

    @property
    def mode(self) -> TomoMode:
        """``"txm"`` or ``"holo"``."""
        return self.model.mode

    @property
    def projector(self) -> Projector:
        """The sample's projector."""
        return self.model.projector

    @property
    def devices(self) -> list[Device]:
        """All top-level devices (for ``ensure_connected``)."""
        devices = [self.energy, self.zp_z, self.det_z, self.sample, self.shutter, self.i0,
                   self.detector]  # fmt: skip
        return [*devices, self.holo_z] if self.holo_z is not None else devices

    def focus_positions(self, energy_ev: float) -> FocusPositions:
        """In-focus ``zp_z``/``det_z`` (mm) at ``energy_ev``."""
        return self.model.optics.focus(energy_ev)

    @property
    def pixel_size_um(self) -> float:
        """Pixel size at the sample, um."""
        return self.model.pixel_size_um

    @property
    def detector_shape(self) -> tuple[int, int]:
        """Frame shape ``(Z, X)``."""
        return self.model.detector_shape

    @property
    def sample_out_x_um(self) -> float:
        """A ``sample.x`` position (um) that takes the sample out of view."""
        return float(np.ceil(self.model.field_of_view_um[1] * 1.5))

    @property
    def rotation_center_guess_px(self) -> float:
        """Geometric guess of the rotation centre: the middle column."""
        return (self.detector_shape[1] - 1) / 2

    def truth_rotation_center_px(self) -> float:
        """True rotation-axis column (from the projector)."""
        centre = getattr(self.projector, "rotation_center_px", None)
        if centre is not None:
            return float(centre)
        offset = float(getattr(self.projector, "center_offset_px", 0.0))
        return self.rotation_center_guess_px + offset

    def truth_frame_times(self) -> np.ndarray:
        """Time stamps of every frame written so far (UNIX s)."""
        return np.array([t for t, _ in self.detector.writer.frame_log])

    def truth_frame_angles(self) -> np.ndarray:
        """Exact rotation angle of every frame written so far, deg."""
        return np.array([s.rotation_deg for _, s in self.detector.writer.frame_log])


def _default_projector(phantom3d_config: Any, seed: int) -> Projector:
    """``PhantomProjector`` of the 3-D phantom (its seed: ``seed`` unless configured)."""
    from .phantom3d import Phantom3DConfig, make_phantom3d
    from .tomo_physics import PhantomProjector

    return PhantomProjector(make_phantom3d(phantom3d_config or Phantom3DConfig(seed=seed)))


def make_sim_tomo(  # noqa: PLR0913 -- keyword-only options of the simulator
    phantom3d_config: Any = None,
    path_provider: PathProvider | None = None,
    *,
    directory: str | Path | None = None,
    projector: Projector | None = None,
    mode: TomoMode = "txm",
    energy_ev: float = txm.DEFAULT_ENERGY_EV,
    exposure_time: float = 0.02,
    rotation_velocity_deg_s: float = 30.0,
    rotation_max_velocity_deg_s: float = 360.0,
    rotation_limits_deg: tuple[float, float] = ROTATION_LIMITS_DEG,
    holo_z_mm: float = 10.0,
    holo_z_limits_mm: tuple[float, float] = HOLO_Z_LIMITS_MM,
    holo: HoloGeometry | None = None,
    motion: txm.MotionConfig | None = None,
    noise: DetectorNoiseConfig | None = None,
    optics: OpticsConfig | None = None,
    flux_model: FluxDriftModel | None = None,
    seed: int = 0,
    name_prefix: str = "",
) -> SimTomo:
    """Build a simulated tomography (``"txm"``) or holotomography (``"holo"``) microscope.

    Parameters
    ----------
    phantom3d_config : Phantom3DConfig, optional
        3-D sample for the default projector (ignored if ``projector`` is given).
    path_provider : PathProvider, optional
        Where the camera writes; give this or ``directory``.
    directory : str or Path, optional
        Shortcut for ``StaticPathProvider(UUIDFilenameProvider(), directory)``.
    projector : Projector, optional
        The sample; default a ``PhantomProjector`` of the 3-D phantom.
    mode : {"txm", "holo"}
        Zone-plate absorption tomography or cone-beam holotomography.
    energy_ev : float
        Start energy; zone plate and detector start in focus there.
    exposure_time : float
        Initial exposure, s.
    rotation_velocity_deg_s, rotation_max_velocity_deg_s : float
        Rotation speed and its maximum, deg/s.
    rotation_limits_deg : tuple of float
        Rotation travel, deg.
    holo_z_mm, holo_z_limits_mm : float, tuple of float
        Start position and travel of ``holo_z`` (focus-to-sample distance, mm).
    holo : HoloGeometry, optional
        Focus-to-detector distance of the cone beam.
    motion, noise, optics, flux_model : optional
        As for ``make_sim_txm``.
    seed : int
        Seed of noise, beam profile, flux drift and the default spheres.
    name_prefix : str
        Prefix of the device names.

    Returns
    -------
    SimTomo
        Not yet connected: ``RE(ensure_connected(*tomo.devices))``.
    """
    if mode not in ("txm", "holo"):
        raise ValueError(f"mode must be 'txm' or 'holo', not {mode!r}")
    if path_provider is None:
        if directory is None:
            raise ValueError("make_sim_tomo needs a path_provider or a directory")
        path_provider = StaticPathProvider(UUIDFilenameProvider(), Path(directory))
    motion = motion or txm.MotionConfig()
    optics = optics or OpticsConfig()
    projector = projector or _default_projector(phantom3d_config, seed)
    model = ProjectionImageModel(
        projector, mode=mode, noise=noise or DetectorNoiseConfig(seed=seed), optics=optics,
        holo=holo or HoloGeometry(), beam_seed=seed,
    )  # fmt: skip
    focus = optics.focus(energy_ev)
    m = motion
    energy = SimAxis(energy_ev, "eV", limits=txm.ENERGY_LIMITS_EV, velocity=m.energy_velocity_ev_s,
                     settle_time=m.energy_settle_s)  # fmt: skip
    zp_z = SimAxis(focus.zp_z_mm, "mm", limits=txm.ZP_Z_LIMITS_MM, velocity=m.zp_velocity_mm_s,
                   settle_time=m.optics_settle_s)  # fmt: skip
    det_z = SimAxis(focus.det_z_mm, "mm", limits=txm.DET_Z_LIMITS_MM, velocity=m.det_velocity_mm_s,
                    settle_time=m.optics_settle_s)  # fmt: skip
    rotation = RotationAxis(
        0.0, limits=rotation_limits_deg, velocity=rotation_velocity_deg_s,
        max_velocity=rotation_max_velocity_deg_s,
    )  # fmt: skip
    sample = TomoStage(velocity_um_s=motion.sample_velocity_um_s, rotation=rotation)
    shutter = SimShutter(actuation_time=motion.shutter_time_s)
    i0 = I0Monitor(flux_model or FluxDriftModel(seed=seed))
    holo_z = None
    if mode == "holo":
        holo_z = SimAxis(holo_z_mm, "mm", limits=holo_z_limits_mm, velocity=m.det_velocity_mm_s,
                         settle_time=m.optics_settle_s)  # fmt: skip
    sources = TomoStateSources(
        energy=energy, zp_z=zp_z, det_z=det_z, sample_x=sample.x, sample_y=sample.y,
        shutter=shutter, i0=i0, rotation=rotation,
        holo_z=holo_z if holo_z is not None else 0.0,
    )  # fmt: skip
    detector = TomoDetector(path_provider, model, sources, exposure_time=exposure_time)
    tomo = SimTomo(energy, zp_z, det_z, sample, shutter, i0, detector, model, holo_z)
    for attr in ("energy", "zp_z", "det_z", "sample", "shutter", "i0", "detector", "holo_z"):
        device = getattr(tomo, attr)
        if device is not None:
            device.set_name(f"{name_prefix}{attr}", child_name_separator="_")
    logger.info(
        "Simulated %s tomography: %s px at %.3f um, energy %.1f eV",
        mode, model.detector_shape, model.pixel_size_um, energy_ev,
    )  # fmt: skip
    return tomo
