"""Read the current beamline state from ophyd-async or classic ophyd devices."""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from dataclasses import dataclass
from typing import Any

from bluesky.protocols import Locatable
from ophyd_async.core import Device, SignalR

from ssb_beamline.devices.shutter import is_open

__all__ = ["READBACK_ATTRS", "BeamlineState", "BeamlineStateSources", "read_value"]

logger = logging.getLogger(__name__)

#: Readback signal names tried, in order, on ophyd-async devices.
READBACK_ATTRS = ("user_readback", "readback", "state", "flux", "value", "current")


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


@dataclass(frozen=True)
class BeamlineState:
    """Snapshot of everything that changes a TXM frame.

    ``shutter_open`` is True when X-rays reach the sample: the photon shutter and
    the front-end shutter are open and the ring holds beam. ``fe_shutter_open``
    and ``ring_current_ma`` (NaN when not monitored) tell the causes apart.
    """

    energy_ev: float
    zp_z_mm: float
    det_z_mm: float
    sample_x_um: float
    sample_y_um: float
    shutter_open: bool
    flux: float
    fe_shutter_open: bool = True
    ring_current_ma: float = math.nan


@dataclass
class BeamlineStateSources:
    """Where the detector reads the beamline state from (swappable per axis).

    Each field may be an ophyd-async device/signal, a classic ophyd positioner
    (e.g. ``ophyd.sim.SynAxis``), a callable or a constant (see `read_value`).
    ``fe_shutter`` (front-end shutter) and ``ring_current`` (mA; None: not
    monitored) are optional: with the front-end shutter closed, or the ring
    current below ``beam_threshold_ma``, no X-rays reach the sample and the
    detector takes dark frames.
    """

    energy: Any
    zp_z: Any
    det_z: Any
    sample_x: Any
    sample_y: Any
    shutter: Any = "Open"
    i0: Any = 1.0
    fe_shutter: Any = "Open"
    ring_current: Any = None
    beam_threshold_ma: float = 1.0

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
            read_value(self.fe_shutter),
            read_value(math.nan if self.ring_current is None else self.ring_current),
        )
        energy, zp, det, x, y, shutter, flux, fe_shutter, ring_ma = values
        fe_open = is_open(fe_shutter)
        ring_ma = float(ring_ma)
        beam = math.isnan(ring_ma) or ring_ma >= self.beam_threshold_ma
        return BeamlineState(
            energy_ev=float(energy),
            zp_z_mm=float(zp),
            det_z_mm=float(det),
            sample_x_um=float(x),
            sample_y_um=float(y),
            shutter_open=is_open(shutter) and fe_open and beam,
            flux=float(flux),
            fe_shutter_open=fe_open,
            ring_current_ma=ring_ma,
        )
