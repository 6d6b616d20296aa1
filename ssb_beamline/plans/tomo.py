"""Tomography on a transmission X-ray microscope: step and fly rotation scans.

The building blocks (angle validation, darks, flats, a step rotation, a fly
rotation with the rotation readback monitored) are shared with `xanes_tomo_scan`
and `holotomo_scan`.
"""

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
from bluesky.protocols import Movable, Readable, Triggerable
from bluesky.utils import plan
from bluesky_queueserver import parameter_annotation_decorator

from ._tomo_common import (  # noqa: F401  (building blocks re-exported from here)
    FlyGeometry,
    TomoSeries,
    check_fly_axis,
    check_rotation,
    darks,
    device_md,
    flats,
    fly_geometries,
    fly_geometry,
    fly_rotation,
    prepare_tomo,
    readback_of,
    run_tomo_series,
    step_rotation,
    validate_fly_timing,
)
from .stubs import PlanGen, StreamStager, data_key

__all__ = [
    "HALF_TURN_DEG",
    "QUEUE_ANGLES",
    "AngleRange",
    "resolve_angles",
    "tomo_scan",
    "validate_angles",
    "validate_count",
    "validate_exposure",
    "validate_tomo_args",
]

logger = logging.getLogger(__name__)

#: Angular range a parallel-beam tomogram needs, deg.
HALF_TURN_DEG = 180.0


#: What the queue server is told about ``angles``: a list of angles, deg (a queue item
#: travels as JSON, so ``(start, stop, num)`` and arrays are for Python callers).
QUEUE_ANGLES = {"annotation": "typing.List[float]"}


class AngleRange(NamedTuple):
    """``num`` evenly spaced angles from ``start`` to ``stop`` inclusive, deg.

    Attributes
    ----------
    start, stop : float
        First and last angle, deg (both included).
    num : int
        Number of angles.
    """

    start: float
    stop: float
    num: int


def resolve_angles(angles: Sequence[float] | np.ndarray | AngleRange) -> np.ndarray:
    """Angles (deg) from an explicit list/array, or a tuple ``(start, stop, num)``.

    A tuple of three numbers whose last is an integer is read as ``(start, stop,
    num)`` (use a list or array for three explicit angles).

    Examples
    --------
    >>> resolve_angles((0, 180, 4)).tolist()
    [0.0, 60.0, 120.0, 180.0]
    >>> resolve_angles([0, 90, 180]).tolist()
    [0.0, 90.0, 180.0]
    """
    if isinstance(angles, tuple) and len(angles) == 3 and isinstance(angles[2], int | np.integer):
        start, stop, num = angles
        if isinstance(num, bool) or num < 2:
            raise ValueError(f"(start, stop, num) needs num >= 2 angles, got num={num!r}.")
        return np.linspace(float(start), float(stop), int(num))
    return np.asarray(angles, dtype=float).ravel()


