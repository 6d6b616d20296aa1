"""The axes of the simulated TXM IOC: record names, units, limits, speeds.

Units and limits are those of the in-process simulators
(`ssb_beamline.sim_devices.factory`, `tomo_factory`, `stage`) so that a plan
moves the same numbers over Channel Access as in process.
"""

from __future__ import annotations

from ..factory import (
    DEFAULT_ENERGY_EV,
    DET_Z_LIMITS_MM,
    ENERGY_LIMITS_EV,
    ZP_Z_LIMITS_MM,
    MotionConfig,
)
from ..image_model import OpticsConfig
from ..tomo_factory import HOLO_Z_LIMITS_MM, ROTATION_LIMITS_DEG
from .motors import AxisSpec

__all__ = ["AXIS_KEYS", "HOLO_DIST_LIMITS_MM", "default_axes"]

#: Holotomography distance travel, mm: ``make_sim_tomo``'s upper limit, and down to
#: the 0.05 mm the simulated holotomography profile allows (it works at 0.15 mm).
HOLO_DIST_LIMITS_MM = (0.05, HOLO_Z_LIMITS_MM[1])

#: Short names of the axes (keys of `default_axes`) and what they are.
AXIS_KEYS = {
    "energy": "Mono:Energy",
    "zp_x": "ZP:X",
    "zp_y": "ZP:Y",
    "zp_z": "ZP:Z",
    "det_z": "Det:Z",
    "sample_x": "Smpl:X",
    "sample_y": "Smpl:Y",
    "sample_z": "Smpl:Z",
    "rotation": "Smpl:Rot",
    "holo_z": "Holo:Dist",
}


def default_axes(
    energy_ev: float = DEFAULT_ENERGY_EV, optics: OpticsConfig | None = None
) -> dict[str, AxisSpec]:
    """Axis specs keyed by `AXIS_KEYS`; zone plate and detector start in focus at ``energy_ev``."""
    focus = (optics or OpticsConfig()).focus(energy_ev)
    m = MotionConfig()  # the in-process speeds and settle times: scans take as long over CA
    xy_um, z_um, sample_v = (-5000.0, 5000.0), (-2000.0, 2000.0), m.sample_velocity_um_s
    settle = {"energy": m.energy_settle_s}  # the others: the optics' and the stage's 5 ms
    rows = [
        ("energy", "eV", ENERGY_LIMITS_EV, energy_ev, m.energy_velocity_ev_s, 1000.0, 3,
         "Monochromator energy"),
        ("zp_x", "mm", (-5.0, 5.0), 0.0, m.zp_velocity_mm_s, 10.0, 4, "Zone plate x"),
        ("zp_y", "mm", (-5.0, 5.0), 0.0, m.zp_velocity_mm_s, 10.0, 4, "Zone plate y"),
        ("zp_z", "mm", ZP_Z_LIMITS_MM, focus.zp_z_mm, m.zp_velocity_mm_s, 50.0, 4,
         "Zone plate z (sample-ZP distance)"),
        ("det_z", "mm", DET_Z_LIMITS_MM, focus.det_z_mm, m.det_velocity_mm_s, 5000.0, 3,
         "Detector z (ZP-detector distance)"),
        ("sample_x", "um", xy_um, 0.0, sample_v, 20000.0, 3, "Sample x"),
        ("sample_y", "um", xy_um, 0.0, sample_v, 20000.0, 3, "Sample y"),
        ("sample_z", "um", z_um, 0.0, sample_v, 20000.0, 3, "Sample z"),
        ("rotation", "deg", ROTATION_LIMITS_DEG, 0.0, 30.0, 720.0, 4, "Sample rotation"),
        ("holo_z", "mm", HOLO_DIST_LIMITS_MM, 10.0, 100.0, 500.0, 4,
         "Holotomography propagation distance"),
    ]  # fmt: skip
    return {key: AxisSpec(AXIS_KEYS[key], *rest, settle=settle.get(key, m.optics_settle_s))
            for key, *rest in rows}  # fmt: skip
