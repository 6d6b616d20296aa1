"""The run shared by the STXM scans (`stxm_ratio_scan`, `stxm_stack_scan`).

Darks (a line with the shutter closed) once, then at each energy an I0 line with
the stage off the sample (stream ``flat``) and the raster (stream ``primary``,
line by line while the fine stage flies, or pixel by pixel). The limits are read
inside the plan; everything the plan is given is checked when it is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp

from .stubs import (
    PlanGen,
    check_within_limits,
    data_key,
    limits_label,
    read_limits,
    readback_of,
)
from .stxm_raster import Raster, check_raster, fly_raster, step_raster
from .validation import validate_count

__all__ = ["StxmDevices", "raster_scan", "stxm_start_md", "validate_references_off_sample"]


@dataclass(frozen=True)
class StxmDevices:
    """The devices an STXM scan drives, and the shutter positions.

    Attributes
    ----------
    detector : Any
        Point detector (``pixels_per_line``, ``dwell_time`` signals).
    energy : Any
        Soft X-ray monochromator, eV.
    stage_x, stage_y : Any
        Fine stage axes, um (``stage_x`` with ``velocity``).
    shutter : Any
        Shutter.
    i0 : Any
        Incident-flux monitor.
    shutter_open, shutter_closed : Any
        Positions of ``shutter``.
    """

    detector: Any
    energy: Any
    stage_x: Any
    stage_y: Any
    shutter: Any
    i0: Any
    shutter_open: Any
    shutter_closed: Any


def validate_references_off_sample(
    sample_out: Sequence[float], n_dark: int, n_i0: int
) -> tuple[tuple[float, float], int, int]:
    """The (x, y) off-sample position and the dark / I0 pixel counts, checked.

    Parameters
    ----------
    sample_out : sequence of float
        (x, y) stage position off the sample, um.
    n_dark, n_i0 : int
        Dark pixels and I0 pixels per energy (>= 1).

    Examples
    --------
    >>> validate_references_off_sample([10, -5], 32, 16)
    ((10.0, -5.0), 32, 16)
    """
    if len(sample_out) != 2:
        raise ValueError(f"sample_out must be an (x, y) stage position in um, got {sample_out!r}.")
    out_x, out_y = (float(v) for v in sample_out)
    n_dark = validate_count("n_dark", n_dark, unit="pixels")
    n_i0 = validate_count("n_i0", n_i0, unit="pixels")
    return (out_x, out_y), n_dark, n_i0


def stxm_start_md(plan_name: str, d: StxmDevices, energy_list: list[float], raster: Raster,
                  sample_out: tuple[float, float], n_dark: int, n_i0: int,
                  extra_md: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The start document of an STXM scan.

    Parameters
    ----------
    plan_name : str
        The plan's name.
    d : StxmDevices
        The devices.
    energy_list : list of float
        Energies, eV.
    raster : Raster
        The raster geometry.
    sample_out : (float, float)
        Off-sample stage position, um.
    n_dark, n_i0 : int
        Dark and I0 pixels.
    extra_md : dict
        The plan's own entries (they override these).
    """
    fly = raster.mode == "fly"
    detector = d.detector.name
    return {
        "plan_name": plan_name, "element": "Ni", "edge": "L3",
        "energies_ev": energy_list, "num_points": len(energy_list),
        "num_intervals": len(energy_list) - 1, "raster": raster.md(),
        "pixel_size_um": raster.step_um, "n_dark": n_dark, "n_i0": n_i0,
        "sample_out_um": list(sample_out), "detectors": [detector],
        "motors": [d.stage_x.name, d.stage_y.name, d.energy.name],
        "detector_key": data_key(d.detector), "counts_key": f"{detector}_counts",
        "i0_counts_key": f"{detector}_i0", "time_key": f"{detector}_time",
        "energy_key": data_key(d.energy), "x_key": data_key(d.stage_x),
        "y_key": data_key(d.stage_y), "i0_key": data_key(d.i0),
        "monitor_stream": "stage_monitor" if fly else None,
        "monitor_key": readback_of(d.stage_x).name if fly else None,
        "hints": {"dimensions": [([data_key(d.stage_y)], "primary")]},
        **dict(extra_md),
    }  # fmt: skip


