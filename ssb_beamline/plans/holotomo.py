"""Holotomography: tomograms at 1-4 propagation distances (focus-to-sample ``holo_z``)."""

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import bluesky.plan_stubs as bps
import numpy as np
from bluesky.protocols import Movable, Readable, Triggerable
from bluesky_queueserver import parameter_annotation_decorator

from ._tomo_common import device_md, series_fly_md, tomogram_list
from ._tomo_series import TomoDevices, TomoOptions, tomo_options, tomo_series_plan
from .angles import QUEUE_ANGLES, AngleRange
from .built import plan
from .stubs import PlanGen, check_within_limits, data_key, read_limits
from .validation import validate_mode

__all__ = ["MAX_DISTANCES", "MIN_DISTANCES", "holotomo_scan", "validate_distances"]

logger = logging.getLogger(__name__)

#: Number of propagation distances a holotomography scan accepts.
MIN_DISTANCES, MAX_DISTANCES = 1, 4


def validate_distances(distances: Sequence[float]) -> list[float]:
    """Return 1-4 finite, distinct distances as floats, else raise ``ValueError``.

    Parameters
    ----------
    distances : sequence of float
        Propagation distances, mm.

    Examples
    --------
    >>> validate_distances([10, 12.5])
    [10.0, 12.5]
    """
    arr = np.asarray(distances, dtype=float).ravel() if np.size(distances) else np.array([])
    if not MIN_DISTANCES <= arr.size <= MAX_DISTANCES:
        raise ValueError(
            f"Holotomography takes {MIN_DISTANCES} to {MAX_DISTANCES} propagation distances, "
            f"got {arr.size}. Phase retrieval usually uses 4 (e.g. [10, 11, 13, 16] mm)."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("Propagation distances must be finite numbers (mm).")
    if np.unique(arr).size != arr.size:
        raise ValueError(f"Propagation distances must be distinct, got {arr.tolist()}.")
    return [float(d) for d in arr]


def _check_propagation(
    propagation_distances_m: Sequence[float] | None, distance_list: Sequence[float]
) -> list[float] | None:
    """The effective propagation distances (m) as floats, one per ``holo_z`` distance."""
    if propagation_distances_m is not None and len(propagation_distances_m) != len(distance_list):
        raise ValueError("Give one propagation distance (m) per holo_z distance.")
    return [float(d) for d in propagation_distances_m] if propagation_distances_m else None


def _holo_start_md(d: TomoDevices, o: TomoOptions, distance_list: list[float],
                   propagation_m: list[float] | None, tomograms: list[dict[str, Any]],
                   energy_ev: float | None, plan_args: Mapping[str, Any],
                   devices_md: Mapping[str, Any],
                   md: Mapping[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    """The start document of `holotomo_scan`, given the energy read at its start."""
    return {
        "plan_name": "holotomo_scan",
        "plan_args": dict(plan_args),
        "mode": o.mode,
        "distances_mm": distance_list,
        "propagation_distances_m": propagation_m,
        "num_distances": len(distance_list),
        "angles_deg": o.angle_list,
        "num_angles": len(o.angles),
        "num_points": len(distance_list) * len(o.angles),  # the primary frames, as `runs` counts
        "tomograms": tomograms,
        "energy_ev": energy_ev,
        "energies_ev": [energy_ev] if energy_ev is not None else [],
        "n_dark": o.n_dark,
        "n_flat": o.n_flat,
        "flat_per_distance": True,
        "exposure_time": o.exposure,
        **devices_md,
        **series_fly_md(o.flies, o.deadtime, d.rotation, d.detector),
        **dict(md or {}),
    }


@plan
@parameter_annotation_decorator({"parameters": {"angles": QUEUE_ANGLES}})
def holotomo_scan(  # noqa: PLR0913 -- bluesky plan: keyword arguments are the queue server's parameter form
    detector: Triggerable,
    rotation: Movable,
    holo_z: Movable,
    sample_x: Movable,
    shutter: Movable,
    i0: Readable,
    angles: Sequence[float] | np.ndarray | AngleRange,
    distances: Sequence[float],
    *,
    sample_out: float,
    mode: Literal["step", "fly"] = "step",
    n_dark: int = 10,
    n_flat: int = 10,
    exposure_time: float | None = None,
    deadtime: float = 0.002,
    lead_time: float = 0.2,
    zigzag: bool = True,
    energy: Readable | None = None,
    propagation_distances_m: Sequence[float] | None = None,
    pixel_size_um: float | None = None,
    rotation_center_px: float | None = None,
    shutter_open: Any = "Open",
    shutter_closed: Any = "Closed",
    sample: Mapping[str, Any] | None = None,
    baseline: Sequence[Readable] = (),
    md: Mapping[str, Any] | None = None,
) -> PlanGen:
    """Take a tomogram at each propagation distance, with flats per distance.

    Darks once (stream ``dark``). Then, at each distance: move ``holo_z``, take
    ``n_flat`` flats with the sample out (stream ``flat``, each event with the
    ``holo_z`` readback) and a tomogram. Step mode reads the detector, rotation,
    ``holo_z`` and ``i0`` into ``primary`` (the ``holo_z`` field tells distances
    apart); fly mode collects tomogram ``k`` into ``primary_<k>`` with its rotation
    monitor ``rotation_monitor_<k>`` (see the start document's ``tomograms``).

    Parameters
    ----------
    detector : Triggerable
        Area detector, as in `tomo_scan`.
    rotation : Movable
        Rotation axis, deg.
    holo_z : Movable
        Focus-to-sample distance axis, mm.
    sample_x : Movable
        Axis that moves the sample out of the beam for flats.
    shutter : Movable
        Movable shutter (``shutter_open``/``shutter_closed`` positions).
    i0 : Readable
        Incident-flux monitor, read with every step frame.
    angles : list of float
        Explicit angles (deg), or from Python also ``(start, stop, num)`` or an array;
        must cover 180 deg.
    distances : list of float
        1-4 distinct ``holo_z`` positions, mm.
    sample_out : float
        ``sample_x`` position with the sample out of the beam.
    mode : {"step", "fly"}
        ``"step"`` or ``"fly"``, as in `tomo_scan`.
    n_dark : int
        Number of dark frames (>= 1).
    n_flat : int
        Number of flat frames per distance (>= 1).
    exposure_time : float or None
        Exposure, s; None keeps the detector's setting (step mode only).
    deadtime : float
        Fly mode: dead time between frames, s.
    lead_time : float
        Fly mode: run-up time of the rotation, s.
    zigzag : bool
        Reverse the angle order at every other distance.
    energy : Readable or None
        Optional energy axis, read into the start document.
    propagation_distances_m : list of float or None
        Effective propagation distances (m) of ``distances``, recorded in the start
        document (phase retrieval needs them).
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
        More devices read at the start and end.
    md : dict or None
        Extra start-document metadata.

    Raises
    ------
    ValueError
        When the plan is built, for 0 or more than 4 (or repeated) distances, bad
        angles, mode, exposure or counts; before anything moves, for distances,
        angles, run-up or ``sample_out`` outside the axes' limits.
    """
    validate_mode(mode)
    distance_list = validate_distances(distances)
    propagation_m = _check_propagation(propagation_distances_m, distance_list)
    o = tomo_options(angles, mode, exposure_time, n_dark, n_flat, deadtime, lead_time,
                     count=len(distance_list), zigzag=zigzag)  # fmt: skip
    d = TomoDevices(detector, rotation, sample_x, shutter, i0, sample_out, shutter_open,
                    shutter_closed)  # fmt: skip
    plan_args = {
        "detector": repr(detector), "rotation": repr(rotation), "holo_z": repr(holo_z),
        "sample_x": repr(sample_x), "shutter": repr(shutter), "i0": repr(i0),
        "angles": o.angle_list, "distances": distance_list, "sample_out": sample_out,
        "mode": mode, "n_dark": o.n_dark, "n_flat": o.n_flat, "exposure_time": exposure_time,
        "deadtime": deadtime, "lead_time": lead_time, "zigzag": zigzag,
    }  # fmt: skip
    tomograms = tomogram_list("holo_z", distance_list, o.orders, mode, o.flies)
    if propagation_m is not None:
        for tomogram, distance_m in zip(tomograms, propagation_m, strict=True):
            tomogram["propagation_distance_m"] = distance_m
    devices_md = device_md(detector, i0, [holo_z, rotation],
                           {"distance_key": data_key(holo_z), "rotation_key": data_key(rotation)},
                           pixel_size_um, rotation_center_px, sample)  # fmt: skip
    logger.info("holotomo_scan: %d distances x %d angles, %s mode", len(distance_list),
                len(o.angles), mode)  # fmt: skip

    def check_distances() -> PlanGen:
        z_limits = yield from read_limits(holo_z)
        check_within_limits(holo_z.name, distance_list, z_limits, "mm")

    def move_to(k: int) -> PlanGen:
        yield from bps.mv(holo_z, distance_list[k])

    return tomo_series_plan(
        lambda energy_ev: _holo_start_md(d, o, distance_list, propagation_m, tomograms,
                                         energy_ev, plan_args, devices_md, md),
        d, o, tomograms=tomograms, move_to=move_to, extra=[holo_z], energy=energy,
        pre_check=check_distances,
        baseline=[holo_z, rotation, sample_x, *([energy] if energy is not None else []),
                  *baseline],
    )  # fmt: skip
