"""The rotation stage of the simulated tomography microscope.

:class:`RotationAxis` is a simulated axis whose move logic records the exact
angle at every moment (:class:`TrackedMoveLogic`), so the simulator knows the
true angle of each frame of a fly scan; :class:`TomoStage` carries it with the
sample translations.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from functools import cached_property

from bluesky.protocols import Reading
from ophyd_async.core import (
    SoftSignalBackend,
    StandardReadable,
    TimeoutCalculator,
    soft_signal_rw,
)
from ophyd_async.core import StandardReadableFormat as Format

from .motors import SimAxis, SimAxisMoveLogic
from .stage import translation_axes

__all__ = ["ROTATION_LIMITS_DEG", "RotationAxis", "TomoStage", "TrackedMoveLogic"]

#: Rotation travel, deg.
ROTATION_LIMITS_DEG = (-360.0, 360.0)


@dataclass
class TrackedMoveLogic(SimAxisMoveLogic):
    """`SimAxisMoveLogic` knowing its exact position at any UNIX time (`position_at`)."""

    update_period: float = 0.01
    position: float = 0.0
    trajectory: tuple[float, float, float, float] | None = None
    #: The latest move (start, old, new, duration), kept after it ends: the angle at
    #: a past instant (a camera frame computed late) is known exactly.
    last_trajectory: tuple[float, float, float, float] | None = None

    def _set(self, value: float, stamp: float | None = None) -> None:
        """Publish ``value`` as the readback, time-stamped ``stamp`` (UNIX s; default now).

        Like an encoder readback, value and time stamp must describe the same
        instant. ``readback_set`` stamps the value when it is called, which on a
        loaded machine (or while another thread holds the GIL) can be milliseconds
        after the instant the value was computed for: at 360 deg/s a 1 ms lag is
        0.36 deg of error in every fly-scan angle interpolated from the monitor.
        So the soft signal's reading is set with the instant the value belongs to.
        """
        self.position = value
        backend = getattr(self.readback_set, "__self__", None)
        if stamp is None or not isinstance(backend, SoftSignalBackend):
            self.readback_set(value)
            return
        backend.reading = Reading(
            value=backend.converter.write_value(value), timestamp=stamp, alarm_severity=0
        )
        if backend.callback:
            backend.callback(backend.reading)

    def position_at(self, t: float) -> float:
        """Exact position at UNIX time ``t`` during or after the latest move."""
        trajectory = self.trajectory or self.last_trajectory
        if trajectory is None:
            return self.position
        start, old, new, duration = trajectory
        fraction = min(max((t - start) / duration, 0.0), 1.0)
        return old + (new - old) * fraction

    async def move(self, new_position: float, timeout: TimeoutCalculator) -> None:
        """Ramp linearly to ``new_position``, updating the readback every period."""
        velocity, settle, old = await asyncio.gather(
            self.velocity.get_value(), self.settle_time.get_value(), self.readback.get_value()
        )
        await self.setpoint.set(new_position)
        self.done_set(0)
        try:
            duration = abs(new_position - old) / velocity if velocity > 0 else 0.0
            start = time.time()
            if duration > 0:
                self.trajectory = self.last_trajectory = (start, old, new_position, duration)
                self._set(old, start)  # the move starts from here, now
            else:  # an instant move: no trajectory to remember
                self.last_trajectory = None
            while (now := time.time()) - start < duration:
                self._set(self.position_at(now), now)
                await asyncio.sleep(min(self.update_period, start + duration - now))
            # it arrived at start + duration, however late this line runs
            self._set(new_position, start + duration if duration > 0 else None)
            self.trajectory = None
            if settle > 0:
                await asyncio.sleep(settle)
        finally:
            if self.trajectory is not None:  # stopped mid-move: stay where we are
                now = time.time()
                here = self.position_at(now)
                start, old = self.trajectory[:2]
                self.last_trajectory = (start, old, here, max(now - start, 1e-9))
                self._set(here, now)
                self.trajectory = None
            self.done_set(1)


class RotationAxis(SimAxis):
    """Rotation stage axis (deg) with a fast readback and a maximum velocity.

    ``position_at(t)`` is the exact angle at any instant (the camera sees it); the
    ``user_readback`` signal updates every ``update_period`` s, like an encoder
    readback that is monitored during fly scans.

    Parameters
    ----------
    initial_value : float
        Start angle, deg.
    limits : tuple of float
        Travel limits, deg.
    velocity, max_velocity : float
        Speed (changed by fly scans) and its maximum (``max_velocity`` signal, as on
        EPICS motors), deg/s.
    settle_time, update_period : float
        Settle time after a move and readback update period while moving, s.
    name : str
        Device name.
    """

    def __init__(
        self,
        initial_value: float = 0.0,
        *,
        limits: tuple[float, float] = ROTATION_LIMITS_DEG,
        velocity: float = 30.0,
        max_velocity: float = 360.0,
        settle_time: float = 0.005,
        update_period: float = 0.01,
        name: str = "",
    ) -> None:
        if not 0 < velocity <= max_velocity:
            raise ValueError(f"Need 0 < velocity <= max_velocity, got {velocity}, {max_velocity}")
        self._update_period = update_period
        self._initial = initial_value
        with self.add_children_as_readables(Format.CONFIG_SIGNAL):
            self.max_velocity = soft_signal_rw(float, max_velocity, units="deg/s")
        super().__init__(initial_value, "deg", limits=limits, velocity=velocity,
                         settle_time=settle_time, name=name)  # fmt: skip

    @cached_property
    def movable_logic(self) -> TrackedMoveLogic:
        """Move logic used by `StandardMovable.set`."""
        return TrackedMoveLogic(
            **self.move_logic_signals(), update_period=self._update_period, position=self._initial
        )

    def position_at(self, t: float) -> float:
        """Exact angle (deg) at UNIX time ``t`` (during the current move)."""
        return self.movable_logic.position_at(t)

    def position_now(self) -> float:
        """Exact angle now, deg."""
        return self.position_at(time.time())


class TomoStage(StandardReadable):
    """Sample stage: ``x``, ``y``, ``z`` (um, `SimAxis`) and ``rotation`` (`RotationAxis`)."""

    def __init__(
        self,
        *,
        xy_limits_um: tuple[float, float] = (-5000.0, 5000.0),
        velocity_um_s: float = 5000.0,
        rotation: RotationAxis | None = None,
        settle_time: float = 0.005,
        name: str = "",
    ) -> None:
        with self.add_children_as_readables():
            self.x, self.y, self.z = translation_axes(
                xy_limits_um, xy_limits_um, velocity_um_s, settle_time
            )
            self.rotation = rotation or RotationAxis()
        super().__init__(name=name)
