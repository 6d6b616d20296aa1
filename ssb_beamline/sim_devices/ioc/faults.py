"""Hidden ``{P}Sim:`` PVs: fault injection and the camera's frame model (for tests and demos).

``{P}Sim:StallAxis`` (string): the record suffix of an axis (e.g. ``"Mono:Energy"``)
whose next moves never finish: the axis freezes and ``.DMOV`` stays 0 until
``.STOP``; an empty string clears the fault. A killed IOC needs no PV: it is a
plain subprocess (`~ssb_beamline.sim_devices.ioc.launch.IOCHandle.kill`).

``{P}Sim:Model`` (enum ``TXM``/``Tomo``/``Holo``): which physics the camera
renders: the 2-D XANES phantom, or projections of the 3-D phantom (absorption
tomography or holotomography). Refused while the camera acquires.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from caproto import ChannelType
from caproto.server import PVGroup, pvproperty

from .frames import MODELS, FrameSource
from .motors import MotorRecord

__all__ = ["FaultPVs"]

logger = logging.getLogger(__name__)


class FaultPVs(PVGroup):
    """``<prefix>Sim:StallAxis`` and ``<prefix>Sim:Model``.

    Parameters
    ----------
    prefix : str
        The IOC prefix.
    motors : dict of str to MotorRecord
        The IOC's motor records keyed by record suffix (``"Mono:Energy"``).
    frames : FrameSource
        The camera's frame source (its ``model_name`` is switched).
    on_model : callable, optional
        ``await on_model()`` after a switch (publishes the new frame shape);
        raises to refuse the switch (e.g. while acquiring).
    """

    stall_axis = pvproperty(name="Sim:StallAxis", value="", dtype=ChannelType.STRING)
    model = pvproperty(name="Sim:Model", value=MODELS[0], enum_strings=MODELS,
                       dtype=ChannelType.ENUM)  # fmt: skip

    def __init__(
        self,
        prefix: str,
        motors: dict[str, MotorRecord],
        frames: FrameSource,
        on_model: Callable[[], Awaitable[None]] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(prefix=prefix, **kwargs)
        self.motors = motors
        self.frames = frames
        self.on_model = on_model
        self.model._data["value"] = frames.model_name

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

    @model.putter
    async def model(self, instance, value: str) -> str:
        """Switch the frame model (the 3-D phantom is built on first use, in a thread)."""
        old = self.frames.model_name
        self.frames.model_name = value
        try:
            await asyncio.to_thread(lambda: self.frames.model)
            if self.on_model is not None:
                await self.on_model()
        except Exception:
            self.frames.model_name = old
            raise
        logger.info("Camera frame model: %s, frames %s", value, self.frames.shape)
        return value
