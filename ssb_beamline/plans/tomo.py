"""Tomography on a transmission X-ray microscope: step and fly rotation scans.

The building blocks (angle validation, darks, flats, a step rotation, a fly
rotation with the rotation readback monitored, the series) are shared with
`xanes_tomo_scan` and `holotomo_scan`.
"""

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from bluesky.protocols import Movable, Readable, Triggerable
from bluesky_queueserver import parameter_annotation_decorator

from ._tomo_common import FlyGeometry, device_md, series_fly_md
from ._tomo_series import TomoDevices, TomoOptions, tomo_options, tomo_series_plan
from .angles import HALF_TURN_DEG, QUEUE_ANGLES, AngleRange, resolve_angles, validate_angles
from .built import plan
from .stubs import PlanGen, data_key
from .validation import validate_mode

__all__ = [
    "HALF_TURN_DEG",
    "QUEUE_ANGLES",
    "AngleRange",
    "resolve_angles",
    "tomo_scan",
    "validate_angles",
]

logger = logging.getLogger(__name__)


def _fly_md(fly: FlyGeometry, deadtime: float, rotation: Any, detector: Any) -> dict[str, Any]:
    """Start-document entries of a single fly tomogram (``primary`` + ``rotation_monitor``)."""
    return {
        **series_fly_md([fly], deadtime, rotation, detector),
        "rotation_travel_deg": [fly.pre, fly.post],
        "frame_period_s": fly.period,
        "monitor_stream": "rotation_monitor",
        "hints": {"dimensions": [(["time"], "primary")]},
    }


def _tomo_start_md(d: TomoDevices, o: TomoOptions, energy_ev: float | None,
                   plan_args: Mapping[str, Any], devices_md: Mapping[str, Any],
                   md: Mapping[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    """The start document of `tomo_scan`, given the energy read at its start."""
    start_md: dict[str, Any] = {
        "plan_name": "tomo_scan",
        "plan_args": dict(plan_args),
        "mode": o.mode,
        "angles_deg": o.angle_list,
        "num_angles": len(o.angles),
        "num_points": len(o.angles),
        "n_dark": o.n_dark,
        "n_flat": o.n_flat,
        "exposure_time": o.exposure,
        "energy_ev": energy_ev,
        "energies_ev": [energy_ev] if energy_ev is not None else [],
        **devices_md,
    }
    if o.flies:
        start_md.update(_fly_md(o.flies[0], o.deadtime, d.rotation, d.detector))
    start_md.update(md or {})
    return start_md


@plan
@parameter_annotation_decorator({"parameters": {"angles": QUEUE_ANGLES}})
def tomo_scan(  # noqa: PLR0913 -- bluesky plan: keyword arguments are the queue server's parameter form
    detector: Triggerable,
    rotation: Movable,
    sample_x: Movable,
    shutter: Movable,
    i0: Readable,
    angles: Sequence[float] | np.ndarray | AngleRange,
    *,
    sample_out: float,
    mode: Literal["step", "fly"] = "step",
    n_dark: int = 10,
    n_flat: int = 10,
    exposure_time: float | None = None,
    deadtime: float = 0.002,
    lead_time: float = 0.2,
    energy: Readable | None = None,
    pixel_size_um: float | None = None,
    rotation_center_px: float | None = None,
    shutter_open: Any = "Open",
    shutter_closed: Any = "Closed",
    sample: Mapping[str, Any] | None = None,
    baseline: Sequence[Readable] = (),
    md: Mapping[str, Any] | None = None,
) -> PlanGen:
    """Take a tomogram: darks, flats (sample out), then one frame per rotation angle.

    ``mode="step"`` moves the rotation to each angle and reads the detector, the
    rotation readback and ``i0`` into ``primary`` (a checkpoint before each angle).
    ``mode="fly"`` rotates at ``step / (exposure_time + deadtime)`` deg/s from a
    run-up of ``lead_time`` s while the detector takes the frames on its own clock
    (``prepare``/``kickoff``/``complete``/``collect`` into ``primary``, with the
    frame time stamps); the rotation readback is monitored into
    ``rotation_monitor``, and `ssb_beamline.analysis.fly_angles.angles_from_monitor`
    gives each frame's angle.

    Parameters
    ----------
    detector : Triggerable
        Area detector (an ophyd-async ``StandardDetector`` for fly scans).
    rotation : Movable
        Rotation axis, deg; a classic ``ophyd.sim.SynAxis`` works in step mode.
    sample_x : Movable
        Axis that moves the sample out of the beam for flats.
    shutter : Movable
        Movable shutter (``shutter_open``/``shutter_closed`` positions).
    i0 : Readable
        Incident-flux monitor, read with every step frame.
    angles : list of float
        Explicit angles (deg), or from Python also ``(start, stop, num)`` or an array;
        must cover 180 deg.
    sample_out : float
        ``sample_x`` position with the sample out of the beam.
    mode : {"step", "fly"}
        ``"step"`` or ``"fly"``.
    n_dark : int
        Number of dark frames (>= 1).
    n_flat : int
        Number of flat frames (>= 1).
    exposure_time : float or None
        Exposure, s; None keeps the detector's setting (step mode only).
    deadtime : float
        Fly mode: dead time between frames, s.
    lead_time : float
        Fly mode: run-up time of the rotation, s.
    energy : Readable or None
        Optional energy axis, read into the start document and the baseline.
    pixel_size_um : float or None
        Pixel size at the sample, um, recorded in the start document.
    rotation_center_px : float or None
        Rotation centre, px, recorded in the start document.
    shutter_open : object
        Position of ``shutter`` that lets the beam through.
    shutter_closed : object
        Position of ``shutter`` that stops the beam (for darks).
    sample : dict or None
        Description of the sample for the start document.
    baseline : list of Readable
        More devices to read at the start and end.
    md : dict or None
        Extra start-document metadata.

    Raises
    ------
    ValueError
        When the plan is built, for angles not covering 180 deg, a bad mode, an
        exposure <= 0 or n_dark/n_flat < 1; before anything moves, for angles (and
        fly run-up) outside the rotation limits, ``sample_out`` outside the
        ``sample_x`` limits, or a fly speed above the rotation's maximum.
    """
    validate_mode(mode)
    o = tomo_options(angles, mode, exposure_time, n_dark, n_flat, deadtime, lead_time)
    d = TomoDevices(detector, rotation, sample_x, shutter, i0, sample_out, shutter_open,
                    shutter_closed)  # fmt: skip
    angle_list = o.angle_list
    plan_args = {
        "detector": repr(detector), "rotation": repr(rotation), "sample_x": repr(sample_x),
        "shutter": repr(shutter), "i0": repr(i0), "angles": angle_list, "mode": mode,
        "sample_out": sample_out, "n_dark": o.n_dark, "n_flat": o.n_flat,
        "exposure_time": exposure_time, "deadtime": deadtime, "lead_time": lead_time,
    }  # fmt: skip
    devices_md = device_md(detector, i0, [rotation], {"rotation_key": data_key(rotation)},
                           pixel_size_um, rotation_center_px, sample)  # fmt: skip
    logger.info(
        "tomo_scan: %d angles %.4g..%.4g deg, %s mode%s", len(angle_list), angle_list[0],
        angle_list[-1], mode, f", {o.flies[0].velocity:.4g} deg/s" if o.flies else "",
    )  # fmt: skip
    tomogram = {"angles_deg": angle_list, "stream": "primary", "monitor_stream": "rotation_monitor"}
    return tomo_series_plan(
        lambda energy_ev: _tomo_start_md(d, o, energy_ev, plan_args, devices_md, md), d, o,
        tomograms=[tomogram], energy=energy,
        baseline=[rotation, sample_x, *([energy] if energy is not None else []), *baseline],
    )  # fmt: skip
