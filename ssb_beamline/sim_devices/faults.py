"""Faults injected into a simulated scan on a schedule: beam dumps, shutter closures, pauses.

A `FaultSchedule` is a RunEngine document callback. Each `Fault` fires once per
run, either ``at_s`` seconds after the run's start document or right after the
``after_events``-th event of a stream (deterministic: the fault happens between
two plan messages, just after that event was saved)::

    schedule = FaultSchedule(
        [ring_dump(1.0, after_events=3), pause_request(after_events=6)],
        ring=txm.ring_current, fe_shutter=txm.fe_shutter, pause=RE.request_pause,
    )
    RE.subscribe(schedule)

`~ssb_beamline.profiles.simulated.simulated_beamline` does the binding and the
subscription (``faults=`` argument).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

__all__ = [
    "Closable",
    "Dumpable",
    "Fault",
    "FaultKind",
    "FaultSchedule",
    "FiredFault",
    "fe_shutter_closure",
    "pause_request",
    "ring_dump",
]

logger = logging.getLogger(__name__)


class FaultKind(StrEnum):
    """What goes wrong."""

    RING_DUMP = "ring_dump"
    FE_SHUTTER_CLOSURE = "fe_shutter_closure"
    PAUSE = "pause"


class Dumpable(Protocol):
    """A ring-current device that can lose its beam (`SimRingCurrent`)."""

    def dump(self, duration_s: float) -> None:
        """Dump the stored beam for ``duration_s`` seconds."""


class Closable(Protocol):
    """A shutter an interlock can hold closed (`SimShutter`)."""

    def close_for(self, duration_s: float) -> None:
        """Close for ``duration_s`` seconds, then reopen."""


@dataclass(frozen=True)
class Fault:
    """One scheduled fault.

    Parameters
    ----------
    kind : FaultKind
        Ring dump, front-end shutter closure or pause request.
    duration_s : float
        How long the beam is lost or the shutter closed, s (not used by pauses).
    at_s : float, optional
        Fire this many seconds after the run's start document.
    after_events : int, optional
        Fire right after the ``after_events``-th event of ``stream`` (1-based).
    stream : str
        Stream whose events are counted.
    hook : callable, optional
        For pauses: called instead of the schedule's ``pause`` callable.

    Raises
    ------
    ValueError
        Unless exactly one of ``at_s`` / ``after_events`` is given, and valid.
    """

    kind: FaultKind
    duration_s: float = 0.0
    at_s: float | None = None
    after_events: int | None = None
    stream: str = "primary"
    hook: Callable[[], Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FaultKind(self.kind))
        if (self.at_s is None) == (self.after_events is None):
            raise ValueError("A fault needs exactly one trigger: at_s=... or after_events=...")
        if self.at_s is not None and not self.at_s >= 0:
            raise ValueError(f"at_s must be >= 0 s, got {self.at_s}")
        if self.after_events is not None and int(self.after_events) < 1:
            raise ValueError(f"after_events must be >= 1, got {self.after_events}")
        if self.kind != FaultKind.PAUSE and not self.duration_s > 0:
            raise ValueError(f"A {self.kind} needs duration_s > 0, got {self.duration_s}")

    def describe(self) -> str:
        """Short human-readable description."""
        when = (
            f"at {self.at_s:g} s"
            if self.at_s is not None
            else f"after {self.after_events} {self.stream} event(s)"
        )
        length = f" for {self.duration_s:g} s" if self.kind != FaultKind.PAUSE else ""
        return f"{self.kind.value}{length} {when}"


def ring_dump(
    duration_s: float,
    *,
    at_s: float | None = None,
    after_events: int | None = None,
    stream: str = "primary",
) -> Fault:
    """A beam dump: the ring current drops to ~0 for ``duration_s``, then refills."""
    return Fault(FaultKind.RING_DUMP, duration_s, at_s, after_events, stream)


def fe_shutter_closure(
    duration_s: float,
    *,
    at_s: float | None = None,
    after_events: int | None = None,
    stream: str = "primary",
) -> Fault:
    """The front-end (safety) shutter closes for ``duration_s``, then reopens."""
    return Fault(FaultKind.FE_SHUTTER_CLOSURE, duration_s, at_s, after_events, stream)


def pause_request(
    *,
    at_s: float | None = None,
    after_events: int | None = None,
    stream: str = "primary",
    hook: Callable[[], Any] | None = None,
) -> Fault:
    """A pause request (as from Ctrl-C): calls ``hook`` or the schedule's ``pause``."""
    return Fault(FaultKind.PAUSE, 0.0, at_s, after_events, stream, hook)


@dataclass(frozen=True)
class FiredFault:
    """Record of a fault that fired."""

    fault: Fault
    run_uid: str | None
    elapsed_s: float
    events: int


