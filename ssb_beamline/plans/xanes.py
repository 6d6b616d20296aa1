"""Full-field XANES energy scan on a transmission X-ray microscope."""

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.protocols import Movable, Readable, Triggerable
from bluesky.utils import plan
from bluesky_queueserver import parameter_annotation_decorator

from .energy_grids import validate_energies
from .focus_models import QUEUE_FOCUS_ANNOTATION, FocusModel, resolve_focus
from .stubs import (
    PlanGen,
    StreamStager,
    check_energy_focus,
    check_sample_out,
    data_key,
    move_energy,
    set_exposure,
)

__all__ = ["FocusModel", "xanes_scan"]


@plan
@parameter_annotation_decorator(QUEUE_FOCUS_ANNOTATION)
def xanes_scan(  # noqa: C901, PLR0913, PLR0915 -- bluesky plan: keyword arguments are the queue server's parameter form
    detector: Triggerable,
    energy: Movable,
    zone_plate_z: Movable,
    detector_z: Movable,
    sample_x: Movable,
    shutter: Movable,
    i0: Readable,
    energies: Sequence[float],
    *,
    sample_out: float,
    focus: str | FocusModel | None,
    exposure_time: float | None = None,
    n_dark: int = 10,
    flat_every: int = 1,
    flat_mode: Literal["pass", "interleaved"] = "pass",
    shutter_open: Any = "Open",
    shutter_closed: Any = "Closed",
    element: str = "Ni",
    edge: str = "K",
    sample: Mapping[str, Any] | None = None,
    optics: Mapping[str, Any] | None = None,
    baseline: Sequence[Readable] = (),
    md: Mapping[str, Any] | None = None,
) -> PlanGen:
    """Take a full-field XANES stack: darks, flats and an image at each energy.

    The scan closes the shutter for ``n_dark`` frames (stream ``dark``). At each
    energy it moves the monochromator, zone plate and detector together (focus
    tracking) and takes a flat with the sample moved out of the beam (stream
    ``flat``, every ``flat_every`` energies) and an image of the sample (stream
    ``primary``). With ``flat_mode="pass"`` (default) the flats are taken in a
    first pass over the energies and the images in a second, as FXI does: the
    sample moves twice instead of twice per energy, and each stream is one
    detector file. With ``flat_mode="interleaved"`` the flat is taken just before
    each image (one file per frame: slower, but flat and image are seconds apart).
    Either way every image has its flat before it arrives, so it can be corrected
    live. The detector, ``i0`` and the energy readback are read in every event
    (``i0`` corrects the flux drift between flat and image); the optics and
    ``baseline`` devices go to the ``baseline`` stream.

    Parameters
    ----------
    detector : Triggerable
        Area detector (``Triggerable``, ``Readable``, ``Stageable``).
    energy : Movable
        Monochromator energy axis, eV.
    zone_plate_z : Movable
        Zone-plate focus axis, mm.
    detector_z : Movable
        Detector distance axis, mm.
    sample_x : Movable
        Sample axis used to move the sample out of the beam for flats.
    shutter : Movable
        Movable shutter; ``shutter_open``/``shutter_closed`` are its positions.
    i0 : Readable
        Incident-flux monitor, read with every frame.
    energies : list of float
        Strictly increasing energies, eV.
    sample_out : float
        ``sample_x`` position with the sample out of the beam.
    focus : str, callable or None
        Focus model: the name of a registered model (e.g. ``"sim"``, see
        `ssb_beamline.plans.focus_models`) or, from Python, a callable energy ->
        (zone-plate z, detector z). None leaves the focus where it is (only for
        tests of what tracking is worth: frames blur off the focus energy).
    exposure_time : float or None
        Exposure, s; None keeps the detector's current setting.
    n_dark : int
        Number of dark frames (>= 1).
    flat_every : int
        Take flats at every k-th energy (1 = every energy).
    flat_mode : {"pass", "interleaved"}
        ``"pass"`` (flats in a first pass) or ``"interleaved"``.
    shutter_open : object
        Position of ``shutter`` that lets the beam through.
    shutter_closed : object
        Position of ``shutter`` that stops the beam (for darks).
    element : str
        Absorbing element, recorded in the start document.
    edge : str
        Absorption edge, recorded in the start document.
    sample : dict or None
        Description of the sample (name, formulation, ...) for the start document.
    optics : dict or None
        Magnification, pixel size (``pixel_size_um``) and other optics metadata.
    baseline : list of Readable
        More devices to read at the start and end of the run.
    md : dict or None
        Extra start-document metadata.

    Raises
    ------
    ValueError
        When the plan is built, for an empty, non-increasing or duplicated energy
        list, ``exposure_time <= 0``, ``n_dark < 1``, ``flat_every < 1`` or an unknown
        focus-model name (the message lists the known ones); and, before anything
        moves, for any energy or focus position outside an axis's limits.

    Examples
    --------
    >>> from ssb_beamline.plans.energy_grids import ni_k_edge_grid
    >>> RE(xanes_scan(det, energy, zp_z, det_z, stage.x, shutter, i0,  # doctest: +SKIP
    ...               ni_k_edge_grid("standard"), sample_out=3000, focus="sim"))
    """
    grid = validate_energies(energies)
    if exposure_time is not None and not (math.isfinite(exposure_time) and exposure_time > 0):
        raise ValueError(
            f"exposure_time must be a positive number of seconds, got {exposure_time!r}. "
            "Typical TXM exposures are 0.02-2 s."
        )
    if int(n_dark) < 1:
        raise ValueError(f"n_dark must be >= 1 (got {n_dark}): the absorbance needs a dark frame.")
    if int(flat_every) < 1:
        raise ValueError(
            f"flat_every must be >= 1 (got {flat_every}); 1 takes a flat at every energy."
        )
    if flat_mode not in ("pass", "interleaved"):
        raise ValueError(f"flat_mode must be 'pass' or 'interleaved', not {flat_mode!r}.")
    energy_list = [float(e) for e in grid]
    focus_model = resolve_focus(focus)
    focus_positions = [focus_model(e) for e in energy_list] if focus_model is not None else None

    plan_args = {
        "detector": repr(detector),
        "energy": repr(energy),
        "zone_plate_z": repr(zone_plate_z),
        "detector_z": repr(detector_z),
        "sample_x": repr(sample_x),
        "shutter": repr(shutter),
        "i0": repr(i0),
        "energies": energy_list,
        "sample_out": sample_out,
        "focus": focus if isinstance(focus, str) else repr(focus),
        "exposure_time": exposure_time,
        "n_dark": int(n_dark),
        "flat_every": int(flat_every),
        "flat_mode": flat_mode,
    }
    energy_key = data_key(energy)
    start_md: dict[str, Any] = {
        "plan_name": "xanes_scan",
        "plan_args": plan_args,
        "element": element,
        "edge": edge,
        "energies_ev": energy_list,
        "num_points": len(energy_list),
        "num_intervals": len(energy_list) - 1,
        "n_dark": int(n_dark),
        "flat_every": int(flat_every),
        "flat_mode": flat_mode,
        "focus_tracking": focus is not None,
        "sample": dict(sample or {}),
        **dict(optics or {}),
        "detectors": [detector.name],
        "motors": [energy.name],
        "detector_key": data_key(detector),
        "energy_key": energy_key,
        "i0_key": data_key(i0),
        "hints": {"dimensions": [([energy_key], "primary")]},
        **dict(md or {}),
    }

    def checked_scan() -> PlanGen:
        # Limits are read inside the plan, so building the plan touches no hardware.
        yield from check_energy_focus(energy, energy_list, zone_plate_z, detector_z,
                                      focus_positions)  # fmt: skip
        sample_in = yield from check_sample_out(sample_x, sample_out)
        if exposure_time is not None:
            yield from set_exposure(detector, exposure_time)
        stager = StreamStager(detector)

        def move_to(index: int) -> PlanGen:
            yield from move_energy(energy, zone_plate_z, detector_z, energy_list, focus_positions,
                                   index)  # fmt: skip

        def flat() -> PlanGen:
            yield from bps.mv(sample_x, sample_out)
            yield from stager.read([detector, i0, energy], "flat")
            yield from bps.mv(sample_x, sample_in)

        def image() -> PlanGen:
            yield from stager.read([detector, i0, energy, zone_plate_z, detector_z], "primary")

        flat_indices = range(0, len(energy_list), int(flat_every))

        def scan() -> PlanGen:
            yield from bps.open_run(md=start_md)
            yield from bps.mv(shutter, shutter_closed)
            for _ in range(int(n_dark)):
                yield from stager.read([detector, i0], "dark")
            yield from bps.mv(shutter, shutter_open)
            if flat_mode == "pass":
                yield from bps.mv(sample_x, sample_out)
                for index in flat_indices:
                    yield from bps.checkpoint()
                    yield from move_to(index)
                    yield from stager.read([detector, i0, energy], "flat")
                yield from bps.mv(sample_x, sample_in)
            for index in range(len(energy_list)):
                # a pause resumes from here: the point is measured again, or not at all
                yield from bps.checkpoint()
                yield from move_to(index)
                if flat_mode == "interleaved" and index in flat_indices:
                    yield from flat()
                yield from image()
            yield from stager.close()
            return (yield from bps.close_run())

        def restore() -> PlanGen:
            yield from stager.close()
            yield from bps.mv(sample_x, sample_in, shutter, shutter_open)

        optics_devices = [energy, zone_plate_z, detector_z, sample_x, *baseline]
        return (
            yield from bpp.finalize_wrapper(bpp.baseline_wrapper(scan(), optics_devices), restore())
        )

    return checked_scan()
