"""Hidden ``{P}Sim:`` PVs that inject faults into the simulated TXM IOC (for tests).

``{P}Sim:StallAxis`` (string): the record suffix of an axis (e.g. ``"Mono:Energy"``)
whose next moves never finish: the axis freezes and ``.DMOV`` stays 0 until
``.STOP``; an empty string clears the fault. A killed IOC needs no PV: it is a
plain subprocess (`~ssb_beamline.sim_devices.ioc.launch.IOCHandle.kill`).
"""

from __future__ import annotations

import logging

from caproto import ChannelType
from caproto.server import PVGroup, pvproperty

from .motors import MotorRecord

__all__ = ["FaultPVs"]

logger = logging.getLogger(__name__)


class FaultPVs(PVGroup):
    """``<prefix>Sim:StallAxis``.

    Parameters
    ----------
    prefix : str
        The IOC prefix.
    motors : dict of str to MotorRecord
        The IOC's motor records keyed by record suffix (``"Mono:Energy"``).
    """

    stall_axis = pvproperty(name="Sim:StallAxis", value="", dtype=ChannelType.STRING)

    def __init__(self, prefix: str, motors: dict[str, MotorRecord], **kwargs) -> None:
        super().__init__(prefix=prefix, **kwargs)
        self.motors = motors

    @stall_axis.putter
    async def stall_axis(self, instance, value: str) -> str:
        """Stall the named axis (and release every other one)."""
        value = value.strip()
        if value and value not in self.motors:
            raise ValueError(
                f"Sim:StallAxis: unknown axis {value!r}; use one of {sorted(self.motors)}"
            )
        for suffix, motor in self.motors.items():
            motor.axis.stalled = suffix == value
        if value:
            logger.warning("Fault injected: axis %r stalls", value)
        return value
