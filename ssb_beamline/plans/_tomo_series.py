"""A tomogram series, as the three tomography plans run it.

`tomo_scan`, `xanes_tomo_scan` and `holotomo_scan` validate their options with
:func:`tomo_options` when they are built and hand :func:`tomo_series_plan` what
differs between them (start document, tomograms, the move between tomograms).
A series is darks once, then for each tomogram: an optional move (energy or
propagation distance), flats with the sample out and a step or fly rotation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np
from bluesky.protocols import Readable

from ._tomo_common import (
    FlyGeometry,
    angle_orders,
    darks,
    flats,
    fly_geometries,
    fly_rotation,
    prepare_tomo,
    step_rotation,
)
from .angles import validate_angles
from .stubs import PlanGen, StreamStager
from .validation import validate_count, validate_exposure

__all__ = [
    "TomoDevices",
    "TomoOptions",
    "TomoSeries",
    "run_tomo_series",
    "tomo_options",
    "tomo_series_plan",
]


@dataclass(frozen=True)
class TomoDevices:
    """The devices every tomography plan drives, and the positions it moves them to.

    Attributes
    ----------
    detector : Any
        Area detector.
    rotation : Any
        Rotation axis, deg.
    sample_x : Any
        Axis that moves the sample out of the beam for flats.
    shutter : Any
        Movable shutter.
    i0 : Readable
        Incident-flux monitor.
    sample_out : float
        ``sample_x`` position with the sample out of the beam.
    shutter_open, shutter_closed : Any
        Positions of ``shutter``.
    """

    detector: Any
    rotation: Any
    sample_x: Any
    shutter: Any
    i0: Readable
    sample_out: float
    shutter_open: Any
    shutter_closed: Any


@dataclass(frozen=True)
class TomoOptions:
    """Validated options of a tomogram series (made by :func:`tomo_options`).

    Attributes
    ----------
    mode : str
        ``"step"`` or ``"fly"``.
    angles : ndarray
        The rotation angles, deg, in the order of the first tomogram.
    exposure : float or None
        Exposure, s (None: the detector's setting).
    n_dark, n_flat : int
        Dark frames, and flat frames per tomogram.
    deadtime : float
        Fly mode: dead time between frames, s.
    orders : list of ndarray
        The angle order of each tomogram.
    flies : list of FlyGeometry
        The fly geometry of each tomogram (empty for step scans).
    """

    mode: str
    angles: np.ndarray
    exposure: float | None
    n_dark: int
    n_flat: int
    deadtime: float
    orders: Sequence[np.ndarray]
    flies: Sequence[FlyGeometry]

    @property
    def angle_list(self) -> list[float]:
        """The angles as a list of float, deg."""
        return [float(a) for a in self.angles]


def tomo_options(angles: Any, mode: str, exposure_time: float | None, n_dark: int, n_flat: int,
                 deadtime: float, lead_time: float, *, count: int = 1,
                 zigzag: bool = False) -> TomoOptions:  # fmt: skip
    """Check the options of ``count`` tomograms (fly: evenly spaced angles, an exposure).

    Parameters
    ----------
    angles : sequence of float or (start, stop, num)
        Rotation angles, deg (see `validate_angles`).
    mode : str
        ``"step"`` or ``"fly"`` (checked by the caller).
    exposure_time : float or None
        Exposure, s.
    n_dark, n_flat : int
        Dark and flat frames (>= 1).
    deadtime, lead_time : float
        Fly mode: dead time between frames and rotation run-up, s.
    count : int
        Number of tomograms.
    zigzag : bool
        Reverse the angle order at every other tomogram.

    Returns
    -------
    TomoOptions
    """
    angle_arr = validate_angles(angles, evenly_spaced=mode == "fly")
    exposure = validate_exposure(exposure_time, required=mode == "fly")
    n_dark, n_flat = validate_count("n_dark", n_dark), validate_count("n_flat", n_flat)
    orders = angle_orders(angle_arr, count, zigzag)
    flies = fly_geometries(mode, exposure, orders, deadtime, lead_time)
    return TomoOptions(mode, angle_arr, exposure, n_dark, n_flat, deadtime, orders, flies)


@dataclass(frozen=True)
class TomoSeries:
    """What :func:`run_tomo_series` runs besides the devices and options.

    Attributes
    ----------
    stager : StreamStager
        Stages the detector per stream.
    tomograms : sequence of dict
        Each gives ``angles_deg``, ``stream`` and ``monitor_stream``.
    move_to : callable or None
        ``move_to(k)`` moves to tomogram ``k``'s energy / distance.
    extra : sequence of Readable
        Read with every flat and step frame (energy, distance).
    sample_in : float
        ``sample_x`` position restored at the end.
    old_velocity : Any
        Rotation velocity restored at the end (None: unchanged).
    baseline : sequence
        Devices read into the baseline stream.
    """

    stager: StreamStager
    tomograms: Sequence[Mapping[str, Any]]
    move_to: Callable[[int], PlanGen] | None
    extra: Sequence[Readable]
    sample_in: float
    old_velocity: Any
    baseline: Sequence[Any]


def _tomogram(d: TomoDevices, o: TomoOptions, t: TomoSeries, k: int) -> PlanGen:
    """Tomogram ``k``: the move, flats with the sample out, the step or fly rotation."""
    yield from bps.checkpoint()
    if t.move_to is not None:
        yield from t.move_to(k)
    yield from flats(t.stager, [d.detector, d.i0, *t.extra], d.sample_x, d.sample_out,
                     t.sample_in, o.n_flat)  # fmt: skip
    yield from bps.checkpoint()
    tomogram = t.tomograms[k]
    if not o.flies:
        yield from step_rotation(t.stager, [d.detector, d.rotation, *t.extra, d.i0], d.rotation,
                                 tomogram["angles_deg"])  # fmt: skip
    else:
        yield from t.stager.close()
        yield from fly_rotation(d.detector, d.rotation, o.flies[k], len(tomogram["angles_deg"]),
                                o.exposure, o.deadtime, tomogram["stream"],
                                tomogram["monitor_stream"])  # fmt: skip


def run_tomo_series(
    start_md: Mapping[str, Any], d: TomoDevices, o: TomoOptions, t: TomoSeries
) -> PlanGen:
    """Open a run, take darks, then each tomogram (move, flats, rotation); restore at the end.

    Parameters
    ----------
    start_md : dict
        The start document's metadata.
    d : TomoDevices
        The devices and their positions.
    o : TomoOptions
        The validated options.
    t : TomoSeries
        The tomograms and what is restored at the end.
    """

    def scan() -> PlanGen:
        yield from bps.open_run(md=start_md)
        yield from darks(t.stager, [d.detector, d.i0], d.shutter, o.n_dark, d.shutter_closed,
                         d.shutter_open)  # fmt: skip
        for k in range(len(t.tomograms)):
            yield from _tomogram(d, o, t, k)
        yield from t.stager.close()
        return (yield from bps.close_run())

    def restore() -> PlanGen:
        yield from t.stager.close()
        yield from bps.mv(d.sample_x, t.sample_in, d.shutter, d.shutter_open)
        if t.old_velocity is not None:
            yield from bps.mv(d.rotation.velocity, t.old_velocity)

    return (
        yield from bpp.finalize_wrapper(bpp.baseline_wrapper(scan(), list(t.baseline)), restore())
    )


def tomo_series_plan(start_md: Callable[[float | None], Mapping[str, Any]], d: TomoDevices,
                     o: TomoOptions, *, tomograms: Sequence[Mapping[str, Any]],
                     baseline: Sequence[Any], move_to: Callable[[int], PlanGen] | None = None,
                     extra: Sequence[Readable] = (), energy: Any = None,
                     pre_check: Callable[[], PlanGen] | None = None) -> PlanGen:  # fmt: skip
    """Check the limits, set the exposure, then run the series (:func:`run_tomo_series`).

    Parameters
    ----------
    start_md : callable
        ``start_md(energy_ev)``: the start document's metadata, given the energy read
        from ``energy`` (None without it).
    d : TomoDevices
        The devices and their positions.
    o : TomoOptions
        The validated options.
    tomograms : sequence of dict
        Each gives ``angles_deg``, ``stream`` and ``monitor_stream``.
    baseline : sequence
        Devices read into the baseline stream.
    move_to : callable or None
        ``move_to(k)`` moves to tomogram ``k``'s energy / distance.
    extra : sequence of Readable
        Read with every flat and step frame.
    energy : Readable or None
        Energy axis read (with ``bps.rd``) for ``start_md``.
    pre_check : callable or None
        A plan stub of further limit checks, run first.
    """
    if pre_check is not None:
        yield from pre_check()
    old_velocity, sample_in, energy_ev = yield from prepare_tomo(
        d.detector, d.rotation, d.sample_x, o.angle_list, o.flies, d.sample_out, o.exposure, energy
    )
    series = TomoSeries(StreamStager(d.detector), tomograms, move_to, extra, sample_in,
                        old_velocity, baseline)  # fmt: skip
    return (yield from run_tomo_series(start_md(energy_ev), d, o, series))
