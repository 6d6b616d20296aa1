"""Holotomography: tomograms at 1-4 propagation distances (focus-to-sample ``holo_z``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np
from bluesky.protocols import Movable, Readable, Triggerable

from .stubs import PlanGen, StreamStager, check_within_limits, data_key, read_limits, set_exposure
from .tomo import (
    AngleRange,
    check_fly_axis,
    darks,
    flats,
    fly_geometry,
    fly_rotation,
    readback_of,
    step_rotation,
    validate_angles,
    validate_count,
    validate_exposure,
    validate_fly_timing,
)
from .xanes_tomo import segment_streams

logger = logging.getLogger(__name__)

#: Number of propagation distances a holotomography scan accepts.
MIN_DISTANCES, MAX_DISTANCES = 1, 4


def validate_distances(distances: Sequence[float]) -> list[float]:
    """Return 1-4 finite, distinct distances as floats, else raise ``ValueError``.

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


def holotomo_scan(
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
    detector, rotation, sample_x, shutter, i0 : as in `tomo_scan`
    holo_z : focus-to-sample distance axis, mm
    angles : explicit angles (deg) or ``(start, stop, num)``; must cover 180 deg
    distances : 1-4 distinct ``holo_z`` positions, mm
    sample_out : ``sample_x`` position with the sample out of the beam
    mode, n_dark, n_flat, exposure_time, deadtime, lead_time : as in `tomo_scan`
    zigzag : reverse the angle order at every other distance
    energy : optional energy axis, read into the start document
    propagation_distances_m : effective propagation distances (m) of ``distances``,
        recorded in the start document (phase retrieval needs them)
    pixel_size_um, rotation_center_px, sample : start-document metadata
    baseline : more devices read at the start and end
    md : extra start-document metadata

    Raises
    ------
    ValueError
        When the plan is built, for 0 or more than 4 (or repeated) distances, bad
        angles, mode, exposure or counts; before anything moves, for distances,
        angles, run-up or ``sample_out`` outside the axes' limits.
    """
    if mode not in ("step", "fly"):
        raise ValueError(f"mode must be 'step' or 'fly', not {mode!r}.")
    distance_list = validate_distances(distances)
    if propagation_distances_m is not None and len(propagation_distances_m) != len(distance_list):
        raise ValueError("Give one propagation distance (m) per holo_z distance.")
    angle_arr = validate_angles(angles, evenly_spaced=mode == "fly")
    exposure = validate_exposure(exposure_time, required=mode == "fly")
    n_dark = validate_count("n_dark", n_dark)
    n_flat = validate_count("n_flat", n_flat)
    orders = [angle_arr[::-1] if zigzag and k % 2 else angle_arr for k in range(len(distance_list))]
    flies = []
    if mode == "fly" and exposure is not None:
        validate_fly_timing(deadtime, lead_time)
        flies = [fly_geometry(a, exposure, deadtime, lead_time) for a in orders]
    angle_list = [float(a) for a in angle_arr]
    plan_args = {
        "detector": repr(detector), "rotation": repr(rotation), "holo_z": repr(holo_z),
        "sample_x": repr(sample_x), "shutter": repr(shutter), "i0": repr(i0),
        "angles": angle_list, "distances": distance_list, "sample_out": sample_out,
        "mode": mode, "n_dark": n_dark, "n_flat": n_flat, "exposure_time": exposure_time,
        "deadtime": deadtime, "lead_time": lead_time, "zigzag": zigzag,
    }  # fmt: skip
    distance_key, rotation_key = data_key(holo_z), data_key(rotation)
    tomograms = []
    for k, (z, order) in enumerate(zip(distance_list, orders, strict=True)):
        stream, monitor = segment_streams(mode, k)
        tomograms.append({"holo_z": z, "angles_deg": [float(a) for a in order],
                          "stream": stream, "monitor_stream": monitor})  # fmt: skip
        if flies:
            tomograms[-1]["rotation_travel_deg"] = [flies[k].pre, flies[k].post]
        if propagation_distances_m is not None:
            tomograms[-1]["propagation_distance_m"] = float(propagation_distances_m[k])
    logger.info("holotomo_scan: %d distances x %d angles, %s mode", len(distance_list),
                len(angle_list), mode)  # fmt: skip

    def checked_scan() -> PlanGen:
        z_limits = yield from read_limits(holo_z)
        check_within_limits(holo_z.name, distance_list, z_limits, "mm")
        rot_limits = yield from read_limits(rotation)
        check_within_limits(rotation.name, angle_list, rot_limits, "deg")
        for fly in flies:
            yield from check_fly_axis(rotation, fly, rot_limits)
        old_velocity = (yield from bps.rd(rotation.velocity)) if flies else None
        check_within_limits(sample_x.name, [sample_out], (yield from read_limits(sample_x)), "")
        sample_in = yield from bps.rd(sample_x)
        energy_ev = (yield from bps.rd(energy)) if energy is not None else None
        if exposure is not None:
            yield from set_exposure(detector, exposure)
        stager = StreamStager(detector)
        start_md: dict[str, Any] = {
            "plan_name": "holotomo_scan",
            "plan_args": plan_args,
            "mode": mode,
            "distances_mm": distance_list,
            "propagation_distances_m": (
                [float(d) for d in propagation_distances_m] if propagation_distances_m else None
            ),
            "num_distances": len(distance_list),
            "angles_deg": angle_list,
            "num_angles": len(angle_list),
            "tomograms": tomograms,
            "energy_ev": energy_ev,
            "energies_ev": [energy_ev] if energy_ev is not None else [],
            "n_dark": n_dark,
            "n_flat": n_flat,
            "flat_per_distance": True,
            "exposure_time": exposure,
            "pixel_size_um": pixel_size_um,
            "rotation_center_guess_px": rotation_center_px,
            "sample": dict(sample or {}),
            "detectors": [detector.name],
            "motors": [holo_z.name, rotation.name],
            "detector_key": data_key(detector),
            "distance_key": distance_key,
            "rotation_key": rotation_key,
            "i0_key": data_key(i0),
            "hints": {"dimensions": [([distance_key], "primary"), ([rotation_key], "primary")]},
        }
        if flies:
            start_md.update(rotation_velocity_deg_s=flies[0].velocity, deadtime=deadtime,
                            monitor_key=readback_of(rotation).name,
                            timestamp_key=data_key(detector) + "-timestamp")  # fmt: skip
        start_md.update(md or {})

        def scan() -> PlanGen:
            yield from bps.open_run(md=start_md)
            yield from darks(stager, [detector, i0], shutter, n_dark, shutter_closed, shutter_open)
            for k, tomogram in enumerate(tomograms):
                yield from bps.checkpoint()
                yield from bps.mv(holo_z, distance_list[k])
                yield from flats(stager, [detector, i0, holo_z], sample_x, sample_out, sample_in,
                                 n_flat)  # fmt: skip
                yield from bps.checkpoint()
                if mode == "step":
                    yield from step_rotation(stager, [detector, rotation, holo_z, i0], rotation,
                                             tomogram["angles_deg"])  # fmt: skip
                else:
                    yield from stager.close()
                    yield from fly_rotation(detector, rotation, flies[k], len(angle_list),
                                            exposure, deadtime, tomogram["stream"],
                                            tomogram["monitor_stream"])  # fmt: skip
            yield from stager.close()
            return (yield from bps.close_run())

        def restore() -> PlanGen:
            yield from stager.close()
            yield from bps.mv(sample_x, sample_in, shutter, shutter_open)
            if old_velocity is not None:
                yield from bps.mv(rotation.velocity, old_velocity)

        devices = [holo_z, rotation, sample_x, *([energy] if energy is not None else []),
                   *baseline]  # fmt: skip
        return (yield from bpp.finalize_wrapper(bpp.baseline_wrapper(scan(), devices), restore()))

    return checked_scan()
