"""Plan stubs shared by the scans: limits, exposure, detector staging per stream.

They work with ophyd-async devices and with classic ophyd (v1) devices alike.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from typing import Any

import bluesky.plan_stubs as bps
from bluesky.protocols import Readable
from bluesky.utils import Msg

__all__ = [
    "StreamStager",
    "check_energy_focus",
    "check_sample_out",
    "check_within_limits",
    "data_key",
    "limits_label",
    "move_energy",
    "read_limits",
    "readback_of",
    "set_exposure",
]

PlanGen = Generator[Msg, Any, Any]


def read_limits(axis: Any) -> Generator[Msg, Any, tuple[float, float]]:
    """Read an axis's travel limits inside the plan (``bps.rd``).

    EPICS-style axes (ophyd-async ``Motor``, the simulated axes, ophyd ``EpicsMotor``)
    have ``low_limit_travel``/``high_limit_travel`` signals; classic ophyd soft
    positioners have a ``limits`` tuple. An axis with neither, or with the EPICS
    convention ``low == high`` (no limits set), is unlimited.

    Parameters
    ----------
    axis : Movable
        The axis.

    Returns
    -------
    (float, float)
        ``(low, high)``; ``(-inf, inf)`` when unlimited.
    """
    if hasattr(axis, "low_limit_travel") and hasattr(axis, "high_limit_travel"):
        low = yield from bps.rd(axis.low_limit_travel)
        high = yield from bps.rd(axis.high_limit_travel)
    elif isinstance(getattr(axis, "limits", None), tuple):
        low, high = axis.limits
    else:
        return (-math.inf, math.inf)
    if low == high:  # EPICS: equal limits mean "no limits"
        return (-math.inf, math.inf)
    return (float(low), float(high))


def limits_label(axis: Any) -> str:
    """The axis name, and the PVs its limits come from when they are EPICS fields.

    Parameters
    ----------
    axis : Movable
        The axis.

    Examples
    --------
    >>> from ophyd.sim import SynAxis
    >>> limits_label(SynAxis(name="energy"))
    'energy'
    """
    sources = []
    for attr in ("low_limit_travel", "high_limit_travel"):
        source = str(getattr(getattr(axis, attr, None), "source", ""))
        if source.startswith(("ca://", "pva://")):
            sources.append(source.split("://", 1)[1])
    return f"{axis.name} (limits from {' / '.join(sources)})" if sources else axis.name


def check_within_limits(
    name: str, positions: Sequence[float], limits: tuple[float, float], units: str
) -> None:
    """Raise ``ValueError`` naming the first position outside ``limits``.

    Parameters
    ----------
    name : str
        The axis, as the message names it (e.g. from `limits_label`).
    positions : sequence of float
        Positions the plan would move to.
    limits : (float, float)
        ``(low, high)`` limits, inclusive.
    units : str
        Units of the positions, for the message.

    Examples
    --------
    >>> check_within_limits("energy", [8300.0, 8400.0], (5000.0, 11000.0), "eV")
    """
    low, high = limits
    for position in positions:
        if not low <= position <= high:
            raise ValueError(
                f"{name} would move to {position:.4g} {units}, outside its limits "
                f"[{low:.6g}, {high:.6g}] {units}. Choose positions inside the limits "
                "(nothing has moved)."
            )


def set_exposure(detector: Any, exposure_time: float) -> PlanGen:
    """Set a detector's exposure time (s), whatever kind of detector it is.

    Parameters
    ----------
    detector : Any
        A detector with ``exposure_time``, ``driver.acquire_time`` or
        ``cam.acquire_time``.
    exposure_time : float
        Exposure, s.

    Raises
    ------
    TypeError
        For a detector with none of these.
    """
    for path in ("exposure_time", "driver.acquire_time", "cam.acquire_time"):
        target = detector
        for part in path.split("."):
            target = getattr(target, part, None)
            if target is None:
                break
        if target is not None:
            yield from bps.mv(target, exposure_time)
            return
    raise TypeError(
        f"Cannot set the exposure of {getattr(detector, 'name', detector)!r}: it has no "
        "exposure_time, driver.acquire_time or cam.acquire_time. Set the exposure on the "
        "detector before the scan and pass exposure_time=None."
    )


def data_key(device: Any) -> str:
    """The event data key under which a readable device's main value appears.

    Parameters
    ----------
    device : Readable
        The device: its first hinted field, else its name.

    Examples
    --------
    >>> from ophyd.sim import SynAxis
    >>> data_key(SynAxis(name="energy"))
    'energy'
    """
    fields = getattr(device, "hints", {}).get("fields") or [device.name]
    return fields[0]


def readback_of(axis: Any) -> Any:
    """The subscribable readback signal of an axis (ophyd-async or classic ophyd).

    Parameters
    ----------
    axis : Movable
        The axis: its ``user_readback`` or ``readback``, else the axis itself.
    """
    for attr in ("user_readback", "readback"):
        signal = getattr(axis, attr, None)
        if signal is not None:
            return signal
    return axis


class StreamStager:
    """Stage the detector afresh whenever the stream it is read into changes.

    A file-writing detector describes each file with one StreamResource, and tiled
    attaches a StreamResource to one stream. Restaging opens a new file, so dark,
    flat and primary frames each land in their own stream.

    Parameters
    ----------
    detector : Stageable
        The detector to stage per stream.
    """

    def __init__(self, detector: Any) -> None:
        self.detector = detector
        self.stream: str | None = None

    def read(self, readables: Sequence[Readable], stream: str) -> PlanGen:
        """Trigger and read ``readables`` (the detector among them) into ``stream``."""
        if stream != self.stream:
            yield from self.close()
            # ophyd-async devices stage asynchronously: wait, or the trigger races it
            yield from bps.stage(self.detector, group="ssb-stage", wait=True)
            self.stream = stream
        return (yield from bps.trigger_and_read(list(readables), name=stream))

    def close(self) -> PlanGen:
        """Unstage the detector if it is staged."""
        if self.stream is not None:
            self.stream = None
            yield from bps.unstage(self.detector, group="ssb-stage", wait=True)


def check_sample_out(sample_x: Any, sample_out: float) -> PlanGen:
    """Check ``sample_out`` within the ``sample_x`` limits; return the current position.

    Parameters
    ----------
    sample_x : Movable
        Axis that moves the sample out of the beam.
    sample_out : float
        Its position with the sample out.
    """
    limits = yield from read_limits(sample_x)
    check_within_limits(limits_label(sample_x), [sample_out], limits, "")
    return (yield from bps.rd(sample_x))


def check_energy_focus(
    energy: Any,
    energy_list: Sequence[float],
    zone_plate_z: Any,
    detector_z: Any,
    focus_positions: Sequence[Any] | None,
) -> PlanGen:
    """Check the energies and the focus positions (zone plate, detector) within limits.

    Parameters
    ----------
    energy : Movable
        Monochromator energy axis, eV.
    energy_list : sequence of float
        Energies of the scan, eV.
    zone_plate_z, detector_z : Movable
        Zone-plate and detector axes, mm.
    focus_positions : sequence of (float, float) or None
        (zone-plate z, detector z) of each energy; None without focus tracking.
    """
    limits = yield from read_limits(energy)
    check_within_limits(limits_label(energy), energy_list, limits, "eV")
    if focus_positions is not None:
        zp_limits = yield from read_limits(zone_plate_z)
        zp_name = limits_label(zone_plate_z)
        check_within_limits(zp_name, [p[0] for p in focus_positions], zp_limits, "mm")
        det_limits = yield from read_limits(detector_z)
        det_name = limits_label(detector_z)
        check_within_limits(det_name, [p[1] for p in focus_positions], det_limits, "mm")


def move_energy(
    energy: Any,
    zone_plate_z: Any,
    detector_z: Any,
    energy_list: Sequence[float],
    focus_positions: Sequence[Any] | None,
    index: int,
) -> PlanGen:
    """Move to ``energy_list[index]``, with the zone plate and detector if focus-tracking.

    Parameters
    ----------
    energy : Movable
        Monochromator energy axis, eV.
    zone_plate_z, detector_z : Movable
        Zone-plate and detector axes, mm.
    energy_list : sequence of float
        Energies of the scan, eV.
    focus_positions : sequence of (float, float) or None
        (zone-plate z, detector z) of each energy; None without focus tracking.
    index : int
        Which energy.
    """
    moves: list[Any] = [energy, energy_list[index]]
    if focus_positions is not None:
        zp, det = focus_positions[index]
        moves += [zone_plate_z, zp, detector_z, det]
    yield from bps.mv(*moves)
