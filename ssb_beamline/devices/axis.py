"""An EPICS motor-record axis whose failures name the axis and its PV.

`BeamlineAxis` is the stock :class:`ophyd_async.epics.motor.Motor` (limits from the
record's HLM/LLM, put-completion moves, STOP) with one change: a move that does not
finish in time (DMOV never returns to 1, e.g. a stalled or disabled motor) raises
:class:`AxisTimeoutError` naming the axis, its PV and the limit it waited for, instead
of a bare ``TimeoutError``. The timeout stays the stock one (travel / VELO + 2 ACCL +
``DEFAULT_TIMEOUT``), so nothing waits forever.

And changes for speed, why: the stock ``Motor.set`` reads, before its put, the
readback, units, the four limits, velocity and acceleration with Channel Access gets
(four rounds one after the other), and every bluesky event reads the readback with
another get; each is a round trip through both processes, and on a loaded machine a
3 eV energy step spent longer in them than in moving. Here the fields a move and a
reading need (``RBV``, ``DMOV``, ``HLM``/``LLM``, ``DHLM``/``DLLM``, ``VELO``,
``ACCL``, ``RDBD``) are kept monitored from connection on (`BeamlineAxis.MONITORED`),
as classic ophyd's ``EpicsMotor`` and every EPICS display do, so ophyd-async serves
``get_value`` and ``read`` from the monitors' cache: no round trip before the put, none
per reading. The units and precision (``EGU``/``PREC``) are read once.

* The limit check still runs before every move, on the limits the IOC last posted
  (a limit changed a few milliseconds before a move may not have arrived: the
  record itself refuses a ``VAL`` outside its limits, the last word either way).
* A put's completion can reach the client before the last readback update (caproto
  batches monitor updates; they keep their order among themselves), so after the put
  `NamedTimeoutMoveLogic.move` waits until the monitored ``DMOV`` has returned to 1
  (posted after the final ``RBV``) or the readback is within ``RDBD`` of the target:
  the event read after a move shows where the axis arrived.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cached_property

from ophyd_async.core import DEFAULT_TIMEOUT, SignalR, TimeoutCalculator
from ophyd_async.epics.motor import Motor, MotorFlyableMovableLogic, MotorLimitsError

from .monitored import KeepsMonitors

__all__ = ["AxisTimeoutError", "BeamlineAxis", "NamedTimeoutMoveLogic"]

logger = logging.getLogger(__name__)

#: How long to wait for the STOP put after a timed-out move, s.
STOP_TIMEOUT_S = 2.0
#: After a move's put completed, how long to wait at most for the monitored DMOV (or
#: readback) to show the arrival before reading on with a warning, s.
ARRIVAL_MONITOR_TIMEOUT_S = 5.0


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
    deadband : SignalR, optional
        ``.RDBD`` (retry deadband): a monitored readback this close to the target
        counts as arrived (None: only DMOV ends a move).
    """

    margin_s: float = DEFAULT_TIMEOUT
    #: ``.RDBD`` (retry deadband): a readback this close to the target has arrived.
    deadband: SignalR[float] | None = None
    #: DMOV = 1 updates received (None: DMOV is not monitored).
    _dmov_done: int | None = field(default=None, init=False, repr=False)
    _dmov_event: asyncio.Event | None = field(default=None, init=False, repr=False)
    _units_precision: tuple[str | None, int | None] | None = field(
        default=None, init=False, repr=False
    )
    #: (task, target, velocity, acceleration time) read by the last `check_move`.
    _prefetched: tuple | None = field(default=None, init=False, repr=False)

    def watch_done(self) -> None:
        """Count the monitored ``DMOV`` = 1 updates, wake on readback ones (in the loop)."""
        if self._dmov_done is None:
            self._dmov_done, self._dmov_event = 0, asyncio.Event()
            self.motor_done_move.subscribe_reading(self._on_done_move)
            self.readback.subscribe_reading(self._on_readback)

    def _on_done_move(self, readings: dict) -> None:
        (reading,) = readings.values()
        if reading["value"] and self._dmov_done is not None and self._dmov_event is not None:
            self._dmov_done += 1
            self._dmov_event.set()

    def _on_readback(self, readings: dict) -> None:
        if self._dmov_event is not None:
            self._dmov_event.set()

    async def _arrived(self, done_before: int, target: float) -> None:
        """Wait until the monitors show the end of the move whose put just completed."""
        assert self._dmov_event is not None
        tolerance = abs(await self.deadband.get_value()) if self.deadband is not None else 0.0
        tolerance += 1e-12 * max(1.0, abs(target))
        deadline = time.monotonic() + ARRIVAL_MONITOR_TIMEOUT_S
        while self._dmov_done == done_before:  # type: ignore[comparison-overlap]
            if abs(await self.readback.get_value() - target) <= tolerance:
                return
            self._dmov_event.clear()
            try:
                await asyncio.wait_for(self._dmov_event.wait(), deadline - time.monotonic())
            except TimeoutError:
                logger.warning(
                    "%s: no DMOV update within %.0f s after the move to %s completed; its "
                    "next reading may show the readback from before the arrival",
                    self.readback.name, ARRIVAL_MONITOR_TIMEOUT_S, target,
                )  # fmt: skip
                return

    async def get_units_precision(self) -> tuple[str | None, int | None]:
        """``EGU`` and ``PREC`` of the readback, read once per device."""
        if self._units_precision is None:
            self._units_precision = await super().get_units_precision()
        return self._units_precision

    async def check_move(self, new_position: float) -> None:
        """The stock soft-limit check, its CA gets in one round.

        Raises ``MotorLimitsError`` (the stock message) if the current or the new
        position is outside ``[LLM, HLM]``, unless the dial limits are both 0 (no
        limits, as the motor record treats them). The velocity and acceleration read
        with the limits serve the timeout of this same move (same task, same target).
        """
        low, high, dial_low, dial_high, old, velocity, acceleration = await asyncio.gather(
            self.low_limit_travel.get_value(), self.high_limit_travel.get_value(),
            self.dial_low_limit_travel.get_value(), self.dial_high_limit_travel.get_value(),
            self.readback.get_value(), self.velocity.get_value(),
            self.acceleration_time.get_value(),
        )  # fmt: skip
        self._prefetched = (asyncio.current_task(), new_position, velocity, acceleration)
        if dial_low == 0 and dial_high == 0:
            return
        if not high >= old >= low or not high >= new_position >= low:
            units, _ = await self.get_units_precision()
            raise MotorLimitsError(
                f"{self.readback.name} motor trajectory for requested fly/move is from "
                f"{old}{units} to {new_position}{units} but motor limits are "
                f"{low}{units} <= x <= {high}{units} dial limits are "
                f"{dial_low}{units} <= x <= {dial_high}."
            )

    async def calculate_timeout(self, old_position: float, new_position: float) -> float:
        """Expected move time (travel / VELO + 2 ACCL) plus ``margin_s``."""
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None and prefetched[:2] == (asyncio.current_task(), new_position):
            velocity, acceleration = prefetched[2:]
        else:  # not right after this move's check (e.g. a fly scan's kickoff): read them
            velocity, acceleration = await asyncio.gather(
                self.velocity.get_value(), self.acceleration_time.get_value()
            )
        if velocity == 0:
            raise ValueError(f"Motor {self.readback.name} has zero velocity.")
        return abs((new_position - old_position) / velocity) + 2 * acceleration + self.margin_s

    async def move(self, new_position: float, timeout: TimeoutCalculator) -> None:
        """Put VAL with completion; raise `AxisTimeoutError` if DMOV does not return."""
        seconds = timeout()
        done_before = self._dmov_done
        try:
            await self.setpoint.set(new_position, timeout=seconds)
            if done_before is not None:
                await self._arrived(done_before, new_position)
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


class BeamlineAxis(KeepsMonitors, Motor):
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

    #: Fields kept monitored from the first connection on (attribute names), so that a
    #: move's checks and each reading are served from the monitors (see module doc).
    MONITORED = ("user_readback", "motor_done_move", "low_limit_travel", "high_limit_travel",
                 "dial_low_limit_travel", "dial_high_limit_travel", "velocity",
                 "acceleration_time", "deadband")  # fmt: skip

    def monitored_signals(self) -> list[SignalR]:
        """The `MONITORED` fields (see :class:`~.monitored.KeepsMonitors`)."""
        return [getattr(self, attr) for attr in self.MONITORED]

    def monitors_started(self) -> None:
        """Let the move logic follow DMOV from the monitor."""
        self._logic.watch_done()

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
            deadband=self.deadband,
        )
