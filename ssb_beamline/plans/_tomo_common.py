"""Plan stubs and geometry shared by `tomo_scan`, `xanes_tomo_scan` and `holotomo_scan`.

Darks, flats, a step rotation, a fly rotation (geometry, checks, the flight) and
the start-document pieces of a series; `._tomo_series` runs them in order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import bluesky.plan_stubs as bps
import numpy as np
from bluesky.protocols import Movable, Readable
from bluesky.utils import short_uid
from ophyd_async.core import TriggerInfo

from .stubs import (
    PlanGen,
    StreamStager,
    check_sample_out,
    check_within_limits,
    data_key,
    read_limits,
    readback_of,
    set_exposure,
)

__all__ = [
    "FlyGeometry",
    "angle_orders",
    "check_fly_axis",
    "check_rotation",
    "darks",
    "device_md",
    "flats",
    "fly_geometries",
    "fly_geometry",
    "fly_rotation",
    "prepare_tomo",
    "segment_streams",
    "series_fly_md",
    "step_rotation",
    "tomogram_list",
    "validate_fly_timing",
]


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


def segment_streams(mode: str, index: int) -> tuple[str, str | None]:
    """(frame stream, monitor stream) of the ``index``-th tomogram of a series.

    Step scans put every tomogram in ``primary`` (each event carries the energy or
    distance); fly scans collect each tomogram into its own ``primary_<k>`` stream
    with its rotation monitor ``rotation_monitor_<k>``.

    Examples
    --------
    >>> segment_streams("step", 3), segment_streams("fly", 3)
    (('primary', None), ('primary_003', 'rotation_monitor_003'))
    """
    if mode == "step":
        return "primary", None
    return f"primary_{index:03d}", f"rotation_monitor_{index:03d}"


def angle_orders(angle_arr: np.ndarray, count: int, zigzag: bool) -> list[np.ndarray]:
    """Angle order of each of ``count`` tomograms; with ``zigzag`` every other one reversed."""
    return [angle_arr[::-1] if zigzag and k % 2 else angle_arr for k in range(count)]


def fly_geometries(mode: str, exposure: float | None, orders: Sequence[np.ndarray],
                   deadtime: float, lead_time: float) -> list[FlyGeometry]:  # fmt: skip
    """The fly geometry of each tomogram (empty list for step scans)."""
    if mode == "fly" and exposure is not None:
        validate_fly_timing(deadtime, lead_time)
        return [fly_geometry(a, exposure, deadtime, lead_time) for a in orders]
    return []


def tomogram_list(key: str, values: Sequence[float], orders: Sequence[np.ndarray], mode: str,
                  flies: Sequence[FlyGeometry]) -> list[dict[str, Any]]:  # fmt: skip
    """The start document's ``tomograms``: ``key`` value, angles and streams of each."""
    tomograms = []
    for k, (value, order) in enumerate(zip(values, orders, strict=True)):
        stream, monitor = segment_streams(mode, k)
        tomograms.append({key: value, "angles_deg": [float(a) for a in order],
                          "stream": stream, "monitor_stream": monitor})  # fmt: skip
        if flies:
            tomograms[-1]["rotation_travel_deg"] = [flies[k].pre, flies[k].post]
    return tomograms


def device_md(detector: Any, i0: Any, motors: Sequence[Any], axis_keys: Mapping[str, str],
              pixel_size_um: float | None, rotation_center_px: float | None,
              sample: Mapping[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    """Start-document entries naming the devices and data keys (``axis_keys`` in hint order)."""
    return {
        "pixel_size_um": pixel_size_um,
        "rotation_center_guess_px": rotation_center_px,
        "sample": dict(sample or {}),
        "detectors": [detector.name],
        "motors": [m.name for m in motors],
        "detector_key": data_key(detector),
        **axis_keys,
        "i0_key": data_key(i0),
        "hints": {"dimensions": [([k], "primary") for k in axis_keys.values()]},
    }


def series_fly_md(flies: Sequence[FlyGeometry], deadtime: float, rotation: Any,
                  detector: Any) -> dict[str, Any]:  # fmt: skip
    """Start-document entries of a fly tomogram series (empty for step scans)."""
    if not flies:
        return {}
    return {"rotation_velocity_deg_s": flies[0].velocity, "deadtime": deadtime,
            "monitor_key": readback_of(rotation).name,
            "timestamp_key": data_key(detector) + "-timestamp"}  # fmt: skip


def check_rotation(
    rotation: Any, angle_list: Sequence[float], flies: Sequence[FlyGeometry]
) -> PlanGen:
    """Check angles (and fly run-ups) within the rotation limits; return the old velocity.

    The old velocity (None for step scans) is what `run_tomo_series` restores.
    """
    rot_limits = yield from read_limits(rotation)
    check_within_limits(rotation.name, angle_list, rot_limits, "deg")
    for fly in flies:
        yield from check_fly_axis(rotation, fly, rot_limits)
    return (yield from bps.rd(rotation.velocity)) if flies else None


def prepare_tomo(detector: Any, rotation: Any, sample_x: Any, angle_list: Sequence[float],
                 flies: Sequence[FlyGeometry], sample_out: float, exposure: float | None,
                 energy: Any = None) -> PlanGen:  # fmt: skip
    """Check the rotation and ``sample_out``, read ``energy``, set the exposure.

    Returns (old rotation velocity or None, ``sample_x`` position, energy or None).
    """
    old_velocity = yield from check_rotation(rotation, angle_list, flies)
    sample_in = yield from check_sample_out(sample_x, sample_out)
    energy_ev = (yield from bps.rd(energy)) if energy is not None else None
    if exposure is not None:
        yield from set_exposure(detector, exposure)
    return old_velocity, sample_in, energy_ev