class FaultSchedule:
    """Faults fired during runs, driven by the RunEngine's documents.

    Parameters
    ----------
    faults : iterable of Fault
        The schedule (see `ring_dump`, `fe_shutter_closure`, `pause_request`).
    ring : Dumpable, optional
        Target of ring dumps (``SimTXM.ring_current``).
    fe_shutter : Closable, optional
        Target of front-end shutter closures (``SimTXM.fe_shutter``).
    pause : callable, optional
        Called (on its own thread) for pause requests, e.g. ``RE.request_pause``.
    clock : callable
        Monotonic clock, s.

    Attributes
    ----------
    fired : list of FiredFault
        Every fault fired so far, in order.
    """

    def __init__(
        self,
        faults: Iterable[Fault] = (),
        *,
        ring: Dumpable | None = None,
        fe_shutter: Closable | None = None,
        pause: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.faults: list[Fault] = list(faults)
        self.ring = ring
        self.fe_shutter = fe_shutter
        self.pause = pause
        self.fired: list[FiredFault] = []
        self._clock = clock
        self._t0 = clock()
        self._run_uid: str | None = None
        self._streams: dict[str, str] = {}
        self._counts: Counter[str] = Counter()
        self._done: set[int] = set()
        self._timers: list[asyncio.TimerHandle | threading.Timer] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FaultSchedule([{', '.join(f.describe() for f in self.faults)}])"

    def bind(
        self,
        *,
        ring: Dumpable | None = None,
        fe_shutter: Closable | None = None,
        pause: Callable[[], Any] | None = None,
    ) -> FaultSchedule:
        """Set the targets that are given (others stay); returns the schedule."""
        if ring is not None:
            self.ring = ring
        if fe_shutter is not None:
            self.fe_shutter = fe_shutter
        if pause is not None:
            self.pause = pause
        return self

    def add(self, fault: Fault) -> None:
        """Add a fault (a timed one counts from the next start document)."""
        self.faults.append(fault)

    def counts(self) -> dict[str, int]:
        """Events seen per stream in the current run."""
        return dict(self._counts)

    def pending(self) -> list[Fault]:
        """Faults that have not fired in the current run."""
        return [f for i, f in enumerate(self.faults) if i not in self._done]

    def __call__(self, name: str, doc: dict) -> None:
        """Document callback: arm at ``start``, count events, disarm at ``stop``."""
        if name == "start":
            self.arm(doc.get("uid"))
        elif name == "descriptor":
            self._streams[doc["uid"]] = doc.get("name", "primary")
        elif name in ("event", "event_page"):
            stream = self._streams.get(doc["descriptor"], "?")
            n = len(doc["seq_num"]) if name == "event_page" else 1
            self._counts[stream] += n
            for index, fault in enumerate(self.faults):
                if (
                    fault.after_events is not None
                    and fault.stream == stream
                    and self._counts[stream] >= fault.after_events
                ):
                    self._fire(index)
        elif name == "stop":
            self.disarm()

    def arm(self, run_uid: str | None = None) -> None:
        """Start a run: reset counts and start the timers of timed faults.

        Timers run on the calling thread's event loop when there is one (the
        RunEngine's, for a document callback), else on threads.
        """
        self.disarm()
        self._run_uid = run_uid
        self._t0 = self._clock()
        self._streams.clear()
        self._counts.clear()
        self._done.clear()
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        for index, fault in enumerate(self.faults):
            if fault.at_s is None:
                continue
            if loop is not None:
                self._timers.append(loop.call_later(fault.at_s, self._fire, index))
            else:
                timer = threading.Timer(fault.at_s, self._fire, args=(index,))
                timer.daemon = True
                timer.start()
                self._timers.append(timer)

    def disarm(self) -> None:
        """Cancel the timers of faults that have not fired."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def _fire(self, index: int) -> None:
        with self._lock:
            if index in self._done:
                return
            self._done.add(index)
        fault = self.faults[index]
        record = FiredFault(
            fault, self._run_uid, self._clock() - self._t0, self._counts[fault.stream]
        )
        self.fired.append(record)
        logger.warning("Injecting fault: %s (t=%.2f s)", fault.describe(), record.elapsed_s)
        try:
            self.fire(fault)
        except Exception:
            logger.exception("Fault %s could not be injected", fault.describe())

    def fire(self, fault: Fault) -> None:
        """Inject ``fault`` now (pause hooks run on their own thread).

        Raises
        ------
        RuntimeError
            If the schedule has no target for this kind of fault.
        """
        if fault.kind == FaultKind.RING_DUMP:
            if self.ring is None:
                raise RuntimeError("No ring-current device bound to the fault schedule")
            self.ring.dump(fault.duration_s)
        elif fault.kind == FaultKind.FE_SHUTTER_CLOSURE:
            if self.fe_shutter is None:
                raise RuntimeError("No front-end shutter bound to the fault schedule")
            self.fe_shutter.close_for(fault.duration_s)
        else:
            hook = fault.hook or self.pause
            if hook is None:
                raise RuntimeError("No pause hook bound to the fault schedule")
            # RE.request_pause blocks until the RunEngine's loop handles it: never
            # call it from that loop (document callbacks run there).
            threading.Thread(target=_call_logged, args=(hook,), daemon=True).start()


def _call_logged(hook: Callable[[], Any]) -> None:
    try:
        hook()
    except Exception:
        logger.exception("Pause hook %r failed", hook)
