"""A simulated motor axis with EPICS-motor-like limits, velocity and settle time.

`SimAxis` follows the signal names of `ophyd_async.epics.motor.Motor`
(``user_readback``, ``user_setpoint``, ``velocity``, ``low_limit_travel``,
``high_limit_travel``, ``motor_egu``, ``motor_done_move``) so an EPICS motor can
replace it. A move takes ``|distance| / velocity + settle_time`` seconds; a
setpoint outside the limits raises `AxisLimitsError` before anything moves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ophyd_async.core import (
    MovableLogic,
    SignalR,
    SignalRW,
    StandardMovable,
    StandardReadable,
    TimeoutCalculator,
    soft_signal_r_and_setter,
    soft_signal_rw,
)
from ophyd_async.core import StandardReadableFormat as Format
from ophyd_async.epics.motor import MotorLimitsError

__all__ = ["UPDATE_PERIOD_S", "AxisLimitsError", "SimAxis", "SimAxisMoveLogic"]

logger = logging.getLogger(__name__)

#: Readback update period while moving, s.
UPDATE_PERIOD_S = 0.05


class AxisLimitsError(MotorLimitsError, ValueError):
    """A requested position lies outside the axis' travel limits."""


@dataclass
class SimAxisMoveLogic(MovableLogic[float]):
    """Linear move at ``velocity`` followed by ``settle_time``, with limit checks."""

    readback_set: Callable[[float], None]
    velocity: SignalR[float]
    settle_time: SignalR[float]
    low_limit: SignalR[float]
    high_limit: SignalR[float]
    done_set: Callable[[int], None]
    name: str = ""

    async def check_move(self, new_position: float) -> None:
        """Raise `AxisLimitsError` if ``new_position`` is outside the limits."""
        lo, hi = await asyncio.gather(self.low_limit.get_value(), self.high_limit.get_value())
        units = (await self.get_units_precision())[0] or ""
        if not lo <= new_position <= hi:
            raise AxisLimitsError(
                f"{self.name or 'axis'}: requested {new_position} {units} is outside the "
                f"travel limits {lo} {units} <= x <= {hi} {units}; nothing was moved."
            )

    async def calculate_timeout(self, old_position: float, new_position: float) -> float | None:
        """Twice the expected move time plus 5 s."""
        velocity, settle = await asyncio.gather(
            self.velocity.get_value(), self.settle_time.get_value()
        )
        if velocity <= 0:
            return 5.0 + settle
        return 2.0 * abs(new_position - old_position) / velocity + settle + 5.0

    async def stop(self) -> None:
        """Stop where the readback is."""
        await self.setpoint.set(await self.readback.get_value())

    async def move(self, new_position: float, timeout: TimeoutCalculator) -> None:
        """Ramp the readback linearly to ``new_position``, then settle."""
        velocity, settle, old = await asyncio.gather(
            self.velocity.get_value(),
            self.settle_time.get_value(),
            self.readback.get_value(),
        )
        await self.setpoint.set(new_position)
        self.done_set(0)
        try:
            distance = new_position - old
            duration = abs(distance) / velocity if velocity > 0 else 0.0
            start = time.monotonic()
            while (elapsed := time.monotonic() - start) < duration:
                self.readback_set(old + distance * elapsed / duration)
                await asyncio.sleep(min(UPDATE_PERIOD_S, duration - elapsed))
            self.readback_set(new_position)
            if settle > 0:
                await asyncio.sleep(settle)
        finally:
            self.done_set(1)


class SimAxis(StandardReadable, StandardMovable[float]):
    """Simulated motor axis with limits, velocity and settle time.

    Parameters
    ----------
    initial_value : float
        Start position.
    units : str
        Engineering units (``motor_egu``).
    limits : tuple of float
        ``(low_limit_travel, high_limit_travel)``.
    velocity : float
        Speed in units/s; 0 moves instantly.
    settle_time : float
        Extra time after each move, s.
    name : str
        Device name.
    """

    def __init__(
        self,
        initial_value: float = 0.0,
        units: str = "mm",
        *,
        limits: tuple[float, float] = (-1e3, 1e3),
        velocity: float = 1.0,
        settle_time: float = 0.0,
        name: str = "",
    ) -> None:
        lo, hi = limits
        if not lo <= initial_value <= hi:
            raise ValueError(f"initial_value {initial_value} outside limits {limits}")
        if velocity < 0 or settle_time < 0:
            raise ValueError("velocity and settle_time must be >= 0")
        with self.add_children_as_readables(Format.HINTED_SIGNAL):
            self.user_readback, self._readback_set = soft_signal_r_and_setter(
                float, initial_value, units=units
            )
        with self.add_children_as_readables(Format.CONFIG_SIGNAL):
            self.velocity = soft_signal_rw(float, velocity, units=f"{units}/s")
            self.settle_time = soft_signal_rw(float, settle_time, units="s")
            self.low_limit_travel = soft_signal_rw(float, lo, units=units)
            self.high_limit_travel = soft_signal_rw(float, hi, units=units)
            self.motor_egu, _ = soft_signal_r_and_setter(str, units)
        self.user_setpoint = soft_signal_rw(float, initial_value, units=units)
        self.motor_done_move, self._done_set = soft_signal_r_and_setter(int, 1)
        super().__init__(name=name)

    def move_logic_signals(self) -> dict[str, Any]:
        """The signals (and setters) of this axis a `SimAxisMoveLogic` drives, by argument."""
        return {
            "setpoint": self.user_setpoint,
            "readback": self.user_readback,
            "readback_set": self._readback_set,
            "velocity": self.velocity,
            "settle_time": self.settle_time,
            "low_limit": self.low_limit_travel,
            "high_limit": self.high_limit_travel,
            "done_set": self._done_set,
        }

    @cached_property
    def movable_logic(self) -> SimAxisMoveLogic:
        """Move logic used by `StandardMovable.set`."""
        return SimAxisMoveLogic(**self.move_logic_signals())

    def set_name(self, name: str, *, child_name_separator: str | None = None) -> None:
        """Set the name of the axis and its signals."""
        super().set_name(name, child_name_separator=child_name_separator)
        self.movable_logic.name = name

    @property
    def limits_signals(self) -> tuple[SignalRW[float], SignalRW[float]]:
        """``(low_limit_travel, high_limit_travel)`` signals."""
        return self.low_limit_travel, self.high_limit_travel
