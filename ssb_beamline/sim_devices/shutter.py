"""Simulated photon shutter with open/closed state, actuation time and interlock closures."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ophyd_async.core import (
    AsyncStatus,
    StandardReadable,
    soft_signal_r_and_setter,
    soft_signal_rw,
)
from ophyd_async.core import StandardReadableFormat as Format

from ssb_beamline.devices.shutter import ShutterState

__all__ = ["SimShutter"]

logger = logging.getLogger(__name__)


class SimShutter(StandardReadable):
    """Photon shutter; closed gives dark frames on the TXM detector.

    ``bps.mv(shutter, ShutterState.CLOSED)`` (or ``"Closed"``) waits for the
    actuation time, then updates the ``state`` readback.

    An interlock (a front-end shutter closed by the machine protection system)
    can hold the shutter closed for a while: `close_for` schedules that. While
    held, ``state`` reads ``Closed`` whatever was commanded, and the commanded
    position applies again when the closure ends. While something subscribes to
    ``state`` (e.g. a bluesky suspender) it is polled every ``poll_period_s``,
    so the subscriber sees the closure end.

    Parameters
    ----------
    initial : ShutterState
        Start position.
    actuation_time : float
        Time to open or close, s.
    name : str
        Device name.
    clock : callable
        Monotonic clock in seconds (for tests) used for scheduled closures.
    poll_period_s : float
        Update period of the subscribed ``state`` signal, s.
    """

    def __init__(
        self,
        initial: ShutterState = ShutterState.OPEN,
        actuation_time: float = 0.01,
        name: str = "",
        *,
        clock: Callable[[], float] = time.monotonic,
        poll_period_s: float = 0.05,
    ) -> None:
        self._clock = clock
        self._commanded = ShutterState(initial)
        self._closures: list[tuple[float, float]] = []
        with self.add_children_as_readables(Format.HINTED_SIGNAL):
            self.state, self._state_set = soft_signal_r_and_setter(
                ShutterState, initial, getter=self.actual_state, poll_period=poll_period_s
            )
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
            self._commanded = target
            self._state_set(self.actual_state())
            if self.interlocked() and target == ShutterState.OPEN:
                logger.warning(
                    "%s: held closed by its interlock; it opens when released", self.name
                )
            logger.debug("%s -> %s", self.name, target.value)

    async def is_open(self) -> bool:
        """True if the shutter is open."""
        return await self.state.get_value() == ShutterState.OPEN

    def interlocked(self, at: float | None = None) -> bool:
        """True while a scheduled closure holds the shutter closed (``at``: clock time)."""
        now = self._clock() if at is None else at
        return any(start <= now < end for start, end in self._closures)

    def actual_state(self) -> ShutterState:
        """The position now: closed while interlocked, else the commanded one."""
        return ShutterState.CLOSED if self.interlocked() else self._commanded

    def close_for(self, duration_s: float, *, delay_s: float = 0.0) -> None:
        """Hold the shutter closed for ``duration_s`` seconds, starting in ``delay_s`` seconds.

        Called from the RunEngine's event loop (as a `FaultSchedule` does), the
        closure is published at once, so suspenders trip before the next plan
        message; from another thread, subscribers see it at the next poll.
        """
        if not duration_s > 0 or delay_s < 0:
            raise ValueError(
                f"close_for needs duration_s > 0 and delay_s >= 0, got {duration_s}, {delay_s}"
            )
        start = self._clock() + delay_s
        self._closures.append((start, start + duration_s))
        logger.info("%s: interlock closure in %.2f s for %.2f s", self.name, delay_s, duration_s)
        if delay_s == 0:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return  # not in an event loop: the next poll or read updates the value
            self._state_set(self.actual_state())
