"""Simulated photon shutter with open/closed state and an actuation time."""

from __future__ import annotations

import asyncio
import logging

from ophyd_async.core import (
    AsyncStatus,
    StandardReadable,
    StrictEnum,
    soft_signal_r_and_setter,
    soft_signal_rw,
)
from ophyd_async.core import StandardReadableFormat as Format

logger = logging.getLogger(__name__)


class ShutterState(StrictEnum):
    """Shutter positions."""

    OPEN = "Open"
    CLOSED = "Closed"


class SimShutter(StandardReadable):
    """Photon shutter; closed gives dark frames on the TXM detector.

    ``bps.mv(shutter, ShutterState.CLOSED)`` (or ``"Closed"``) waits for the
    actuation time, then updates the ``state`` readback.

    Parameters
    ----------
    initial : ShutterState
        Start position.
    actuation_time : float
        Time to open or close, s.
    name : str
        Device name.
    """

    def __init__(
        self,
        initial: ShutterState = ShutterState.OPEN,
        actuation_time: float = 0.01,
        name: str = "",
    ) -> None:
        with self.add_children_as_readables(Format.HINTED_SIGNAL):
            self.state, self._state_set = soft_signal_r_and_setter(ShutterState, initial)
        with self.add_children_as_readables(Format.CONFIG_SIGNAL):
            self.actuation_time = soft_signal_rw(float, actuation_time, units="s")
        super().__init__(name=name)

    @AsyncStatus.wrap
    async def set(self, value: ShutterState | str) -> None:
        """Move the shutter to ``value`` ("Open" or "Closed")."""
        try:
            target = ShutterState(value)
        except ValueError:
            raise ValueError(
                f"{self.name}: invalid shutter position {value!r}; "
                f"use one of {[s.value for s in ShutterState]}"
            ) from None
        if await self.state.get_value() != target:
            await asyncio.sleep(await self.actuation_time.get_value())
            self._state_set(target)
            logger.debug("%s -> %s", self.name, target.value)

    async def is_open(self) -> bool:
        """True if the shutter is open."""
        return await self.state.get_value() == ShutterState.OPEN
