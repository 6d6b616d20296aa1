"""Assemble a simulated tomography / holotomography microscope and its ground truth.

``make_sim_tomo(directory=...)`` returns a `SimTomo`: ophyd-async devices (energy,
zone plate, detector stage, sample stage with a rotation, shutter, I0 monitor,
camera and, for holotomography, the ``holo_z`` propagation axis), the frame model
and truth accessors (the exact angle of every frame, the rotation centre)::

    tomo = make_sim_tomo(directory="/tmp/tomo", mode="holo")
    RE(ensure_connected(*tomo.devices))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ophyd_async.core import (
    Device,
    PathProvider,
    StaticPathProvider,
    UUIDFilenameProvider,
)

from . import factory as txm
from .i0_monitor import FluxDriftModel, I0Monitor
from .image_model import DetectorNoiseConfig, OpticsConfig
from .motors import SimAxis
from .optics import FocusPositions
from .projection_model import (
    HoloGeometry,
    ProjectionImageModel,
    Projector,
    TomoMode,
)
from .rotation_stage import ROTATION_LIMITS_DEG, RotationAxis, TomoStage, TrackedMoveLogic
from .shutter import SimShutter
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

#: Focus-to-sample distance travel of holotomography, mm.
HOLO_Z_LIMITS_MM = (1.0, 100.0)


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
