"""STXM raster scans at the Ni L3 edge: two-energy valence-ratio maps and short energy stacks.

Both scans take a dark line (shutter closed) once, then at each energy an I0 line
with the stage off the sample (stream ``flat``) and the raster (stream
``primary``), line by line while the fine stage flies (``mode="fly"``, its x
readback monitored into ``stage_monitor``) or pixel by pixel (``mode="step"``).
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np
from bluesky.protocols import Movable, Readable, Triggerable
from bluesky.utils import plan

from ._tomo_common import readback_of
from .energy_grids import validate_energies
from .stubs import PlanGen, check_within_limits, data_key, limits_label, read_limits
from .stxm_raster import Raster, check_raster, fly_raster, make_raster, step_raster

__all__ = ["NI_L3_PEAKS_EV", "ni_l3_stack_grid", "stxm_ratio_scan", "stxm_stack_scan"]

#: The two Ni L3 peaks of the valence ratio I2/I1 (Deng et al. 2025), eV.
NI_L3_PEAKS_EV = (853.0, 855.5)


def ni_l3_stack_grid() -> list[float]:
    """A short energy stack across the Ni L3 edge (eV): coarse outside, 0.5 eV on the peaks.

    Examples
    --------
    >>> g = ni_l3_stack_grid(); len(g), g[0], g[-1]
    (19, 846.0, 864.0)
    """
    fine = np.arange(852.0, 857.01, 0.5)
    return [float(e) for e in np.r_[846.0, 848.0, 850.0, 851.0, fine, 858.0, 860.0, 862.0, 864.0]]


def _ratio_pair(energy_list: list[float], ratio_energies: Sequence[float] | None) -> list[float]:
    pair = list(ratio_energies) if ratio_energies is not None else energy_list[:2]
    if len(pair) != 2:
        raise ValueError(f"ratio_energies must be two energies (E1, E2) in eV, got {pair!r}.")
    e1, e2 = (float(e) for e in pair)
    if not (math.isfinite(e1) and math.isfinite(e2)):
        raise ValueError(f"ratio_energies must be finite numbers (eV), got {pair!r}.")
    if e1 == e2:
        raise ValueError(
            f"A ratio between two identical energies ({e1} eV) is always 1: choose two "
            f"different energies, e.g. ratio_energies={list(NI_L3_PEAKS_EV)} (Ni L3 peaks)."
        )
    for e in (e1, e2):
        if not energy_list[0] <= e <= energy_list[-1]:
            raise ValueError(
                f"ratio energy {e} eV lies outside the scanned energies "
                f"{energy_list[0]}-{energy_list[-1]} eV; include it in `energies`."
            )
    return [e1, e2]


def _check_references(reference_ratios: Sequence[float] | None) -> list[float] | None:
    if reference_ratios is None:
        return None
    refs = [float(r) for r in reference_ratios]
    if len(refs) != 2 or not all(math.isfinite(r) and r > 0 for r in refs) or refs[0] == refs[1]:
        raise ValueError(
            "reference_ratios must be two different positive ratios (Ni2+ reference, Ni3+ "
            f"reference), got {reference_ratios!r}."
        )
    return refs


def _raster_scan(plan_name: str, detector: Any, energy: Any, stage_x: Any, stage_y: Any,  # noqa: PLR0913 -- the shared body of the STXM plans takes all their devices and options
                 shutter: Any, i0: Any, energy_list: list[float], raster: Raster,
                 sample_out: Sequence[float], extra_md: Mapping[str, Any], n_dark: int,
                 n_i0: int, shutter_open: Any, shutter_closed: Any,
                 baseline: Sequence[Any]) -> PlanGen:  # fmt: skip
    """Darks, then at each energy an I0 line off the sample and the raster."""
    if len(sample_out) != 2:
        raise ValueError(f"sample_out must be an (x, y) stage position in um, got {sample_out!r}.")
    out_x, out_y = (float(v) for v in sample_out)
    for name, n in (("n_dark", n_dark), ("n_i0", n_i0)):
        if isinstance(n, bool) or int(n) != n or int(n) < 1:
            raise ValueError(f"{name} must be an integer >= 1 pixels, got {n!r}.")
    monitor = readback_of(stage_x)
    start_md: dict[str, Any] = {
        "plan_name": plan_name,
        "element": "Ni",
        "edge": "L3",
        "energies_ev": energy_list,
        "num_points": len(energy_list),
        "num_intervals": len(energy_list) - 1,
        "raster": raster.md(),
        "pixel_size_um": raster.step_um,
        "n_dark": int(n_dark),
        "n_i0": int(n_i0),
        "sample_out_um": [out_x, out_y],
        "detectors": [detector.name],
        "motors": [stage_x.name, stage_y.name, energy.name],
        "detector_key": data_key(detector),
        "counts_key": f"{detector.name}_counts",
        "i0_counts_key": f"{detector.name}_i0",
        "time_key": f"{detector.name}_time",
        "energy_key": data_key(energy),
        "x_key": data_key(stage_x),
        "y_key": data_key(stage_y),
        "i0_key": data_key(i0),
        "monitor_stream": "stage_monitor" if raster.mode == "fly" else None,
        "monitor_key": monitor.name if raster.mode == "fly" else None,
        "hints": {"dimensions": [([data_key(stage_y)], "primary")]},
        **dict(extra_md),
    }

    def checked() -> PlanGen:
        limits = yield from read_limits(energy)
        check_within_limits(limits_label(energy), energy_list, limits, "eV")
        yield from check_raster(stage_x, stage_y, raster)
        for axis, value in ((stage_x, out_x), (stage_y, out_y)):
            check_within_limits(limits_label(axis) + " (sample_out)", [value],
                                (yield from read_limits(axis)), "um")  # fmt: skip
        x_in = yield from bps.rd(stage_x)
        y_in = yield from bps.rd(stage_y)
        old_pixels = yield from bps.rd(detector.pixels_per_line)
        old_dwell = yield from bps.rd(detector.dwell_time)
        old_velocity = yield from bps.rd(stage_x.velocity)
        raster_plan = step_raster if raster.mode == "step" else fly_raster

        def reference(stream: str, n: int) -> PlanGen:
            yield from bps.mv(detector.pixels_per_line, n)
            yield from bps.trigger_and_read([detector, energy], name=stream)

        def scan() -> PlanGen:
            yield from bps.open_run(md=start_md)
            yield from bps.mv(detector.dwell_time, raster.dwell_time)
            yield from bps.mv(shutter, shutter_closed)
            yield from reference("dark", int(n_dark))
            yield from bps.mv(shutter, shutter_open)
            if raster.mode == "fly":
                yield from bps.monitor(monitor, name="stage_monitor")
            for e in energy_list:
                yield from bps.checkpoint()
                yield from bps.mv(energy, e, stage_x, out_x, stage_y, out_y)
                yield from reference("flat", int(n_i0))
                pixels = raster.nx + 2 * raster.margin if raster.mode == "fly" else 1
                yield from bps.mv(detector.pixels_per_line, pixels)
                yield from raster_plan(detector, stage_x, stage_y, [stage_y, energy], raster)
            if raster.mode == "fly":
                yield from bps.unmonitor(monitor)
            return (yield from bps.close_run())

        def restore() -> PlanGen:
            yield from bps.mv(stage_x.velocity, old_velocity)
            yield from bps.mv(detector.pixels_per_line, old_pixels, detector.dwell_time,
                              old_dwell)  # fmt: skip
            yield from bps.mv(stage_x, x_in, stage_y, y_in, shutter, shutter_open)

        devices = [energy, stage_x, stage_y, i0, *baseline]
        return (yield from bpp.finalize_wrapper(bpp.baseline_wrapper(scan(), devices), restore()))

    return checked()


@plan
def stxm_ratio_scan(  # noqa: PLR0913 -- bluesky plan: keyword arguments are the queue server's parameter form
    detector: Triggerable,
    energy: Movable,
    stage_x: Movable,
    stage_y: Movable,
    shutter: Movable,
    i0: Readable,
    energies: Sequence[float],
    *,
    nx: int,
    ny: int,
    step_um: float,
    sample_out: Sequence[float],
    x_center_um: float = 0.0,
    y_center_um: float = 0.0,
    dwell_time: float = 0.001,
    mode: Literal["fly", "step"] = "fly",
    lead_time: float = 0.01,
    ratio_energies: Sequence[float] | None = None,
    pre_edge_ev: float | None = None,
    reference_ratios: Sequence[float] | None = None,
    reference_e1_ratio: float = 1.0,
    n_dark: int = 32,
    n_i0: int = 32,
    shutter_open: Any = "Open",
    shutter_closed: Any = "Closed",
    sample: Mapping[str, Any] | None = None,
    baseline: Sequence[Readable] = (),
    md: Mapping[str, Any] | None = None,
) -> PlanGen:
    """Raster the sample at two or more energies for a valence-ratio map ``OD(E2) / OD(E1)``.

    Darks (shutter closed, ``n_dark`` pixels, stream ``dark``) once; at each energy
    ``n_i0`` pixels with the stage at ``sample_out`` (stream ``flat``), then the
    ``nx`` x ``ny`` raster (stream ``primary``; fly mode: one event per line, the
    stage x readback monitored into ``stage_monitor``). The live analysis turns the
    counts into optical densities, the ratio map and, with ``reference_ratios``, the
    Ni3+ fraction.

    Parameters
    ----------
    detector : Triggerable
        Point detector (``pixels_per_line``, ``dwell_time`` signals).
    energy : Movable
        Soft X-ray monochromator, eV.
    stage_x : Movable
        Fine stage axis along the lines, um (with ``velocity``; fly mode).
    stage_y : Movable
        Fine stage axis across the lines, um.
    shutter : Movable
        Shutter; ``shutter_closed`` for the darks.
    i0 : Readable
        Incident-flux monitor (baseline; the detector records it per pixel).
    energies : list of float
        At least two strictly increasing energies, eV, e.g. [853.0, 855.5].
    nx : int
        Pixels per line (>= 2).
    ny : int
        Lines (>= 2).
    step_um : float
        Pixel size, um.
    sample_out : list of float
        (x, y) stage position off the sample for I0, um.
    x_center_um : float
        Raster centre, um.
    y_center_um : float
        Raster centre, um.
    dwell_time : float
        Dwell per pixel, s (> 0).
    mode : {"fly", "step"}
        Line-by-line fly scan or pixel-by-pixel step scan.
    lead_time : float
        Fly run-up time, s.
    ratio_energies : list of float or None
        (E1, E2) of the ratio; default the first two energies.
    pre_edge_ev : float or None
        A scanned energy whose OD is subtracted from both before the ratio.
    reference_ratios : list of float or None
        Ratios of the pure Ni2+ and Ni3+ references: enables the Ni3+ fraction map.
    reference_e1_ratio : float
        OD(E1) of the Ni3+ reference over that of the Ni2+ reference (1 = linear).
    n_dark : int
        Dark pixels (>= 1).
    n_i0 : int
        I0 pixels per energy (>= 1).
    shutter_open : object
        Open position of the shutter.
    shutter_closed : object
        Closed position of the shutter.
    sample : dict or None
        Description of the sample for the start document.
    baseline : list of Readable
        More devices read at the start and end.
    md : dict or None
        Extra start-document metadata.

    Raises
    ------
    ValueError
        When the plan is built: fewer than two energies, duplicated or unordered
        energies, a ratio between identical energies, dwell <= 0, a bad raster; before
        anything moves: energies outside the monochromator's limits, a raster (with
        its fly run-up) beyond the stage travel, a fly speed above the stage maximum.
    """
    grid = validate_energies(energies)
    if grid.size < 2:
        raise ValueError(
            f"A ratio scan needs at least two energies, got {grid.tolist()}; e.g. "
            f"energies={list(NI_L3_PEAKS_EV)} (the Ni L3 peaks)."
        )
    energy_list = [float(e) for e in grid]
    raster = make_raster(x_center_um, y_center_um, nx, ny, step_um, dwell_time, mode, lead_time)
    pair = _ratio_pair(energy_list, ratio_energies)
    if pre_edge_ev is not None and float(pre_edge_ev) not in energy_list:
        raise ValueError(f"pre_edge_ev {pre_edge_ev} eV is not one of the energies {energy_list}.")
    extra = {
        "ratio_energies_ev": pair,
        "pre_edge_ev": None if pre_edge_ev is None else float(pre_edge_ev),
        "reference_ratios": _check_references(reference_ratios),
        "reference_e1_ratio": float(reference_e1_ratio),
        "sample": dict(sample or {}),
        "plan_args": {
            "energies": energy_list,
            "nx": nx,
            "ny": ny,
            "step_um": step_um,
            "dwell_time": dwell_time,
            "mode": mode,
            "x_center_um": x_center_um,
            "y_center_um": y_center_um,
            "sample_out": list(sample_out),
        },
        **dict(md or {}),
    }
    return _raster_scan("stxm_ratio_scan", detector, energy, stage_x, stage_y, shutter, i0,
                        energy_list, raster, sample_out, extra, n_dark, n_i0, shutter_open,
                        shutter_closed, baseline)  # fmt: skip


@plan
def stxm_stack_scan(  # noqa: PLR0913 -- bluesky plan: keyword arguments are the queue server's parameter form
    detector: Triggerable,
    energy: Movable,
    stage_x: Movable,
    stage_y: Movable,
    shutter: Movable,
    i0: Readable,
    energies: Sequence[float],
    *,
    nx: int,
    ny: int,
    step_um: float,
    sample_out: Sequence[float],
    x_center_um: float = 0.0,
    y_center_um: float = 0.0,
    dwell_time: float = 0.001,
    mode: Literal["fly", "step"] = "fly",
    lead_time: float = 0.01,
    ratio_energies: Sequence[float] | None = None,
    n_dark: int = 32,
    n_i0: int = 32,
    shutter_open: Any = "Open",
    shutter_closed: Any = "Closed",
    sample: Mapping[str, Any] | None = None,
    baseline: Sequence[Readable] = (),
    md: Mapping[str, Any] | None = None,
) -> PlanGen:
    """Raster the sample at every energy of a short stack across the L3 edge (spectra).

    As `stxm_ratio_scan` (same streams and metadata); the analysis adds the OD stack
    and per-particle spectra, and the ratio map at ``ratio_energies`` (default the Ni
    L3 peaks 853 and 855.5 eV, interpolated between scanned energies).

    Parameters
    ----------
    detector : Triggerable
        Point detector.
    energy : Movable
        Soft X-ray monochromator, eV.
    stage_x : Movable
        Fine stage axis along the lines, um.
    stage_y : Movable
        Fine stage axis across the lines, um.
    shutter : Movable
        Shutter.
    i0 : Readable
        Incident-flux monitor.
    energies : list of float
        At least three strictly increasing energies, eV, e.g. ``ni_l3_stack_grid()``.
    nx : int
        Pixels per line.
    ny : int
        Lines.
    step_um : float
        Pixel size, um.
    sample_out : list of float
        (x, y) stage position off the sample for I0, um.
    x_center_um : float
        Raster centre, um.
    y_center_um : float
        Raster centre, um.
    dwell_time : float
        Dwell per pixel, s.
    mode : {"fly", "step"}
        Fly or step raster.
    lead_time : float
        Fly run-up time, s.
    ratio_energies : list of float or None
        (E1, E2) of the ratio map; default (853.0, 855.5).
    n_dark : int
        Dark pixels.
    n_i0 : int
        I0 pixels per energy.
    shutter_open : object
        Open position of the shutter.
    shutter_closed : object
        Closed position of the shutter.
    sample : dict or None
        Description of the sample.
    baseline : list of Readable
        More devices read at the start and end.
    md : dict or None
        Extra start-document metadata.
    """
    grid = validate_energies(energies)
    if grid.size < 3:
        raise ValueError(
            f"An energy stack needs at least three energies, got {grid.tolist()}; use "
            "ni_l3_stack_grid() or stxm_ratio_scan for two energies."
        )
    energy_list = [float(e) for e in grid]
    raster = make_raster(x_center_um, y_center_um, nx, ny, step_um, dwell_time, mode, lead_time)
    pair = _ratio_pair(energy_list, ratio_energies if ratio_energies is not None
                       else list(NI_L3_PEAKS_EV))  # fmt: skip
    extra = {
        "ratio_energies_ev": pair,
        "pre_edge_ev": energy_list[0],
        "reference_ratios": None,
        "stack": True,
        "sample": dict(sample or {}),
        "plan_args": {
            "energies": energy_list,
            "nx": nx,
            "ny": ny,
            "step_um": step_um,
            "dwell_time": dwell_time,
            "mode": mode,
        },
        **dict(md or {}),
    }
    return _raster_scan("stxm_stack_scan", detector, energy, stage_x, stage_y, shutter, i0,
                        energy_list, raster, sample_out, extra, n_dark, n_i0, shutter_open,
                        shutter_closed, baseline)  # fmt: skip
