"""XANES tomography: a tomogram at each energy of an absorption-edge grid."""

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from bluesky.protocols import Movable, Readable, Triggerable
from bluesky_queueserver import parameter_annotation_decorator

from ._tomo_common import device_md, series_fly_md, tomogram_list
from ._tomo_series import TomoDevices, tomo_options, tomo_series_plan
from .angles import QUEUE_ANGLES, AngleRange
from .built import plan
from .energy_grids import validate_energies
from .focus_models import QUEUE_FOCUS_ANNOTATION, FocusModel, focus_positions_of
from .stubs import PlanGen, check_energy_focus, data_key, move_energy
from .validation import validate_mode

__all__ = ["xanes_tomo_scan"]

logger = logging.getLogger(__name__)


@plan
@parameter_annotation_decorator(
    {"parameters": {**QUEUE_FOCUS_ANNOTATION["parameters"], "angles": QUEUE_ANGLES}}
)
def xanes_tomo_scan(  # noqa: PLR0913 -- bluesky plan: keyword arguments are the queue server's parameter form
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
    focus: str | FocusModel | None,
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
    detector : Triggerable
        Area detector, as in `xanes_scan` and `tomo_scan`.
    energy : Movable
        Monochromator energy axis, eV.
    zone_plate_z : Movable
        Zone-plate focus axis, mm.
    detector_z : Movable
        Detector distance axis, mm.
    rotation : Movable
        Rotation axis, deg.
    sample_x : Movable
        Axis that moves the sample out of the beam for flats.
    shutter : Movable
        Movable shutter (``shutter_open``/``shutter_closed`` positions).
    i0 : Readable
        Incident-flux monitor, read with every step frame.
    energies : list of float
        Strictly increasing energies, eV (e.g. ``ni_k_edge_grid("quick")``).
    angles : list of float
        Explicit angles (deg), or from Python also ``(start, stop, num)`` or an array;
        must cover 180 deg.
    sample_out : float
        ``sample_x`` position with the sample out of the beam.
    focus : str, callable or None
        Focus model: a registered name (e.g. ``"sim"``) or, from Python, a callable
        energy -> (zone-plate z, detector z); None leaves the focus alone.
    mode : {"step", "fly"}
        ``"step"`` or ``"fly"``, as in `tomo_scan`.
    n_dark : int
        Number of dark frames (>= 1).
    n_flat : int
        Number of flat frames per energy (>= 1).
    exposure_time : float or None
        Exposure, s; None keeps the detector's setting (step mode only).
    deadtime : float
        Fly mode: dead time between frames, s.
    lead_time : float
        Fly mode: run-up time of the rotation, s.
    zigzag : bool
        Reverse the angle order at every other energy.
    pixel_size_um : float or None
        Pixel size at the sample, um, recorded in the start document.
    rotation_center_px : float or None
        Rotation centre, px, recorded in the start document.
    shutter_open : object
        Position of ``shutter`` that lets the beam through.
    shutter_closed : object
        Position of ``shutter`` that stops the beam (for darks).
    element : str
        Absorbing element, recorded in the start document.
    edge : str
        Absorption edge, recorded in the start document.
    sample : dict or None
        Description of the sample for the start document.
    baseline : list of Readable
        More devices read at the start and end.
    md : dict or None
        Extra start-document metadata.

    Raises
    ------
    ValueError
        When the plan is built for bad energies, angles, mode, exposure or counts;
        before anything moves, for energies, focus positions, angles, run-up or
        ``sample_out`` outside the axes' limits.
    """
    validate_mode(mode)
    energy_list = [float(e) for e in validate_energies(energies)]
    o = tomo_options(angles, mode, exposure_time, n_dark, n_flat, deadtime, lead_time,
                     count=len(energy_list), zigzag=zigzag)  # fmt: skip
    focus_positions = focus_positions_of(focus, energy_list)
    d = TomoDevices(detector, rotation, sample_x, shutter, i0, sample_out, shutter_open,
                    shutter_closed)  # fmt: skip
    plan_args = {
        "detector": repr(detector), "energy": repr(energy), "zone_plate_z": repr(zone_plate_z),
        "detector_z": repr(detector_z), "rotation": repr(rotation), "sample_x": repr(sample_x),
        "shutter": repr(shutter), "i0": repr(i0), "energies": energy_list,
        "angles": o.angle_list, "sample_out": sample_out,
        "focus": focus if isinstance(focus, str) else repr(focus), "mode": mode,
        "n_dark": o.n_dark, "n_flat": o.n_flat, "exposure_time": exposure_time,
        "deadtime": deadtime, "lead_time": lead_time, "zigzag": zigzag,
    }  # fmt: skip
    tomograms = tomogram_list("energy_ev", energy_list, o.orders, mode, o.flies)
    start_md: dict[str, Any] = {
        "plan_name": "xanes_tomo_scan", "plan_args": plan_args, "mode": mode,
        "element": element, "edge": edge, "energies_ev": energy_list,
        "angles_deg": o.angle_list, "num_energies": len(energy_list),
        "num_angles": len(o.angles), "num_points": len(energy_list) * len(o.angles),
        "tomograms": tomograms, "n_dark": o.n_dark,
        "n_flat": o.n_flat, "flat_per_energy": True, "exposure_time": o.exposure,
        "focus_tracking": focus is not None,
        **device_md(detector, i0, [energy, rotation],
                    {"energy_key": data_key(energy), "rotation_key": data_key(rotation)},
                    pixel_size_um, rotation_center_px, sample),
        **series_fly_md(o.flies, deadtime, rotation, detector),
        **dict(md or {}),
    }  # fmt: skip
    logger.info("xanes_tomo_scan: %d energies x %d angles, %s mode", len(energy_list),
                len(o.angles), mode)  # fmt: skip

    def check_energies() -> PlanGen:
        yield from check_energy_focus(energy, energy_list, zone_plate_z, detector_z,
                                      focus_positions)  # fmt: skip

    def move_to(index: int) -> PlanGen:
        yield from move_energy(energy, zone_plate_z, detector_z, energy_list, focus_positions,
                               index)  # fmt: skip

    return tomo_series_plan(
        lambda _: start_md, d, o, tomograms=tomograms, move_to=move_to, extra=[energy],
        pre_check=check_energies,
        baseline=[energy, zone_plate_z, detector_z, rotation, sample_x, *baseline],
    )  # fmt: skip
