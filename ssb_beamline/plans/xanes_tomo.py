"""XANES tomography: a tomogram at each energy of an absorption-edge grid."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np
from bluesky.protocols import Movable, Readable, Triggerable

from .energy_grids import validate_energies
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
from .xanes import FocusModel

logger = logging.getLogger(__name__)


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


def xanes_tomo_scan(
    detector: Triggerable,
    energy: Movable,
    zone_plate_z: Movable,
    detector_z: Movable,
    rotation: Movable,
    sample_x: Movable,
    shutter: Movable,
    i0: Readable,
    energies: Sequence[float],
    angles: Sequence[float] | np.ndarray | AngleRange,
    *,
    sample_out: float,
    focus: FocusModel | None,
    mode: Literal["step", "fly"] = "step",
    n_dark: int = 10,
    n_flat: int = 10,
    exposure_time: float | None = None,
    deadtime: float = 0.002,
    lead_time: float = 0.2,
    zigzag: bool = True,
    pixel_size_um: float | None = None,
    rotation_center_px: float | None = None,
    shutter_open: Any = "Open",
    shutter_closed: Any = "Closed",
    element: str = "Ni",
    edge: str = "K",
    sample: Mapping[str, Any] | None = None,
    baseline: Sequence[Readable] = (),
    md: Mapping[str, Any] | None = None,
) -> PlanGen:
    """Take a tomogram at each energy, with focus tracking and flats per energy.

    Darks once (stream ``dark``, shutter closed). Then, at each energy: move the
    monochromator, zone plate and detector together (``focus``, as `xanes_scan`
    does), take ``n_flat`` flats with the sample out (stream ``flat``, each event
    with the energy) and a tomogram. Step mode reads the detector, rotation,
    energy and ``i0`` into ``primary`` (one stream; the ``energy`` field tells the
    tomograms apart). Fly mode collects tomogram ``k`` into ``primary_<k>`` with
    its rotation monitor ``rotation_monitor_<k>``; the start document's
    ``tomograms`` list gives each one's energy and streams. With ``zigzag`` the
    rotation runs backwards at every other energy (no return trip).

    Parameters
    ----------
    detector, energy, zone_plate_z, detector_z, rotation, sample_x, shutter, i0
        As in `xanes_scan` and `tomo_scan`.
    energies : strictly increasing energies, eV (e.g. ``ni_k_edge_grid("quick")``)
    angles : explicit angles (deg) or ``(start, stop, num)``; must cover 180 deg
    sample_out : ``sample_x`` position with the sample out of the beam
    focus : energy -> (zone-plate z, detector z); None leaves the focus alone
    mode, n_dark, n_flat, exposure_time, deadtime, lead_time : as in `tomo_scan`
    zigzag : reverse the angle order at every other energy
    pixel_size_um, rotation_center_px, element, edge, sample : start-document metadata
    baseline : more devices read at the start and end
    md : extra start-document metadata

    Raises
    ------
    ValueError
        When the plan is built for bad energies, angles, mode, exposure or counts;
        before anything moves, for energies, focus positions, angles, run-up or
        ``sample_out`` outside the axes' limits.
    """
    if mode not in ("step", "fly"):
        raise ValueError(f"mode must be 'step' or 'fly', not {mode!r}.")
    energy_list = [float(e) for e in validate_energies(energies)]
    angle_arr = validate_angles(angles, evenly_spaced=mode == "fly")
    exposure = validate_exposure(exposure_time, required=mode == "fly")
    n_dark = validate_count("n_dark", n_dark)
    n_flat = validate_count("n_flat", n_flat)
    orders = [angle_arr[::-1] if zigzag and k % 2 else angle_arr for k in range(len(energy_list))]
    flies = []
    if mode == "fly" and exposure is not None:
        validate_fly_timing(deadtime, lead_time)
        flies = [fly_geometry(a, exposure, deadtime, lead_time) for a in orders]
    focus_positions = [focus(e) for e in energy_list] if focus is not None else None
    angle_list = [float(a) for a in angle_arr]
    plan_args = {
        "detector": repr(detector), "energy": repr(energy), "zone_plate_z": repr(zone_plate_z),
        "detector_z": repr(detector_z), "rotation": repr(rotation), "sample_x": repr(sample_x),
        "shutter": repr(shutter), "i0": repr(i0), "energies": energy_list, "angles": angle_list,
        "sample_out": sample_out, "focus": repr(focus), "mode": mode, "n_dark": n_dark,
        "n_flat": n_flat, "exposure_time": exposure_time, "deadtime": deadtime,
        "lead_time": lead_time, "zigzag": zigzag,
    }  # fmt: skip
    energy_key, rotation_key = data_key(energy), data_key(rotation)
    tomograms = []
    for k, (e, order) in enumerate(zip(energy_list, orders, strict=True)):
        stream, monitor = segment_streams(mode, k)
        tomograms.append({"energy_ev": e, "angles_deg": [float(a) for a in order],
                          "stream": stream, "monitor_stream": monitor})  # fmt: skip
        if flies:
            tomograms[-1]["rotation_travel_deg"] = [flies[k].pre, flies[k].post]
    start_md: dict[str, Any] = {
        "plan_name": "xanes_tomo_scan",
        "plan_args": plan_args,
        "mode": mode,
        "element": element,
        "edge": edge,
        "energies_ev": energy_list,
        "angles_deg": angle_list,
        "num_energies": len(energy_list),
        "num_angles": len(angle_list),
        "tomograms": tomograms,
        "n_dark": n_dark,
        "n_flat": n_flat,
        "flat_per_energy": True,
        "exposure_time": exposure,
        "focus_tracking": focus is not None,
        "pixel_size_um": pixel_size_um,
        "rotation_center_guess_px": rotation_center_px,
        "sample": dict(sample or {}),
        "detectors": [detector.name],
        "motors": [energy.name, rotation.name],
        "detector_key": data_key(detector),
        "energy_key": energy_key,
        "rotation_key": rotation_key,
        "i0_key": data_key(i0),
        "hints": {"dimensions": [([energy_key], "primary"), ([rotation_key], "primary")]},
    }
    if flies:
        start_md.update(rotation_velocity_deg_s=flies[0].velocity, deadtime=deadtime,
                        monitor_key=readback_of(rotation).name,
                        timestamp_key=data_key(detector) + "-timestamp")  # fmt: skip
    start_md.update(md or {})
    logger.info("xanes_tomo_scan: %d energies x %d angles, %s mode", len(energy_list),
                len(angle_list), mode)  # fmt: skip

    def checked_scan() -> PlanGen:
        check_within_limits(energy.name, energy_list, (yield from read_limits(energy)), "eV")
        if focus_positions is not None:
            zp_limits = yield from read_limits(zone_plate_z)
            check_within_limits(zone_plate_z.name, [p[0] for p in focus_positions], zp_limits, "mm")
            det_limits = yield from read_limits(detector_z)
            check_within_limits(detector_z.name, [p[1] for p in focus_positions], det_limits, "mm")
        rot_limits = yield from read_limits(rotation)
        check_within_limits(rotation.name, angle_list, rot_limits, "deg")
        for fly in flies:
            yield from check_fly_axis(rotation, fly, rot_limits)
        old_velocity = (yield from bps.rd(rotation.velocity)) if flies else None
        check_within_limits(sample_x.name, [sample_out], (yield from read_limits(sample_x)), "")
        sample_in = yield from bps.rd(sample_x)
        if exposure is not None:
            yield from set_exposure(detector, exposure)
        stager = StreamStager(detector)

        def move_to(index: int) -> PlanGen:
            moves: list[Any] = [energy, energy_list[index]]
            if focus_positions is not None:
                zp, det = focus_positions[index]
                moves += [zone_plate_z, zp, detector_z, det]
            yield from bps.mv(*moves)

        def scan() -> PlanGen:
            yield from bps.open_run(md=start_md)
            yield from darks(stager, [detector, i0], shutter, n_dark, shutter_closed, shutter_open)
            for k, tomogram in enumerate(tomograms):
                yield from bps.checkpoint()
                yield from move_to(k)
                yield from flats(stager, [detector, i0, energy], sample_x, sample_out, sample_in,
                                 n_flat)  # fmt: skip
                yield from bps.checkpoint()
                if mode == "step":
                    yield from step_rotation(stager, [detector, rotation, energy, i0], rotation,
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

        devices = [energy, zone_plate_z, detector_z, rotation, sample_x, *baseline]
        return (yield from bpp.finalize_wrapper(bpp.baseline_wrapper(scan(), devices), restore()))

    return checked_scan()
