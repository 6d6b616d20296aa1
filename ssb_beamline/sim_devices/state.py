"""Read the current beamline state from ophyd-async or classic ophyd devices."""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass
from typing import Any

from bluesky.protocols import Locatable
from ophyd_async.core import Device, SignalR

logger = logging.getLogger(__name__)

#: Readback signal names tried, in order, on ophyd-async devices.
READBACK_ATTRS = ("user_readback", "readback", "state", "flux", "value")


async def read_value(source: Any) -> Any:
    """Current value of a device, signal, ophyd v1 object, callable or constant.

    Supported, in order: ophyd-async ``SignalR`` (``get_value``); ophyd-async
    devices with one of `READBACK_ATTRS` or ``locate()``; ophyd v1 objects with
    ``.position`` (positioners such as ``ophyd.sim.SynAxis``) or ``.get()``;
    zero-argument callables (sync or async); plain numbers/strings.
    """
    if isinstance(source, Device) and not isinstance(source, SignalR):
        signals = [getattr(source, attr, None) for attr in READBACK_ATTRS]
        signals = [s for s in signals if isinstance(s, SignalR)]
        if signals:
            source = signals[0]
        elif isinstance(source, Locatable):
            return (await source.locate())["readback"]
        else:
            raise TypeError(f"Don't know how to read the position of {source!r}")
    if isinstance(source, SignalR):
        value = source.get_value()
    elif hasattr(source, "position"):
        value = source.position
    elif hasattr(source, "get") and callable(source.get):
        value = source.get()
        value = getattr(value, "readback", value)
    elif callable(source):
        value = source()
    else:
        value = source
    return await value if inspect.isawaitable(value) else value


def is_open(value: Any) -> bool:
    """Interpret a shutter readback: "Open" (any case) or a truthy number."""
    if isinstance(value, str):
        return value.strip().lower() == "open"
    return bool(value)


@dataclass(frozen=True)
class BeamlineState:
    """Snapshot of everything that changes a TXM frame."""

    energy_ev: float
    zp_z_mm: float
    det_z_mm: float
    sample_x_um: float
    sample_y_um: float
    shutter_open: bool
    flux: float


@dataclass
class BeamlineStateSources:
    """Where the detector reads the beamline state from (swappable per axis).

    Each field may be an ophyd-async device/signal, a classic ophyd positioner
    (e.g. ``ophyd.sim.SynAxis``), a callable or a constant (see `read_value`).
    """

    energy: Any
    zp_z: Any
    det_z: Any
    sample_x: Any
    sample_y: Any
    shutter: Any = "Open"
    i0: Any = 1.0

    async def snapshot(self) -> BeamlineState:
        """Read all sources concurrently."""
        values = await asyncio.gather(
            read_value(self.energy),
            read_value(self.zp_z),
            read_value(self.det_z),
            read_value(self.sample_x),
            read_value(self.sample_y),
            read_value(self.shutter),
            read_value(self.i0),
        )
        energy, zp, det, x, y, shutter, flux = values
        return BeamlineState(
            energy_ev=float(energy),
            zp_z_mm=float(zp),
            det_z_mm=float(det),
            sample_x_um=float(x),
            sample_y_um=float(y),
            shutter_open=is_open(shutter),
            flux=float(flux),
        )
