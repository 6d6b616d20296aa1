"""Suspenders on the ring current and the front-end shutter, and rewind-safe checkpoints.

bluesky suspenders watch a signal through ophyd (v1) style ``subscribe`` /
``clear_sub`` / ``get``; `SignalWatch` gives an ophyd-async signal that face.
When a suspender trips, the RunEngine rewinds to the last checkpoint and takes
again what followed, once the beam is back. `checkpoint_after_each_event` puts a
checkpoint after every saved event, so nothing already stored is taken twice::

    RE.preprocessors.append(checkpoint_after_each_event)
    for suspender in beamline_suspenders(txm.ring_current, txm.fe_shutter):
        RE.install_suspender(suspender)
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Generator, Iterable
from typing import Any

import bluesky.preprocessors as bpp
from bluesky.run_engine import get_bluesky_event_loop
from bluesky.suspenders import SuspendBoolLow, SuspenderBase, SuspendFloor
from bluesky.utils import Msg, ensure_generator, single_gen
from ophyd_async.core import SignalR

from ssb_beamline.devices.shutter import is_open

__all__ = ["SIGNAL_ATTRS", "SignalWatch", "beamline_suspenders", "checkpoint_after_each_event"]

logger = logging.getLogger(__name__)

#: Readback attribute names tried, in order, to find a device's signal.
SIGNAL_ATTRS = ("current", "state", "readback", "user_readback", "value")


def _run_in_loop(loop: asyncio.AbstractEventLoop, func: Callable[[], Any]) -> Any:
    """Call ``func`` in ``loop`` (ophyd-async subscriptions need a running loop)."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        return func()

    async def call() -> Any:
        return func()

    return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=10.0)


class SignalWatch:
    """An ophyd-async ``SignalR`` seen as an ophyd (v1) signal by bluesky suspenders.

    Parameters
    ----------
    signal : SignalR
        The signal to watch.
    transform : callable, optional
        Applied to each value before the suspender sees it (e.g. `is_open`).
    loop : asyncio event loop, optional
        The loop the signal lives in; default the RunEngine's
        (``bluesky.run_engine.get_bluesky_event_loop()``).
    """

    def __init__(
        self,
        signal: SignalR,
        transform: Callable[[Any], Any] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.signal = signal
        self.transform = transform or (lambda value: value)
        self._loop = loop
        self._callbacks: dict[Callable, Callable] = {}
        self._value: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SignalWatch({self.name!r})"

    @property
    def name(self) -> str:
        """Name of the watched signal."""
        return self.signal.name

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop subscriptions are made in."""
        loop = self._loop or get_bluesky_event_loop()
        if loop is None:
            raise RuntimeError("No RunEngine event loop: create a RunEngine first or pass loop=")
        return loop

    def get(self) -> Any:
        """Last value seen (transformed)."""
        return self._value

    def subscribe(
        self, callback: Callable[..., Any], event_type: str | None = None, run: bool = True
    ) -> None:
        """Call ``callback(value=..., timestamp=...)`` at every update (and now)."""

        def on_reading(readings: dict[str, Any]) -> None:
            reading = readings[self.signal.name]
            value = self.transform(reading["value"])
            self._value = value
            callback(value=value, timestamp=reading.get("timestamp"))

        with self._lock:
            self._callbacks[callback] = on_reading
        _run_in_loop(self.loop, lambda: self.signal.subscribe_reading(on_reading))

    def clear_sub(self, callback: Callable[..., Any]) -> None:
        """Stop calling ``callback``."""
        with self._lock:
            on_reading = self._callbacks.pop(callback, None)
        if on_reading is not None:
            _run_in_loop(self.loop, lambda: self.signal.clear_sub(on_reading))


def _watchable(source: Any, transform: Callable[[Any], Any] | None = None) -> Any:
    """A suspender-ready signal from a device, an ophyd-async signal or an ophyd signal."""
    if not isinstance(source, SignalR):
        signals = [getattr(source, attr, None) for attr in SIGNAL_ATTRS]
        signals = [s for s in signals if isinstance(s, SignalR)]
        if signals:
            source = signals[0]
    if isinstance(source, SignalR):
        return SignalWatch(source, transform)
    if hasattr(source, "subscribe") and hasattr(source, "clear_sub"):
        return source  # an ophyd (v1) signal: bluesky knows it
    raise TypeError(
        f"Cannot watch {source!r}: not a signal, nor a device with one of {SIGNAL_ATTRS}"
    )


def beamline_suspenders(
    ring_current: Any,
    fe_shutter: Any,
    *,
    ring_floor_ma: float = 300.0,
    resume_ma: float = 390.0,
    sleep_s: float = 1.0,
) -> list[SuspenderBase]:
    """Suspenders that hold the scan while the beam is off, and resume after it returns.

    Parameters
    ----------
    ring_current : device or signal
        Ring current in mA (``SimRingCurrent`` or its ``current`` signal, an
        ophyd-async signal, or an ophyd signal). None: no ring suspender.
    fe_shutter : device or signal
        Front-end shutter (``SimShutter`` or its ``state`` signal); open when
        its value is "Open" (any case) or truthy. None: no shutter suspender.
    ring_floor_ma : float
        Suspend when the ring current falls below this, mA.
    resume_ma : float
        Resume once it is back above this, mA (>= ``ring_floor_ma``).
    sleep_s : float
        Wait this long after the beam is back before resuming, s (thermal settling).

    Returns
    -------
    list of bluesky suspenders
        ``SuspendFloor`` on the ring current, ``SuspendBoolLow`` on "front-end
        shutter open"; install each with ``RE.install_suspender``.

    Raises
    ------
    ValueError
        If ``resume_ma < ring_floor_ma`` or ``sleep_s < 0``.
    """
    if resume_ma < ring_floor_ma:
        raise ValueError(
            f"resume_ma ({resume_ma} mA) must be >= ring_floor_ma ({ring_floor_ma} mA)"
        )
    if sleep_s < 0:
        raise ValueError(f"sleep_s must be >= 0 s, got {sleep_s}")
    suspenders: list[SuspenderBase] = []
    if ring_current is not None:
        suspenders.append(
            SuspendFloor(
                _watchable(ring_current),
                ring_floor_ma,
                resume_thresh=resume_ma,
                sleep=sleep_s,
                tripped_message=f"ring current below {ring_floor_ma:g} mA (beam lost)",
            )
        )
    if fe_shutter is not None:
        suspenders.append(
            SuspendBoolLow(
                _watchable(fe_shutter, is_open),
                sleep=sleep_s,
                tripped_message="front-end shutter closed",
            )
        )
    return suspenders


def checkpoint_after_each_event(plan: Iterable[Msg]) -> Generator[Msg, Any, Any]:
    """Insert a checkpoint after every ``save``: a rewind never retakes a stored event.

    A pause or a suspension rewinds the plan to its last checkpoint. Plans that
    checkpoint only before each scan point (or not inside a series of darks)
    would take again, and store twice, any event saved since. Use as a
    RunEngine preprocessor (``RE.preprocessors.append(...)``) or a wrapper.

    Parameters
    ----------
    plan : iterable of Msg
        The plan to wrap.
    """

    def after_save(msg: Msg) -> tuple[None, Any]:
        if msg.command == "save":
            return None, single_gen(Msg("checkpoint"))
        return None, None

    return (yield from bpp.plan_mutator(ensure_generator(plan), after_save))
