"""Tomography on a transmission X-ray microscope: step and fly rotation scans.

The building blocks (angle validation, darks, flats, a step rotation, a fly
rotation with the rotation readback monitored) are shared with `xanes_tomo_scan`
and `holotomo_scan`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np
from bluesky.protocols import Movable, Readable, Triggerable
from bluesky.utils import short_uid
from ophyd_async.core import TriggerInfo

from .stubs import PlanGen, StreamStager, check_within_limits, data_key, read_limits, set_exposure

logger = logging.getLogger(__name__)

#: Angular range a parallel-beam tomogram needs, deg.
HALF_TURN_DEG = 180.0


class AngleRange(NamedTuple):
    """``num`` evenly spaced angles from ``start`` to ``stop`` inclusive, deg."""

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


def validate_fly_timing(deadtime: float, lead_time: float) -> None:
    """Raise ``ValueError`` unless ``deadtime >= 0`` and ``lead_time > 0`` (s)."""
    if not (
        math.isfinite(deadtime) and deadtime >= 0 and math.isfinite(lead_time) and lead_time > 0
    ):
        raise ValueError(f"Need deadtime >= 0 and lead_time > 0 s, got {deadtime}, {lead_time}.")


@dataclass(frozen=True)
class FlyGeometry:
    """Rotation move of a fly scan: speed, run-up start and end positions."""

    velocity: float
    pre: float
    post: float
    period: float
    lead_time: float


def fly_geometry(
    angles: np.ndarray, exposure: float, deadtime: float, lead_time: float
) -> FlyGeometry:
    """Speed ``step / (exposure + deadtime)`` and run-up so frame 0 is centred on ``angles[0]``."""
    period = exposure + deadtime
    step = float(angles[1] - angles[0])
    velocity = abs(step) / period
    sign = math.copysign(1.0, step)
    pre = float(angles[0]) - sign * velocity * (lead_time + exposure / 2)
    post = float(angles[-1]) + sign * velocity * (2 * lead_time + period)
    return FlyGeometry(velocity, pre, post, period, lead_time)


def readback_of(axis: Any) -> Any:
    """The subscribable readback signal of an axis (ophyd-async or classic ophyd)."""
    for attr in ("user_readback", "readback"):
        signal = getattr(axis, attr, None)
        if signal is not None:
            return signal
    return axis


def check_fly_axis(rotation: Any, fly: FlyGeometry, limits: tuple[float, float]) -> PlanGen:
    """Check (with ``bps.rd``) that ``rotation`` can fly at ``fly.velocity`` within ``limits``."""
    if not hasattr(rotation, "velocity") or not hasattr(rotation, "set"):
        raise ValueError(
            f"Fly scans need a rotation axis with a velocity signal; {rotation.name} has none."
        )
    if hasattr(rotation, "max_velocity"):
        vmax = yield from bps.rd(rotation.max_velocity)
        if vmax and fly.velocity > vmax:
            raise ValueError(
                f"The fly scan needs {fly.velocity:.4g} deg/s, above the maximum {vmax:.4g} "
                f"deg/s of {rotation.name}: use a longer exposure or more angles."
            )
    check_within_limits(f"{rotation.name} (fly run-up)", [fly.pre, fly.post], limits, "deg")


def darks(stager: StreamStager, readables: Sequence[Readable], shutter: Movable, n: int,
          closed: Any, opened: Any, stream: str = "dark") -> PlanGen:  # fmt: skip
    """Close the shutter, take ``n`` frames into ``stream``, open it again."""
    yield from bps.mv(shutter, closed)
    for _ in range(n):
        yield from stager.read(readables, stream)
    yield from bps.mv(shutter, opened)


def flats(stager: StreamStager, readables: Sequence[Readable], sample_x: Movable,
          sample_out: float, sample_in: float, n: int,
          stream: str = "flat") -> PlanGen:  # fmt: skip
    """Move the sample out, take ``n`` frames into ``stream``, move it back."""
    yield from bps.mv(sample_x, sample_out)
    for _ in range(n):
        yield from stager.read(readables, stream)
    yield from bps.mv(sample_x, sample_in)


def step_rotation(stager: StreamStager, readables: Sequence[Readable], rotation: Movable,
                  angles: Sequence[float], stream: str = "primary") -> PlanGen:  # fmt: skip
    """Move to each angle and take one frame; a checkpoint before each point."""
    for angle in angles:
        yield from bps.checkpoint()
        yield from bps.mv(rotation, float(angle))
        yield from stager.read(readables, stream)


def fly_rotation(detector: Any, rotation: Any, fly: FlyGeometry, num: int, exposure: float,
                 deadtime: float, stream: str = "primary",
                 monitor_stream: str = "rotation_monitor") -> PlanGen:  # fmt: skip
    """Rotate at constant speed while the camera takes ``num`` internally timed frames.

    The rotation readback is monitored into ``monitor_stream``; the frames (and
    their time stamps) are collected into ``stream``. No checkpoint inside: a pause
    requested during the flight takes effect at the next checkpoint (a hard pause
    aborts rather than repeat frames).
    """
    readback = readback_of(rotation)
    old_velocity = yield from bps.rd(rotation.velocity)
    yield from bps.mv(rotation, fly.pre)
    yield from bps.clear_checkpoint()
    yield from bps.mv(rotation.velocity, fly.velocity)
    info = TriggerInfo(number_of_events=num, livetime=exposure, deadtime=deadtime)
    yield from bps.stage(detector, wait=True)
    yield from bps.prepare(detector, info, wait=True)
    yield from bps.declare_stream(detector, name=stream, collect=True)
    yield from bps.monitor(readback, name=monitor_stream)
    group = short_uid("fly-rotation")
    yield from bps.abs_set(rotation, fly.post, group=group)
    yield from bps.sleep(fly.lead_time)
    yield from bps.kickoff(detector, wait=True)
    yield from bps.collect_while_completing([detector], [detector], flush_period=0.5,
                                            stream_name=stream)  # fmt: skip
    yield from bps.wait(group=group)
    yield from bps.unmonitor(readback)
    yield from bps.unstage(detector, wait=True)
    yield from bps.mv(rotation.velocity, old_velocity)
    yield from bps.checkpoint()


def tomo_scan(
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
    detector : area detector (ophyd-async ``StandardDetector`` for fly scans)
    rotation : rotation axis (deg); a classic ``ophyd.sim.SynAxis`` works in step mode
    sample_x : axis that moves the sample out of the beam for flats
    shutter : movable shutter (``shutter_open``/``shutter_closed`` positions)
    i0 : incident-flux monitor, read with every step frame
    angles : explicit angles (deg) or ``(start, stop, num)``; must cover 180 deg
    sample_out : ``sample_x`` position with the sample out of the beam
    mode : ``"step"`` or ``"fly"``
    n_dark, n_flat : numbers of dark and flat frames (>= 1)
    exposure_time : s; None keeps the detector's setting (step mode only)
    deadtime, lead_time : fly mode: dead time between frames and run-up time, s
    energy : optional energy axis, read into the start document and the baseline
    pixel_size_um, rotation_center_px : recorded in the start document
    sample : description of the sample for the start document
    baseline : more devices to read at the start and end
    md : extra start-document metadata

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
    angle_arr = validate_angles(angles, evenly_spaced=mode == "fly")
    exposure = validate_exposure(exposure_time, required=mode == "fly")
    n_dark = validate_count("n_dark", n_dark)
    n_flat = validate_count("n_flat", n_flat)
    if mode == "fly":
        validate_fly_timing(deadtime, lead_time)
    angle_list = [float(a) for a in angle_arr]
    fly = None
    if mode == "fly" and exposure is not None:
        fly = fly_geometry(angle_arr, exposure, deadtime, lead_time)
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
        rot_limits = yield from read_limits(rotation)
        check_within_limits(rotation.name, angle_list, rot_limits, "deg")
        if fly is not None:
            yield from check_fly_axis(rotation, fly, rot_limits)
            old_velocity = yield from bps.rd(rotation.velocity)
        check_within_limits(sample_x.name, [sample_out], (yield from read_limits(sample_x)), "")
        sample_in = yield from bps.rd(sample_x)
        energy_ev = (yield from bps.rd(energy)) if energy is not None else None
        if exposure is not None:
            yield from set_exposure(detector, exposure)
        stager = StreamStager(detector)
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
            "pixel_size_um": pixel_size_um,
            "rotation_center_guess_px": rotation_center_px,
            "sample": dict(sample or {}),
            "detectors": [detector.name],
            "motors": [rotation.name],
            "detector_key": data_key(detector),
            "rotation_key": rotation_key,
            "i0_key": data_key(i0),
            "hints": {"dimensions": [([rotation_key], "primary")]},
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

        def scan() -> PlanGen:
            yield from bps.open_run(md=start_md)
            yield from darks(stager, [detector, i0], shutter, n_dark, shutter_closed, shutter_open)
            yield from bps.checkpoint()
            yield from flats(stager, [detector, i0], sample_x, sample_out, sample_in, n_flat)
            yield from bps.checkpoint()
            if fly is None:
                yield from step_rotation(stager, [detector, rotation, i0], rotation, angle_list)
            else:
                yield from stager.close()
                yield from fly_rotation(detector, rotation, fly, len(angle_list), exposure,
                                        deadtime)  # fmt: skip
            yield from stager.close()
            return (yield from bps.close_run())

        def restore() -> PlanGen:
            yield from stager.close()
            yield from bps.mv(sample_x, sample_in, shutter, shutter_open)
            if fly is not None:
                yield from bps.mv(rotation.velocity, old_velocity)

        devices = [rotation, sample_x, *([energy] if energy is not None else []), *baseline]
        return (yield from bpp.finalize_wrapper(bpp.baseline_wrapper(scan(), devices), restore()))

    return checked_scan()
