"""Full-field XANES energy scan on a transmission X-ray microscope.

`xanes_scan` checks its arguments when it is built (`validate_xanes_args`, a pure
function), writes its start document with ``_xanes_start_md`` and runs plan stubs:
the limit checks, darks, a pass of flats, and one image per energy.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.protocols import Movable, Readable, Triggerable
from bluesky_queueserver import parameter_annotation_decorator

from .built import plan
from .energy_grids import validate_energies
from .focus_models import QUEUE_FOCUS_ANNOTATION, FocusModel, focus_positions_of
from .stubs import (
    PlanGen,
    StreamStager,
    check_energy_focus,
    check_sample_out,
    data_key,
    move_energy,
    set_exposure,
)
from .validation import validate_exposure, validate_mode

__all__ = ["FocusModel", "XanesOptions", "validate_xanes_args", "xanes_scan"]


@dataclass(frozen=True)
class _XanesDevices:
    """The devices a XANES scan drives (see `xanes_scan` for each)."""

    detector: Any
    energy: Any
    zone_plate_z: Any
    detector_z: Any
    sample_x: Any
    shutter: Any
    i0: Any


@dataclass(frozen=True)
class XanesOptions:
    """Validated options of `xanes_scan` (made by `validate_xanes_args`).

    Attributes
    ----------
    energies : list of float
        Strictly increasing energies, eV.
    focus_positions : list of (float, float) or None
        (zone-plate z, detector z) of each energy, mm; None without focus tracking.
    focus_label : str
        The ``focus`` argument as recorded in ``plan_args`` (its name or repr).
    exposure_time : float or None
        Exposure, s, as given; None keeps the detector's setting.
    n_dark : int
        Number of dark frames.
    flat_every : int
        A flat at every ``flat_every``-th energy.
    flat_mode : str
        ``"pass"`` or ``"interleaved"``.
    sample_out : float
        ``sample_x`` position with the sample out of the beam.
    shutter_open, shutter_closed : object
        Positions of the shutter.
    """

    energies: list[float]
    focus_positions: list[tuple[float, float]] | None
    focus_label: str
    exposure_time: float | None
    n_dark: int
    flat_every: int
    flat_mode: str
    sample_out: float
    shutter_open: Any = "Open"
    shutter_closed: Any = "Closed"

    @property
    def flat_indices(self) -> range:
        """Indices of the energies that get a flat."""
        return range(0, len(self.energies), self.flat_every)


def validate_xanes_args(energies: Sequence[float], focus: "str | FocusModel | None",
                        exposure_time: float | None, n_dark: int, flat_every: int,
                        flat_mode: str, sample_out: float, shutter_open: Any = "Open",
                        shutter_closed: Any = "Closed") -> XanesOptions:  # fmt: skip
    """Check the arguments of `xanes_scan` (no hardware touched); raise ``ValueError``.

    Parameters
    ----------
    energies : sequence of float
        Strictly increasing energies, eV.
    focus : str, callable or None
        Focus model, its registered name, or None.
    exposure_time : float or None
        Exposure, s (> 0), or None.
    n_dark : int
        Number of dark frames (>= 1).
    flat_every : int
        Take flats at every k-th energy (>= 1).
    flat_mode : str
        ``"pass"`` or ``"interleaved"``.
    sample_out : float
        ``sample_x`` position with the sample out of the beam.
    shutter_open, shutter_closed : object
        Positions of the shutter.

    Returns
    -------
    XanesOptions

    Examples
    --------
    >>> o = validate_xanes_args([8300, 8350, 8400], None, 0.1, 2, 2, "pass", 3000.0)
    >>> o.energies, list(o.flat_indices)
    ([8300.0, 8350.0, 8400.0], [0, 2])
    """
    grid = validate_energies(energies)
    validate_exposure(exposure_time, hint=" Typical TXM exposures are 0.02-2 s.")
    if int(n_dark) < 1:
        raise ValueError(f"n_dark must be >= 1 (got {n_dark}): the absorbance needs a dark frame.")
    if int(flat_every) < 1:
        raise ValueError(
            f"flat_every must be >= 1 (got {flat_every}); 1 takes a flat at every energy."
        )
    validate_mode(flat_mode, ("pass", "interleaved"), name="flat_mode")
    energy_list = [float(e) for e in grid]
    return XanesOptions(
        energy_list, focus_positions_of(focus, energy_list),
        focus if isinstance(focus, str) else repr(focus), exposure_time, int(n_dark),
        int(flat_every), flat_mode, sample_out, shutter_open, shutter_closed,
    )  # fmt: skip


def _xanes_start_md(d: _XanesDevices, o: XanesOptions, *, element: str, edge: str,
                   sample: Mapping[str, Any] | None, optics: Mapping[str, Any] | None,
                   md: Mapping[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    """The start document of `xanes_scan`.

    Parameters
    ----------
    d : _XanesDevices
        The scan's devices.
    o : XanesOptions
        The validated options.
    element, edge : str
        Absorbing element and edge.
    sample, optics, md : dict or None
        Sample description, optics metadata (merged at the top level) and extra
        metadata (overrides the rest).
    """
    plan_args = {
        **{name: repr(device) for name, device in vars(d).items()},
        "energies": o.energies, "sample_out": o.sample_out, "focus": o.focus_label,
        "exposure_time": o.exposure_time, "n_dark": o.n_dark, "flat_every": o.flat_every,
        "flat_mode": o.flat_mode,
    }  # fmt: skip
    energy_key = data_key(d.energy)
    return {
        "plan_name": "xanes_scan", "plan_args": plan_args, "element": element, "edge": edge,
        "energies_ev": o.energies, "num_points": len(o.energies),
        "num_intervals": len(o.energies) - 1, "n_dark": o.n_dark, "flat_every": o.flat_every,
        "flat_mode": o.flat_mode, "focus_tracking": o.focus_positions is not None,
        "sample": dict(sample or {}), **dict(optics or {}),
        "detectors": [d.detector.name], "motors": [d.energy.name],
        "detector_key": data_key(d.detector), "energy_key": energy_key,
        "i0_key": data_key(d.i0), "hints": {"dimensions": [([energy_key], "primary")]},
        **dict(md or {}),
    }  # fmt: skip


def _move_to(d: _XanesDevices, o: XanesOptions, index: int) -> PlanGen:
    """Move to energy ``index`` (with the focus when tracking)."""
    yield from move_energy(d.energy, d.zone_plate_z, d.detector_z, o.energies,
                           o.focus_positions, index)  # fmt: skip


def _darks(d: _XanesDevices, o: XanesOptions, stager: StreamStager) -> PlanGen:
    """Close the shutter, take ``n_dark`` frames (stream ``dark``), open it."""
    yield from bps.mv(d.shutter, o.shutter_closed)
    for _ in range(o.n_dark):
        yield from stager.read([d.detector, d.i0], "dark")
    yield from bps.mv(d.shutter, o.shutter_open)


def _flat_pass(d: _XanesDevices, o: XanesOptions, stager: StreamStager,
               sample_in: float) -> PlanGen:  # fmt: skip
    """Sample out once, a flat at every ``flat_every``-th energy, sample back in."""
    yield from bps.mv(d.sample_x, o.sample_out)
    for index in o.flat_indices:
        yield from bps.checkpoint()
        yield from _move_to(d, o, index)
        yield from stager.read([d.detector, d.i0, d.energy], "flat")
    yield from bps.mv(d.sample_x, sample_in)


def _flat(d: _XanesDevices, o: XanesOptions, stager: StreamStager, sample_in: float) -> PlanGen:
    """One flat at the current energy (interleaved mode): sample out, read, back in."""
    yield from bps.mv(d.sample_x, o.sample_out)
    yield from stager.read([d.detector, d.i0, d.energy], "flat")
    yield from bps.mv(d.sample_x, sample_in)


def _images(d: _XanesDevices, o: XanesOptions, stager: StreamStager,
            sample_in: float) -> PlanGen:  # fmt: skip
    """An image at each energy (after its flat in interleaved mode)."""
    for index in range(len(o.energies)):
        # a pause resumes from here: the point is measured again, or not at all
        yield from bps.checkpoint()
        yield from _move_to(d, o, index)
        if o.flat_mode == "interleaved" and index in o.flat_indices:
            yield from _flat(d, o, stager, sample_in)
        yield from stager.read([d.detector, d.i0, d.energy, d.zone_plate_z, d.detector_z],
                               "primary")  # fmt: skip


def _xanes_run(d: _XanesDevices, o: XanesOptions, start_md: Mapping[str, Any],
               baseline: Sequence[Readable]) -> PlanGen:  # fmt: skip
    """Check the limits (inside the plan: building it touches no hardware), then the run."""
    yield from check_energy_focus(d.energy, o.energies, d.zone_plate_z, d.detector_z,
                                  o.focus_positions)  # fmt: skip
    sample_in = yield from check_sample_out(d.sample_x, o.sample_out)
    if o.exposure_time is not None:
        yield from set_exposure(d.detector, o.exposure_time)
    stager = StreamStager(d.detector)

    def scan() -> PlanGen:
        yield from bps.open_run(md=dict(start_md))
        yield from _darks(d, o, stager)
        if o.flat_mode == "pass":
            yield from _flat_pass(d, o, stager, sample_in)
        yield from _images(d, o, stager, sample_in)
        yield from stager.close()
        return (yield from bps.close_run())

    def restore() -> PlanGen:
        yield from stager.close()
        yield from bps.mv(d.sample_x, sample_in, d.shutter, o.shutter_open)

    optics_devices = [d.energy, d.zone_plate_z, d.detector_z, d.sample_x, *baseline]
    return (
        yield from bpp.finalize_wrapper(bpp.baseline_wrapper(scan(), optics_devices), restore())
    )


@plan
@parameter_annotation_decorator(QUEUE_FOCUS_ANNOTATION)
def xanes_scan(  # noqa: PLR0913 -- bluesky plan: keyword arguments are the queue server's parameter form
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
    o = validate_xanes_args(energies, focus, exposure_time, n_dark, flat_every, flat_mode,
                            sample_out, shutter_open, shutter_closed)  # fmt: skip
    d = _XanesDevices(detector, energy, zone_plate_z, detector_z, sample_x, shutter, i0)
    start_md = _xanes_start_md(d, o, element=element, edge=edge, sample=sample, optics=optics,
                              md=md)  # fmt: skip
    return _xanes_run(d, o, start_md, baseline)