def validate_angles(angles: Any, *, evenly_spaced: bool = False) -> np.ndarray:
    """Resolve and check rotation angles; raise ``ValueError`` with a clear message.

    The angles must be finite, distinct and cover a half turn: ``span + step >=
    180 deg`` (so ``np.linspace(0, 180, n, endpoint=False)`` is accepted). With
    ``evenly_spaced`` (fly scans) they must also be evenly spaced and monotonic.

    Parameters
    ----------
    angles : sequence of float or (start, stop, num)
        Rotation angles, deg, or an :class:`AngleRange`-like tuple.
    evenly_spaced : bool
        Also require even, monotonic steps (fly scans).
    """
    arr = resolve_angles(angles)
    if arr.size < 2:
        raise ValueError(f"A tomogram needs at least 2 angles, got {arr.size}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError("Rotation angles must be finite numbers (deg).")
    ordered = np.sort(arr)
    steps = np.diff(ordered)
    if np.any(steps == 0):
        raise ValueError(f"Angle {ordered[np.flatnonzero(steps == 0)[0]]} deg is listed twice.")
    span = float(ordered[-1] - ordered[0])
    if span + float(np.median(steps)) < HALF_TURN_DEG - 1e-6:
        raise ValueError(
            f"The angles span {span:.4g} deg ({ordered[0]:.4g} to {ordered[-1]:.4g}); a "
            f"tomogram needs at least {HALF_TURN_DEG:g} deg, e.g. (0, 180, 181)."
        )
    if evenly_spaced:
        d = np.diff(arr)
        if not np.allclose(d, d[0], rtol=1e-6, atol=1e-9):
            raise ValueError(
                "Fly scans need evenly spaced, monotonic angles, e.g. (start, stop, num); "
                f"steps range from {d.min():.4g} to {d.max():.4g} deg."
            )
    return arr


def validate_exposure(exposure_time: float | None, *, required: bool = False) -> float | None:
    """Return a valid exposure time (s) or None; raise for <= 0, non-finite, or missing."""
    if exposure_time is None:
        if required:
            raise ValueError("Fly scans need an exposure_time (s): it sets the rotation speed.")
        return None
    if not (math.isfinite(exposure_time) and exposure_time > 0):
        raise ValueError(
            f"exposure_time must be a positive number of seconds, got {exposure_time!r}."
        )
    return float(exposure_time)


def validate_count(name: str, value: int, minimum: int = 1) -> int:
    """Return ``int(value)`` if it is at least ``minimum``, else raise ``ValueError``."""
    if int(value) != value or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def validate_tomo_args(angles: Any, mode: str, exposure_time: float | None, n_dark: int,
                       n_flat: int) -> tuple[np.ndarray, float | None, int, int]:  # fmt: skip
    """Validated (angles, exposure, n_dark, n_flat) of a tomogram (fly: evenly spaced angles)."""
    angle_arr = validate_angles(angles, evenly_spaced=mode == "fly")
    exposure = validate_exposure(exposure_time, required=mode == "fly")
    return angle_arr, exposure, validate_count("n_dark", n_dark), validate_count("n_flat", n_flat)


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
    if mode not in ("step", "fly"):
        raise ValueError(f"mode must be 'step' or 'fly', not {mode!r}.")
    angle_arr, exposure, n_dark, n_flat = validate_tomo_args(
        angles, mode, exposure_time, n_dark, n_flat
    )
    angle_list = [float(a) for a in angle_arr]
    flies = fly_geometries(mode, exposure, [angle_arr], deadtime, lead_time)
    fly = flies[0] if flies else None
    plan_args = {
        "detector": repr(detector), "rotation": repr(rotation), "sample_x": repr(sample_x),
        "shutter": repr(shutter), "i0": repr(i0), "angles": angle_list, "mode": mode,
        "sample_out": sample_out, "n_dark": n_dark, "n_flat": n_flat,
        "exposure_time": exposure_time, "deadtime": deadtime, "lead_time": lead_time,
    }  # fmt: skip
    rotation_key = data_key(rotation)
    logger.info(
        "tomo_scan: %d angles %.4g..%.4g deg, %s mode%s", len(angle_list), angle_list[0],
        angle_list[-1], mode, f", {fly.velocity:.4g} deg/s" if fly is not None else "",
    )  # fmt: skip

    def checked_scan() -> PlanGen:
        old_velocity, sample_in, energy_ev = yield from prepare_tomo(
            detector, rotation, sample_x, angle_list, flies, sample_out, exposure, energy
        )
        devices_md = device_md(detector, i0, [rotation],
                               {"rotation_key": rotation_key},
                               pixel_size_um, rotation_center_px, sample)  # fmt: skip
        start_md: dict[str, Any] = {
            "plan_name": "tomo_scan",
            "plan_args": plan_args,
            "mode": mode,
            "angles_deg": angle_list,
            "num_angles": len(angle_list),
            "n_dark": n_dark,
            "n_flat": n_flat,
            "exposure_time": exposure,
            "energy_ev": energy_ev,
            "energies_ev": [energy_ev] if energy_ev is not None else [],
            **devices_md,
        }
        if fly is not None:
            start_md.update(
                rotation_velocity_deg_s=fly.velocity, deadtime=deadtime,
                rotation_travel_deg=[fly.pre, fly.post],
                frame_period_s=fly.period, monitor_stream="rotation_monitor",
                monitor_key=readback_of(rotation).name,
                timestamp_key=data_key(detector) + "-timestamp",
                hints={"dimensions": [(["time"], "primary")]},
            )  # fmt: skip
        start_md.update(md or {})
        tomogram = {"angles_deg": angle_list, "stream": "primary",
                    "monitor_stream": "rotation_monitor"}  # fmt: skip
        return (yield from run_tomo_series(start_md, TomoSeries(
            detector=detector, rotation=rotation, sample_x=sample_x, shutter=shutter,
            i0=i0, stager=StreamStager(detector), tomograms=[tomogram], flies=flies,
            move_to=None, extra=(), sample_out=sample_out, sample_in=sample_in, n_dark=n_dark,
            n_flat=n_flat, exposure=exposure, deadtime=deadtime, shutter_open=shutter_open,
            shutter_closed=shutter_closed, old_velocity=old_velocity,
            devices=[rotation, sample_x, *([energy] if energy is not None else []), *baseline],
        )))  # fmt: skip

    return checked_scan()
