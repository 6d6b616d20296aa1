"""STXM raster scans at the Ni L3 edge: two-energy valence-ratio maps and short energy stacks.

Both scans take a dark line (shutter closed) once, then at each energy an I0 line
with the stage off the sample (stream ``flat``) and the raster (stream
``primary``), line by line while the fine stage flies (``mode="fly"``, its x
readback monitored into ``stage_monitor``) or pixel by pixel (``mode="step"``).
This module checks what differs between them (energies, ratio, references); the
run they share is in ``._stxm_run``.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from bluesky.protocols import Movable, Readable, Triggerable

from ._stxm_run import StxmDevices, raster_scan, stxm_start_md, validate_references_off_sample
from .built import plan
from .energy_grids import validate_energies
from .stubs import PlanGen
from .stxm_raster import Raster, make_raster

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


def _stxm_plan(plan_name: str, d: StxmDevices, energy_list: list[float], raster: Raster,
               sample_out: Sequence[float], extra_md: Mapping[str, Any], n_dark: int, n_i0: int,
               baseline: Sequence[Any]) -> PlanGen:  # fmt: skip
    """Check the reference counts and ``sample_out`` now, and return the scan."""
    out, n_dark, n_i0 = validate_references_off_sample(sample_out, n_dark, n_i0)
    start_md = stxm_start_md(plan_name, d, energy_list, raster, out, n_dark, n_i0, extra_md)
    return raster_scan(start_md, d, energy_list, raster, out, n_dark, n_i0, baseline)


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
    return _stxm_plan("stxm_ratio_scan", StxmDevices(detector, energy, stage_x, stage_y, shutter,
                      i0, shutter_open, shutter_closed), energy_list, raster, sample_out,
                      extra, n_dark, n_i0, baseline)  # fmt: skip


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
    return _stxm_plan("stxm_stack_scan", StxmDevices(detector, energy, stage_x, stage_y, shutter,
                      i0, shutter_open, shutter_closed), energy_list, raster, sample_out,
                      extra, n_dark, n_i0, baseline)  # fmt: skip
