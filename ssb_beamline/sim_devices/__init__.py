"""Simulated transmission X-ray microscope (TXM) for Ni K-edge XANES imaging.

Entry point: `make_sim_txm` returns a `SimTXM` with ophyd-async devices
(energy, zp_z, det_z, sample, shutter, i0, detector), the phantom and the
ground-truth maps::

    from bluesky.run_engine import RunEngine
    from ophyd_async.plan_stubs import ensure_connected
    import bluesky.plan_stubs as bps

    RE = RunEngine()
    txm = make_sim_txm(PhantomConfig(seed=1), directory="/tmp/txm")
    RE(ensure_connected(*txm.devices))
    fp = txm.focus_positions(8350.0)
    RE(bps.mv(txm.energy, 8350.0, txm.zp_z, fp.zp_z_mm, txm.det_z, fp.det_z_mm))
    truth = txm.truth_edge_energy_map()  # eV, NaN outside NMC

Frames of one staged detector share one HDF5 file and one StreamResource, and
TiledWriter attaches a resource to the first stream that uses it; so the plans
restage the detector whenever the stream changes
(:class:`ssb_beamline.plans.stubs.StreamStager`), and dark, flat and sample
frames each land in their own stream and file.
"""

from .detector import DATA_PATH, TXMDetector, validate_exposure_time
from .factory import (
    DET_Z_LIMITS_MM,
    ENERGY_LIMITS_EV,
    ZP_Z_LIMITS_MM,
    MotionConfig,
    SimTXM,
    make_sim_txm,
)
from .faults import Fault, FaultSchedule, fe_shutter_closure, pause_request, ring_dump
from .fresnel import exit_wave, fresnel_propagate, holo_intensity
from .i0_monitor import FluxDriftModel, I0Monitor
from .image_model import DetectorNoiseConfig, DriftConfig, OpticsConfig, TXMImageModel
from .motors import AxisLimitsError, SimAxis
from .optics import FocusPositions, defocus_blur_sigma_px, focus_positions
from .phantom import Phantom, PhantomConfig, Phase, make_phantom
from .phantom3d import Phantom3D, Phantom3DConfig, make_phantom3d
from .projection import PhantomProjector, project, project_many
from .projection_model import (
    HoloGeometry,
    ProjectionImageModel,
    Projector,
    Sphere,
    SphereProjector,
    default_spheres,
)
from .refraction import electron_density_from_delta, refractive_index, wavelength_m
from .ring import RingCurrentModel, SimRingCurrent
from .shutter import ShutterState, SimShutter
from .stage import SampleStage
from .state import BeamlineState, BeamlineStateSources, read_value
from .tomo_detector import TIMESTAMP_PATH, TomoDetector, TomoState, TomoStateSources
from .tomo_factory import (
    HOLO_Z_LIMITS_MM,
    ROTATION_LIMITS_DEG,
    RotationAxis,
    SimTomo,
    TomoStage,
    make_sim_tomo,
)
from .xray_physics import (
    absorbance,
    absorption_coefficients,
    transmission,
    truth_edge_energy,
    truth_edge_energy_map,
)

__all__ = [
    "DATA_PATH",
    "DET_Z_LIMITS_MM",
    "ENERGY_LIMITS_EV",
    "HOLO_Z_LIMITS_MM",
    "ROTATION_LIMITS_DEG",
    "TIMESTAMP_PATH",
    "ZP_Z_LIMITS_MM",
    "AxisLimitsError",
    "BeamlineState",
    "BeamlineStateSources",
    "DetectorNoiseConfig",
    "DriftConfig",
    "Fault",
    "FaultSchedule",
    "FluxDriftModel",
    "FocusPositions",
    "HoloGeometry",
    "I0Monitor",
    "MotionConfig",
    "OpticsConfig",
    "Phantom",
    "Phantom3D",
    "Phantom3DConfig",
    "PhantomConfig",
    "PhantomProjector",
    "Phase",
    "ProjectionImageModel",
    "Projector",
    "RingCurrentModel",
    "RotationAxis",
    "SampleStage",
    "ShutterState",
    "SimAxis",
    "SimRingCurrent",
    "SimShutter",
    "SimTXM",
    "SimTomo",
    "Sphere",
    "SphereProjector",
    "TXMDetector",
    "TXMImageModel",
    "TomoDetector",
    "TomoStage",
    "TomoState",
    "TomoStateSources",
    "absorbance",
    "absorption_coefficients",
    "default_spheres",
    "defocus_blur_sigma_px",
    "electron_density_from_delta",
    "exit_wave",
    "fe_shutter_closure",
    "focus_positions",
    "fresnel_propagate",
    "holo_intensity",
    "make_phantom",
    "make_phantom3d",
    "make_sim_tomo",
    "make_sim_txm",
    "pause_request",
    "project",
    "project_many",
    "read_value",
    "refractive_index",
    "ring_dump",
    "transmission",
    "truth_edge_energy",
    "truth_edge_energy_map",
    "validate_exposure_time",
    "wavelength_m",
]
