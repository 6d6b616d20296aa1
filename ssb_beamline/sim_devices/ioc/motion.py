"""Trapezoid-free linear motion of one simulated axis, exact at any instant.

`AxisMotion` is the physics of a motor inside the IOC: it knows where the axis
is at any UNIX time (``position_at``), so the camera can form a frame at the
position the axis holds at mid-exposure, also while it moves (fly scans). The
motor-record PVs (`~ssb_beamline.sim_devices.ioc.motors.MotorRecord`) publish
its readback and done flags; this module has no Channel Access in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

__all__ = ["AxisMotion"]


@dataclass
class AxisMotion:
    """Position of one axis versus time: constant-velocity moves, stoppable, stallable.

    Parameters
    ----------
    position : float
        Start position (user units).
    velocity : float
        Speed used by the next move, units/s (> 0).

    Attributes
    ----------
    stalled : bool
        When True, a move never finishes: the axis stops where it is and
        ``DMOV`` stays 0 (a fault for tests: a motor whose done flag never comes).
    """

    position: float = 0.0
    velocity: float = 1.0
    stalled: bool = False
    _trajectory: tuple[float, float, float, float] | None = None
    _stop: asyncio.Event | None = None

    def position_at(self, t: float) -> float:
        """Exact position at UNIX time ``t`` (the current position outside a move)."""
        if self._trajectory is None:
            return self.position
        start, old, new, duration = self._trajectory
        fraction = min(max((t - start) / duration, 0.0), 1.0) if duration > 0 else 1.0
        return old + (new - old) * fraction

    def position_now(self) -> float:
        """Exact position now."""
        return self.position_at(time.time())

    @property
    def moving(self) -> bool:
        """True during a move."""
        return self._trajectory is not None

    def stop(self) -> None:
        """Stop the move in progress where the axis is now."""
        if self._stop is not None:
            self._stop.set()

    async def move(self, target: float, publish, update_period: float = 0.02) -> bool:
        """Ramp to ``target`` at ``velocity``; ``await publish(position, t)`` every period.

        ``t`` is the UNIX time at which the axis held ``position`` (not the time the
        value is posted, which a loaded machine delays): a client interpolating the
        monitored readback, such as a fly scan recovering frame angles, needs the
        instant of the value. The start position is posted with the start time (the
        readback before a move carries the time of the previous update: a frame taken
        between the two would be interpolated as if the axis had crept), the final
        position with the arrival time.

        Returns True if the target was reached, False if stopped. A stalled
        axis freezes at the start of the move and waits until stopped.
        """
        self.stop()
        stop = self._stop = asyncio.Event()
        old = self.position_now()
        duration = abs(target - old) / self.velocity if self.velocity > 0 else 0.0
        start = time.time()
        self._trajectory = (start, old, target, duration)
        reached = False
        try:
            if self.stalled:
                self._trajectory = None
                self.position = old
                await stop.wait()
                return False
            if duration > 0:
                await publish(old, start)
            while (now := time.time()) - start < duration and not stop.is_set():
                await publish(self.position_at(now), now)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), min(update_period, start + duration - now))
            reached = not stop.is_set()
        finally:
            current = self._stop is stop  # False when a newer move took over
            ended = start + duration if reached else time.time()
            if current:
                self.position = target if reached else self.position_at(ended)
                self._trajectory = None
                self._stop = None
        if current:
            await publish(self.position, ended)
        return reached
