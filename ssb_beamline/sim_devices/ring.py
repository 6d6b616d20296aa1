"""Simulated storage-ring current: top-up at ~400 mA, with scheduled beam dumps."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from ophyd_async.core import StandardReadable, soft_signal_r_and_setter
from ophyd_async.core import StandardReadableFormat as Format

__all__ = ["RingCurrentModel", "SimRingCurrent"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RingCurrentModel:
    """Ring current versus time in top-up mode, with beam dumps.

    Between injections the current decays linearly from ``top_up_ma +
    ripple_ma`` to ``top_up_ma - ripple_ma`` over ``top_up_period_s`` (a
    sawtooth), then an injection restores it. During a dump the current is
    ``dump_ma``; afterwards it ramps linearly back to the top-up value over
    ``refill_s`` seconds.

    Parameters
    ----------
    top_up_ma : float
        Mean current in top-up mode, mA.
    ripple_ma : float
        Half the peak-to-peak top-up ripple, mA.
    top_up_period_s : float
        Time between two injections, s.
    dump_ma : float
        Current left during a dump, mA.
    refill_s : float
        Time to refill the ring after a dump, s (0: at once).
    """

    top_up_ma: float = 400.0
    ripple_ma: float = 0.5
    top_up_period_s: float = 30.0
    dump_ma: float = 0.0
    refill_s: float = 0.3

    def __post_init__(self) -> None:
        if not self.top_up_ma > 0:
            raise ValueError(f"top_up_ma must be > 0 mA, got {self.top_up_ma}")
        if not 0 <= self.ripple_ma < self.top_up_ma:
            raise ValueError(f"ripple_ma must be in [0, top_up_ma), got {self.ripple_ma}")
        if not self.top_up_period_s > 0 or self.refill_s < 0:
            raise ValueError("top_up_period_s must be > 0 s and refill_s >= 0 s")

    def top_up(self, t_s: float) -> float:
        """Current without dumps at elapsed time ``t_s``, mA."""
        phase = (t_s / self.top_up_period_s) % 1.0
        return self.top_up_ma + self.ripple_ma * (1.0 - 2.0 * phase)

    def current(self, t_s: float, dumps: list[tuple[float, float]]) -> float:
        """Current at elapsed time ``t_s`` given dump intervals ``[(start, end), ...]``, mA."""
        value = self.top_up(t_s)
        for start, end in dumps:
            if start <= t_s < end:
                return self.dump_ma
            if end <= t_s < end + self.refill_s:
                fraction = (t_s - end) / self.refill_s
                value = min(value, self.dump_ma + fraction * (self.top_up(t_s) - self.dump_ma))
        return value


class SimRingCurrent(StandardReadable):
    """Storage-ring current monitor (mA), for suspenders and the incident flux.

    ``current`` is computed at each read from the elapsed time and the dumps
    scheduled with `dump`; while something subscribes to it (a bluesky
    suspender, a monitor) it is also polled every ``poll_period_s``, so the
    subscriber sees a dump end without anyone reading.

    Parameters
    ----------
    model : RingCurrentModel, optional
        Top-up level, ripple, dump level and refill time.
    clock : callable
        Monotonic clock in seconds (for tests); elapsed time counts from creation.
    poll_period_s : float
        Update period of the subscribed signal, s.
    name : str
        Device name; the reading is ``<name>_current`` (``ring_current`` for
        the TXM's device, named ``ring``), whatever the separator.

    Examples
    --------
    >>> ring = SimRingCurrent(name="ring")
    >>> round(ring.current_ma())
    400
    >>> ring.dump(2.0)  # beam lost for 2 s, then refilled
    >>> ring.current_ma() < 1.0
    True
    """

    def __init__(
        self,
        model: RingCurrentModel | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        poll_period_s: float = 0.05,
        name: str = "",
    ) -> None:
        self.model = model or RingCurrentModel()
        self._clock = clock
        self._t0 = clock()
        self._dumps: list[tuple[float, float]] = []
        with self.add_children_as_readables(Format.HINTED_UNCACHED_SIGNAL):
            self.current, self._set_current = soft_signal_r_and_setter(
                float,
                self.model.top_up(0.0),
                units="mA",
                precision=3,
                getter=self.current_ma,
                poll_period=poll_period_s,
            )
        super().__init__()
        if name:
            self.set_name(name, child_name_separator="_")

    def elapsed(self) -> float:
        """Seconds since the device was created."""
        return self._clock() - self._t0

    @property
    def nominal_ma(self) -> float:
        """Top-up current, mA (full flux at the sample)."""
        return self.model.top_up_ma

    @property
    def dumps(self) -> list[tuple[float, float]]:
        """Scheduled dumps as ``(start, end)`` elapsed times, s."""
        return list(self._dumps)

    def current_ma(self, t_s: float | None = None) -> float:
        """Ring current at elapsed time ``t_s`` (default: now), mA."""
        return self.model.current(self.elapsed() if t_s is None else t_s, self._dumps)

    def relative_current(self) -> float:
        """Current now relative to the top-up current (1 in normal operation)."""
        return self.current_ma() / self.model.top_up_ma

    def beam_lost(self, t_s: float | None = None) -> bool:
        """True during a dump (the refill ramp counts as beam back)."""
        t = self.elapsed() if t_s is None else t_s
        return any(start <= t < end for start, end in self._dumps)

    def dump(self, duration_s: float, *, delay_s: float = 0.0) -> None:
        """Lose the beam for ``duration_s`` seconds, starting in ``delay_s`` seconds.

        Called from the RunEngine's event loop (as a `FaultSchedule` does), the
        new current is published at once, so suspenders trip before the next
        plan message; from another thread, subscribers see it at the next poll.
        """
        if not duration_s > 0 or delay_s < 0:
            raise ValueError(
                f"dump needs duration_s > 0 and delay_s >= 0, got {duration_s}, {delay_s}"
            )
        start = self.elapsed() + delay_s
        self._dumps.append((start, start + duration_s))
        logger.info(
            "%s: beam dump at t=%.2f s for %.2f s (refill %.2f s)",
            self.name, start, duration_s, self.model.refill_s,
        )  # fmt: skip
        if delay_s == 0:
            self._publish()

    def clear_dumps(self) -> None:
        """Forget all scheduled dumps (back to top-up now)."""
        self._dumps.clear()
        self._publish()

    def _publish(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # not in an event loop: the next poll or read updates the value
        value = self.current_ma()
        if math.isfinite(value):
            self._set_current(value)