def _check_limits(d: StxmDevices, energy_list: Sequence[float], raster: Raster,
                  sample_out: tuple[float, float]) -> PlanGen:  # fmt: skip
    """Check (``bps.rd``) the energies, the raster and ``sample_out`` within the limits."""
    limits = yield from read_limits(d.energy)
    check_within_limits(limits_label(d.energy), energy_list, limits, "eV")
    yield from check_raster(d.stage_x, d.stage_y, raster)
    for axis, value in zip((d.stage_x, d.stage_y), sample_out, strict=True):
        check_within_limits(limits_label(axis) + " (sample_out)", [value],
                            (yield from read_limits(axis)), "um")  # fmt: skip


def _reference(d: StxmDevices, stream: str, n: int) -> PlanGen:
    """Count ``n`` pixels where the stage is into ``stream`` (darks, I0)."""
    yield from bps.mv(d.detector.pixels_per_line, n)
    yield from bps.trigger_and_read([d.detector, d.energy], name=stream)


def _energy_point(d: StxmDevices, e: float, raster: Raster, sample_out: tuple[float, float],
                  n_i0: int) -> PlanGen:  # fmt: skip
    """At energy ``e``: an I0 line off the sample, then the raster."""
    yield from bps.checkpoint()
    yield from bps.mv(d.energy, e, d.stage_x, sample_out[0], d.stage_y, sample_out[1])
    yield from _reference(d, "flat", n_i0)
    pixels = raster.nx + 2 * raster.margin if raster.mode == "fly" else 1
    yield from bps.mv(d.detector.pixels_per_line, pixels)
    raster_plan = step_raster if raster.mode == "step" else fly_raster
    yield from raster_plan(d.detector, d.stage_x, d.stage_y, [d.stage_y, d.energy], raster)


def raster_scan(start_md: Mapping[str, Any], d: StxmDevices, energy_list: list[float],
                raster: Raster, sample_out: tuple[float, float], n_dark: int, n_i0: int,
                baseline: Sequence[Any]) -> PlanGen:  # fmt: skip
    """Check the limits, then darks and at each energy an I0 line and the raster.

    The stage position, the detector's dwell and pixels per line and the stage
    velocity are restored whatever happens.

    Parameters
    ----------
    start_md : dict
        The start document (see :func:`stxm_start_md`).
    d : StxmDevices
        The devices.
    energy_list : list of float
        Energies, eV.
    raster : Raster
        The raster geometry.
    sample_out : (float, float)
        Off-sample stage position for I0, um.
    n_dark, n_i0 : int
        Dark pixels, and I0 pixels per energy.
    baseline : sequence
        More devices read at the start and end.
    """
    yield from _check_limits(d, energy_list, raster, sample_out)
    x_in = yield from bps.rd(d.stage_x)
    y_in = yield from bps.rd(d.stage_y)
    old_pixels = yield from bps.rd(d.detector.pixels_per_line)
    old_dwell = yield from bps.rd(d.detector.dwell_time)
    old_velocity = yield from bps.rd(d.stage_x.velocity)
    monitor = readback_of(d.stage_x)

    def scan() -> PlanGen:
        yield from bps.open_run(md=dict(start_md))
        yield from bps.mv(d.detector.dwell_time, raster.dwell_time)
        yield from bps.mv(d.shutter, d.shutter_closed)
        yield from _reference(d, "dark", n_dark)
        yield from bps.mv(d.shutter, d.shutter_open)
        if raster.mode == "fly":
            yield from bps.monitor(monitor, name="stage_monitor")
        for e in energy_list:
            yield from _energy_point(d, e, raster, sample_out, n_i0)
        if raster.mode == "fly":
            yield from bps.unmonitor(monitor)
        return (yield from bps.close_run())

    def restore() -> PlanGen:
        yield from bps.mv(d.stage_x.velocity, old_velocity)
        yield from bps.mv(d.detector.pixels_per_line, old_pixels, d.detector.dwell_time,
                          old_dwell)  # fmt: skip
        yield from bps.mv(d.stage_x, x_in, d.stage_y, y_in, d.shutter, d.shutter_open)

    devices = [d.energy, d.stage_x, d.stage_y, d.i0, *baseline]
    return (yield from bpp.finalize_wrapper(bpp.baseline_wrapper(scan(), devices), restore()))
