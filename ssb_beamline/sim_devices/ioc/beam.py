"""Shutters, incident-flux monitor (I0) and storage-ring current PVs of the simulated TXM.

Shutter ``Cmd``/``Sts`` pairs use the enum strings of
`ssb_beamline.devices.shutter.ShutterState` (``"Open"``/``"Closed"``): a put to
``Cmd`` completes once ``Sts`` reached the commanded state (after the actuation
time). ``I0:Counts`` is written by the camera after each frame: the incident flux
integrated over that exposure. ``Ring:Current`` follows the in-process
`~ssb_beamline.sim_devices.ring.RingCurrentModel` (top-up sawtooth).
"""

from __future__ import annotations

import asyncio
import time

from caproto import ChannelType
from caproto.server import PVGroup, pvproperty

from ssb_beamline.devices.shutter import ShutterState

from ..ring import RingCurrentModel

__all__ = ["BeamMonitors", "ShutterRecord"]

#: Enum strings of every shutter PV, in this order (index 0 = Open).
SHUTTER_STATES = (ShutterState.OPEN.value, ShutterState.CLOSED.value)


class ShutterRecord(PVGroup):
    """``<prefix>Cmd`` (write) and ``<prefix>Sts`` (readback) of one shutter.

    Parameters
    ----------
    prefix : str
        e.g. ``"SSBSIM:Shtr:Ph:"``.
    actuation_time : float
        Seconds between a command and the new readback.
    initial : str
        ``"Open"`` or ``"Closed"``.
    """

    cmd = pvproperty(name="Cmd", value=SHUTTER_STATES[1], enum_strings=SHUTTER_STATES,
                     dtype=ChannelType.ENUM)  # fmt: skip
    sts = pvproperty(name="Sts", value=SHUTTER_STATES[1], enum_strings=SHUTTER_STATES,
                     dtype=ChannelType.ENUM, read_only=True)  # fmt: skip

    def __init__(
        self, prefix: str, actuation_time: float = 0.01, initial: str = "Open", **kwargs
    ) -> None:
        super().__init__(prefix=prefix, **kwargs)
        self.actuation_time = actuation_time
        self.cmd._data["value"] = initial
        self.sts._data["value"] = initial

    @property
    def is_open(self) -> bool:
        """True when the readback says Open."""
        return self.sts.value == ShutterState.OPEN.value

    @cmd.putter
    async def cmd(self, instance, value: str) -> str:
        """Actuate; the put completes when ``Sts`` shows the new state."""
        if value != self.sts.value:
            await asyncio.sleep(self.actuation_time)
            await self.sts.write(value)
        return value


class BeamMonitors(PVGroup):
    """``I0:Counts`` (flux over the last exposure) and ``Ring:Current`` (mA).

    Parameters
    ----------
    prefix : str
        The IOC prefix, e.g. ``"SSBSIM:"``.
    ring : RingCurrentModel, optional
        Top-up model of the ring current.
    """

    i0 = pvproperty(name="I0:Counts", value=0.0, dtype=ChannelType.DOUBLE, read_only=True,
                    precision=1, units="counts")  # fmt: skip
    ring_current = pvproperty(name="Ring:Current", value=400.0, dtype=ChannelType.DOUBLE,
                              read_only=True, precision=3, units="mA")  # fmt: skip

    def __init__(self, prefix: str, ring: RingCurrentModel | None = None, **kwargs) -> None:
        super().__init__(prefix=prefix, **kwargs)
        self.ring = ring or RingCurrentModel()
        self._t0 = time.monotonic()
        self.ring_current._data["value"] = self.current_ma()

    def current_ma(self) -> float:
        """Ring current now, mA."""
        return float(self.ring.current(time.monotonic() - self._t0, []))

    def relative_current(self) -> float:
        """Ring current relative to the top-up value (the flux factor)."""
        return self.current_ma() / self.ring.top_up_ma

    @ring_current.scan(period=0.5)
    async def ring_current(self, instance, async_lib) -> None:
        """Publish the ring current twice a second."""
        await instance.write(self.current_ma())
