"""Raster geometry, checks and line stubs of the STXM scans (`ssb_beamline.plans.stxm`).

A raster is ``nx`` x ``ny`` pixels of ``step_um`` centred on ``(x_center_um,
y_center_um)``. In fly mode each line is counted while the fine stage moves at
``step / dwell`` um/s, alternately towards +x and back (snake): the counter is
triggered first and counts ``nx + 2 * margin`` pixels (``margin = ceil(lead_time /
dwell)``), then the stage runs from ``margin`` pixels before the line to ``margin``
pixels after it, so the line is covered unless the stage starts more than
``lead_time`` after the counter. The analysis places each pixel at the position the
monitored stage readback had at its time stamp.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import bluesky.plan_stubs as bps
import numpy as np
from bluesky.utils import short_uid

from .stubs import PlanGen, limits_label, read_limits
from .validation import validate_count, validate_mode

__all__ = ["Raster", "check_raster", "fly_raster", "make_raster", "step_raster"]


@dataclass(frozen=True)
class Raster:
    """Geometry of a raster (um, s); made by `make_raster`.

    Attributes
    ----------
    x_um, y_um : tuple of float
        Pixel centres along and across the lines, um.
    step_um : float
        Pixel size, um.
    dwell_time : float
        Dwell per pixel, s.
    mode : str
        ``"fly"`` or ``"step"``.
    lead_time : float
        Fly run-up time, s.
    """

    x_um: tuple[float, ...]
    y_um: tuple[float, ...]
    step_um: float
    dwell_time: float
    mode: str
    lead_time: float

    @property
    def nx(self) -> int:
        """Pixels per line."""
        return len(self.x_um)

    @property
    def ny(self) -> int:
        """Lines."""
        return len(self.y_um)

    @property
    def margin(self) -> int:
        """Extra pixels counted before and after each fly line."""
        return math.ceil(self.lead_time / self.dwell_time - 1e-9) if self.mode == "fly" else 0

    @property
    def velocity(self) -> float:
        """Fly speed, um/s."""
        return self.step_um / self.dwell_time

    @property
    def fly_travel(self) -> tuple[float, float]:
        """(low, high) ends of the stage travel of a fly line, um (lines alternate)."""
        run_up = self.margin * self.step_um
        return self.x_um[0] - run_up, self.x_um[-1] + run_up

    def line_ends(self, row: int) -> tuple[float, float]:
        """(start, end) of fly line ``row``: even rows towards +x, odd rows back (snake)."""
        low, high = self.fly_travel
        return (low, high) if row % 2 == 0 else (high, low)

    def md(self) -> dict[str, Any]:
        """Start-document description."""
        return {"x_um": list(self.x_um), "y_um": list(self.y_um), "step_um": self.step_um,
                "nx": self.nx, "ny": self.ny, "dwell_time": self.dwell_time, "mode": self.mode,
                "lead_time": self.lead_time, "margin_pixels": self.margin,
                "pixels_per_line": self.nx + 2 * self.margin if self.mode == "fly" else 1,
                "velocity_um_s": self.velocity if self.mode == "fly" else None}  # fmt: skip


def _positive(name: str, value: Any, hint: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}. {hint}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be > 0, got {value!r}. {hint}")
    return v


def make_raster(
    x_center_um: float, y_center_um: float, nx: int, ny: int, step_um: float,
    dwell_time: float, mode: str, lead_time: float,
) -> Raster:  # fmt: skip
    """Validated raster; raise ``ValueError`` naming the bad parameter and the fix.

    Parameters
    ----------
    x_center_um, y_center_um : float
        Raster centre, um.
    nx, ny : int
        Pixels per line and lines (>= 2).
    step_um : float
        Pixel size, um (> 0).
    dwell_time : float
        Dwell per pixel, s (> 0).
    mode : {"fly", "step"}
        Line-by-line fly scan or pixel-by-pixel step scan.
    lead_time : float
        Fly run-up time, s (> 0).

    Examples
    --------
    >>> r = make_raster(0.0, 0.0, 4, 2, 0.5, 0.001, "fly", 0.002)
    >>> r.x_um, r.margin
    ((-0.75, -0.25, 0.25, 0.75), 2)
    """
    validate_mode(mode, ("fly", "step"))
    dwell = _positive("dwell_time", dwell_time, "Use a dwell per pixel in s, e.g. 0.001.")
    step = _positive("step_um", step_um, "Use the pixel size in um, e.g. 0.1.")
    lead = _positive("lead_time", lead_time, "The fly run-up time in s, e.g. 0.01.")
    nx, ny = (
        validate_count(name, n, minimum=2, unit="pixels") for name, n in (("nx", nx), ("ny", ny))
    )
    xs = float(x_center_um) + step * (np.arange(nx) - (nx - 1) / 2)
    ys = float(y_center_um) + step * (np.arange(ny) - (ny - 1) / 2)
    return Raster(tuple(float(v) for v in xs), tuple(float(v) for v in ys), step, dwell, mode,
                  lead)  # fmt: skip


def check_raster(stage_x: Any, stage_y: Any, raster: Raster) -> PlanGen:
    """Check (``bps.rd``) that the raster, with its fly run-up, fits the stage travel.

    Parameters
    ----------
    stage_x, stage_y : Movable
        Fine stage axes, um.
    raster : Raster
        The raster.
    """
    spans = {
        "x": (stage_x, raster.fly_travel if raster.mode == "fly" else (raster.x_um[0],
                                                                       raster.x_um[-1])),
        "y": (stage_y, (raster.y_um[0], raster.y_um[-1])),
    }  # fmt: skip
    for axis_name, (axis, (lo_needed, hi_needed)) in spans.items():
        lo, hi = yield from read_limits(axis)
        if lo <= lo_needed and hi_needed <= hi:
            continue
        label = limits_label(axis)
        need = hi_needed - lo_needed
        if need > hi - lo:
            raise ValueError(
                f"The raster needs {need:.4g} um of {axis_name} travel (including the fly "
                f"run-up) but {label} travels only {hi - lo:.4g} um [{lo:.6g}, {hi:.6g}]. "
                "Use fewer pixels, a smaller step or a shorter lead_time (nothing has moved)."
            )
        raise ValueError(
            f"The raster spans {lo_needed:.4g}..{hi_needed:.4g} um in {axis_name}, outside "
            f"the travel [{lo:.6g}, {hi:.6g}] um of {label}. Move the raster centre inside "
            "the travel (nothing has moved)."
        )
    if raster.mode == "fly" and hasattr(stage_x, "max_velocity"):
        vmax = yield from bps.rd(stage_x.max_velocity)
        if vmax and raster.velocity > vmax:
            raise ValueError(
                f"The fly scan needs {raster.velocity:.4g} um/s, above the maximum "
                f"{vmax:.4g} um/s of {stage_x.name}: use a longer dwell or a smaller step."
            )


def fly_raster(detector: Any, stage_x: Any, stage_y: Any, readables: Sequence[Any],
               raster: Raster, stream: str = "primary") -> PlanGen:  # fmt: skip
    """Count the raster line by line while ``stage_x`` flies (snake; readback monitored).

    Each line starts with a move to its start (a no-op after the previous line,
    but a resumed run may come back from anywhere), at the fly speed, which is set
    for the whole raster and restored at its end.

    Parameters
    ----------
    detector : Triggerable
        Point detector counting a line per trigger.
    stage_x, stage_y : Movable
        Fine stage axes, um (``stage_x`` with ``velocity``).
    readables : sequence of Readable
        Read with the detector after each line.
    raster : Raster
        The raster.
    stream : str
        Event stream of the lines.
    """
    old_velocity = yield from bps.rd(stage_x.velocity)
    yield from bps.mv(stage_x, raster.line_ends(0)[0], stage_y, raster.y_um[0])
    yield from bps.mv(stage_x.velocity, raster.velocity)
    for row in range(raster.ny):
        yield from bps.checkpoint()
        start, end = raster.line_ends(row)
        yield from bps.mv(stage_x, start, stage_y, raster.y_um[row])
        # the counter starts first, the stage right after: every pixel of the line is
        # counted unless the stage starts more than `lead_time` after the counter
        group = short_uid("stxm-line")
        yield from bps.trigger(detector, group=group)
        yield from bps.abs_set(stage_x, end, group=group)
        yield from bps.wait(group=group)
        yield from bps.create(stream)
        for device in (detector, *readables):
            yield from bps.read(device)
        yield from bps.save()
    yield from bps.mv(stage_x.velocity, old_velocity)


def step_raster(detector: Any, stage_x: Any, stage_y: Any, readables: Sequence[Any],
                raster: Raster, stream: str = "primary") -> PlanGen:  # fmt: skip
    """Move to each pixel and count it (x and y read with every pixel).

    Parameters
    ----------
    detector : Triggerable
        Point detector.
    stage_x, stage_y : Movable
        Fine stage axes, um.
    readables : sequence of Readable
        Read with the detector at each pixel (``stage_y`` among them for y).
    raster : Raster
        The raster.
    stream : str
        Event stream of the pixels.
    """
    for y in raster.y_um:
        yield from bps.checkpoint()
        for x in raster.x_um:
            yield from bps.mv(stage_x, x, stage_y, y)
            yield from bps.trigger_and_read([detector, stage_x, *readables], name=stream)
