"""An EPICS motor-record axis whose failures name the axis and its PV.

`BeamlineAxis` is the stock :class:`ophyd_async.epics.motor.Motor` (limits from the
record's HLM/LLM, put-completion moves, STOP) with one change: a move that does not
finish in time (DMOV never returns to 1, e.g. a stalled or disabled motor) raises
:class:`AxisTimeoutError` naming the axis, its PV and the limit it waited for, instead
of a bare ``TimeoutError``. The timeout stays the stock one (travel / VELO + 2 ACCL +
``DEFAULT_TIMEOUT``), so nothing waits forever.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from dataclasses import dataclass
from functools import cached_property

from ophyd_async.core import DEFAULT_TIMEOUT, TimeoutCalculator
from ophyd_async.epics.motor import Motor, MotorFlyableMovableLogic

__all__ = ["AxisTimeoutError", "BeamlineAxis", "NamedTimeoutMoveLogic"]

#: How long to wait for the STOP put after a timed-out move, s.
STOP_TIMEOUT_S = 2.0


class AxisTimeoutError(TimeoutError):
    """An axis did not finish its move (motor-record DMOV stayed 0) within its timeout."""


@dataclass
class NamedTimeoutMoveLogic(MotorFlyableMovableLogic):
    """Stock motor-record move logic; a timed-out move names the axis and its PV.

    ``margin_s`` is the slack on top of the expected move time (travel / VELO +
    2 ACCL); the stock value is ``DEFAULT_TIMEOUT`` (10 s).

    Parameters
    ----------
    setpoint, readback : SignalRW, SignalR
        The record's ``.VAL`` and ``.RBV``; a timeout names the axis by the readback's
        name and the PV by the setpoint's.
    motor_stop : SignalW
        ``.STOP``, put (best effort, within a few seconds) when a move times out.
    low_limit_travel, high_limit_travel : SignalRW
        User soft limits ``.LLM`` / ``.HLM``, in the record's units (EGU).
    dial_low_limit_travel, dial_high_limit_travel : SignalRW
        Dial soft limits ``.DLLM`` / ``.DHLM``.
    velocity : SignalRW
        ``.VELO``, EGU/s (sets the expected move time).
    acceleration_time : SignalRW
        ``.ACCL``, s.
    motor_done_move : SignalR
        ``.DMOV`` (1 when the move is done).
    max_velocity : SignalR
        ``.VMAX``, EGU/s (fly scans check it).
    motor_egu : SignalR
        ``.EGU``, the record's units.
    margin_s : float, default 10.0
        Slack added to the expected move time, s (``BeamlineAxis.timeout_margin_s``
        sets it; must be > 0).
    """

    margin_s: float = DEFAULT_TIMEOUT

    async def calculate_timeout(self, old_position: float, new_position: float) -> float:
        """Expected move time plus ``margin_s``."""
        expected = await super().calculate_timeout(old_position, new_position)
        return expected - DEFAULT_TIMEOUT + self.margin_s

    async def move(self, new_position: float, timeout: TimeoutCalculator) -> None:
        """Put VAL with completion; raise `AxisTimeoutError` if DMOV does not return."""
        seconds = timeout()
        try:
            await self.setpoint.set(new_position, timeout=seconds)
        except TimeoutError as exc:
            with suppress(Exception):  # best effort: the IOC may be gone
                await asyncio.wait_for(self.motor_stop.set(1), STOP_TIMEOUT_S)
            pv = self.setpoint.source.removeprefix("ca://").removesuffix(".VAL")
            name = self.readback.name  # the axis name (the readback carries it)
            raise AxisTimeoutError(
                f"Axis {name!r} ({pv}) did not finish its move to {new_position:g} within "
                f"{seconds:.1f} s ({pv}.DMOV stayed 0): the motor is stalled, disabled or "
                "much slower than its VELO, or its IOC stopped answering. Check the motor "
                "(amplifier, limit switches, CNEN) and the IOC, then retry; STOP was sent."
            ) from exc


class BeamlineAxis(Motor):
    """An EPICS motor record (``prefix`` without the field, e.g. ``"BL:Mono:Energy"``).

    Parameters
    ----------
    prefix : str
        The motor record's PV without a field (``"BL:Mono:Energy"``, not
        ``"BL:Mono:Energy.VAL"``); ``.VAL``, ``.RBV``, ``.DMOV``, ... are appended.
    name : str, default ""
        Device name; its readback is read as ``name`` (set by :func:`make_epics_txm`).

    Examples
    --------
    >>> axis = BeamlineAxis("SSBSIM:Mono:Energy", name="energy")
    >>> axis.user_readback.source
    'ca://SSBSIM:Mono:Energy.RBV'
    """

    @property
    def timeout_margin_s(self) -> float:
        """Seconds a move may take beyond travel / VELO + 2 ACCL before it times out."""
        return self._logic.margin_s

    @timeout_margin_s.setter
    def timeout_margin_s(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"timeout_margin_s must be > 0 s, got {value}")
        self._logic.margin_s = float(value)

    @cached_property
    def _logic(self) -> NamedTimeoutMoveLogic:
        return NamedTimeoutMoveLogic(
            readback=self.user_readback,
            setpoint=self.user_setpoint,
            motor_stop=self.motor_stop,
            low_limit_travel=self.low_limit_travel,
            high_limit_travel=self.high_limit_travel,
            dial_low_limit_travel=self.dial_low_limit_travel,
            dial_high_limit_travel=self.dial_high_limit_travel,
            velocity=self.velocity,
            acceleration_time=self.acceleration_time,
            motor_done_move=self.motor_done_move,
            max_velocity=self.max_velocity,
            motor_egu=self.motor_egu,
        )
