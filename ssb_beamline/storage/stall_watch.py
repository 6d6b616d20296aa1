"""A server that stops answering says why, in its log.

:class:`StallWatch` wraps the tiled ASGI app: it keeps the requests in flight, and a
daemon thread looks at them every second. When one has been in flight for more
than ``threshold_s`` it logs, once per episode, the slow requests (method, path,
age) and the stack of every thread of the server (``faulthandler``), so that a
server hung on a lock or a database shows which lock and which database. It also
registers ``SIGUSR1`` to dump the stacks on demand (``kill -USR1 PID``).

Hand-written because uvicorn and tiled log a request only when it ends; a request
that never ends leaves no trace at all.
"""

from __future__ import annotations

import asyncio
import faulthandler
import itertools
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, TextIO

__all__ = ["StallWatch", "awaited_frames", "dump_stacks_on_signal"]

logger = logging.getLogger(__name__)

#: A request in flight longer than this is reported (with every thread's stack);
#: ``$SSB_STALL_THRESHOLD_S`` overrides it.
STALL_THRESHOLD_S = float(os.environ.get("SSB_STALL_THRESHOLD_S", "15") or 15)
#: At most one report per this many seconds while the stall lasts.
REPORT_EVERY_S = 60.0


def dump_stacks_on_signal(stream: TextIO | None = None) -> bool:
    """Dump every thread's stack to ``stream`` (default stderr) on ``SIGUSR1``.

    Parameters
    ----------
    stream : file, optional
        An open file with a descriptor (``faulthandler`` writes to it directly).

    Returns
    -------
    bool
        False (and nothing done) where the signal does not exist or this is not
        the main thread.
    """
    if not hasattr(signal, "SIGUSR1") or threading.current_thread() is not threading.main_thread():
        return False
    faulthandler.register(signal.SIGUSR1, file=stream or sys.stderr, all_threads=True)
    return True


class StallWatch:
    """ASGI middleware logging requests that take longer than ``threshold_s``.

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    threshold_s : float
        Age of a request at which it is reported.
    stream : file, optional
        Where thread stacks go (default stderr: the server's log).

    Examples
    --------
    >>> async def app(scope, receive, send):
    ...     pass
    >>> watched = StallWatch(app, threshold_s=30.0)
    >>> watched.in_flight()
    []
    >>> watched.close()
    """

    def __init__(
        self, app: Any, threshold_s: float = STALL_THRESHOLD_S, stream: TextIO | None = None
    ) -> None:
        self.app = app
        self.threshold_s = threshold_s
        self._stream = stream
        self._requests: dict[int, tuple[str, str, float]] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._last_report = -float("inf")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="stall-watch", daemon=True)
        self._thread.start()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        request_id = next(self._ids)
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        with self._lock:
            self._requests[request_id] = (
                scope.get("method", "?"),
                scope.get("path", "?"),
                time.monotonic(),
            )
        try:
            await self.app(scope, receive, send)
        finally:
            with self._lock:
                self._requests.pop(request_id, None)

    def in_flight(self) -> list[tuple[str, str, float]]:
        """The requests in flight: (method, path, age in s), oldest first."""
        now = time.monotonic()
        with self._lock:
            found = [(m, p, now - t) for m, p, t in self._requests.values()]
        return sorted(found, key=lambda r: -r[2])

    def check(self) -> bool:
        """Report the slow requests now if there are any (and none was reported lately)."""
        slow = [r for r in self.in_flight() if r[2] > self.threshold_s]
        now = time.monotonic()
        if not slow or now - self._last_report < REPORT_EVERY_S:
            return False
        self._last_report = now
        listed = "; ".join(f"{m} {p} for {age:.0f} s" for m, p, age in slow[:20])
        logger.warning(
            "%d request(s) in flight for over %.0f s (%d in flight in all): %s; "
            "the stacks of every thread follow",
            len(slow),
            self.threshold_s,
            len(self.in_flight()),
            listed,
        )
        stream = self._stream or sys.stderr
        try:
            stream.flush()
            faulthandler.dump_traceback(file=stream, all_threads=True)
        except (OSError, ValueError, RuntimeError):  # no file descriptor: the log line stays
            pass
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._dump_tasks, stream)
        return True

    @staticmethod
    def _dump_tasks(stream: TextIO) -> None:
        """Where each asyncio task of the server waits (runs on its event loop)."""
        tasks = list(asyncio.all_tasks())
        stream.write(f"{len(tasks)} asyncio task(s), where each waits (innermost last):\n")
        waits: dict[tuple[str, ...], int] = {}
        for task in tasks:
            chain = tuple(awaited_frames(task.get_coro())[-5:])
            waits[chain] = waits.get(chain, 0) + 1
        for chain, count in sorted(waits.items(), key=lambda item: -item[1]):
            stream.write(f"  {count} task(s):\n" + "".join(f"    {f}\n" for f in chain))
        stream.flush()

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.check()
            except Exception:  # the watch must never take the server down
                logger.exception("the stall watch failed")

    def close(self) -> None:
        """Stop the watching thread."""
        self._stop.set()


def awaited_frames(coro: Any) -> list[str]:
    """``file:line function`` of each coroutine ``coro`` awaits, outermost first.

    ``Task.print_stack`` shows only the outermost frame of a suspended task; this
    follows the chain of awaits down to where it waits.

    Parameters
    ----------
    coro : coroutine or generator
        E.g. ``task.get_coro()``.

    Returns
    -------
    list of str
        One ``file:line function`` per frame; empty for a finished coroutine.
    """
    frames = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames
