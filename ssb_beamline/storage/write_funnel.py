"""Catalog writes of a SQLite-backed tiled server, one at a time and first come first served.

A SQLite catalog has one write lock. tiled's requests take it from several pooled
connections at once, and SQLite hands it over by busy-waiting: each waiter sleeps
and polls, so a writer that arrived first may keep losing to later ones, and on a
loaded machine a transaction that holds the lock while its request waits for the
event loop makes the others poll until the 25 s busy timeout ends in "database is
locked" (HTTP 500). Seen in a fresh-clone full run: two demos on one served
catalog, their live writers updating data sources mid-scan while nine
results arrays were being created, eleven requests in flight for over 15 s, then
one 500.

:class:`WriteFunnel` queues the requests that write the catalog (or the shared
DuckDB table storage) in the event loop: they reach SQLite one at a time, in the
order they arrived, and the wait happens in the event loop instead of in polling
threads. Writes under ``results/`` go before other waiting writes (each kind in
arrival order): after a scan the writer's tail (baseline and dark streams,
registrations, a dozen writes) and the upload of its results arrive together, and
the results, which a scientist waits for, should not queue behind the raw run's
bookkeeping (a few of its writes wait a little longer). Reads (GET, HEAD) and
the array data PUTs (bytes into files, not the catalog; the largest requests)
pass untouched and stay concurrent. A request that waited longer than
``max_wait_s`` goes ahead anyway (logged), so one request that never ends cannot
stop every writer. A PostgreSQL catalog needs none of this (row locks, no
busy-wait): the server does not install it there.

Hand-written because neither tiled nor SQLAlchemy offers a fair writer queue for
SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

__all__ = ["FUNNEL_WAIT_S", "WriteFunnel", "is_catalog_write", "is_results_write"]

logger = logging.getLogger(__name__)

#: Longest wait in the funnel before a write goes ahead unqueued (s); above
#: SQLite's own 25 s busy timeout so that a queued write normally waits its turn.
FUNNEL_WAIT_S = 60.0
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: PUTs that only write an array's bytes into its file (no catalog row changes).
_DATA_ONLY_PUTS = ("/array/full/", "/array/block/", "/array/many/")


def is_catalog_write(method: str, path: str) -> bool:
    """Whether a request writes the catalog or the shared table storage.

    Parameters
    ----------
    method : str
        The HTTP method.
    path : str
        The request path (``/api/v1/...``).

    Examples
    --------
    >>> is_catalog_write("POST", "/api/v1/metadata/results/uid")
    True
    >>> is_catalog_write("PUT", "/api/v1/array/full/results/uid/v1/soc")
    False
    >>> is_catalog_write("GET", "/api/v1/metadata/results")
    False
    """
    if method not in _WRITE_METHODS:
        return False
    return not (method == "PUT" and any(part in path for part in _DATA_ONLY_PUTS))


def is_results_write(path: str) -> bool:
    """Whether a catalog write belongs to the results container (it goes first).

    Parameters
    ----------
    path : str
        The request path (``/api/v1/...``).

    Examples
    --------
    >>> is_results_write("/api/v1/metadata/results/uid/v1")
    True
    >>> is_results_write("/api/v1/table/partition/raw/uid/primary/internal")
    False
    """
    return "/results/" in path


class _Turns:
    """One holder at a time; waiting results writes before the others, each kind FIFO."""

    def __init__(self) -> None:
        self._held = False
        self._queues: tuple[deque, deque] = (deque(), deque())  # results first

    async def acquire(self, first: bool) -> None:
        if not self._held and not any(self._queues):
            self._held = True
            return
        turn = asyncio.get_running_loop().create_future()
        queue = self._queues[0 if first else 1]
        queue.append(turn)
        try:
            await turn
        except BaseException:  # e.g. the funnel's timeout
            if turn.done() and not turn.cancelled():
                self.release()  # handed over just before the cancellation: pass it on
            elif turn in queue:
                queue.remove(turn)
            raise

    def release(self) -> None:
        for queue in self._queues:
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)  # handed over: still held
                    return
        self._held = False


class WriteFunnel:
    """ASGI middleware: catalog writes one at a time, results first, each in arrival order.

    Parameters
    ----------
    app : ASGI application
        The tiled server application.
    max_wait_s : float
        Longest wait for the funnel before a write goes ahead anyway (logged).

    Examples
    --------
    >>> async def app(scope, receive, send):
    ...     pass
    >>> funnel = WriteFunnel(app, max_wait_s=5.0)
    >>> funnel.waiting
    0
    """

    def __init__(self, app: Any, max_wait_s: float = FUNNEL_WAIT_S) -> None:
        self.app = app
        self.max_wait_s = max_wait_s
        self.waiting = 0
        self._turns = _Turns()

    @contextlib.asynccontextmanager
    async def turn(self, first: bool):
        """Hold the funnel (waiting for it) inside a request that passed it untouched.

        The batch route (:mod:`.array_batch`) writes array data outside the funnel
        and creates its table nodes inside it. Unlike a funnelled request, it waits
        as long as it takes.

        Parameters
        ----------
        first : bool
            A results write (goes before the other waiting writes).
        """
        await self._turns.acquire(first)
        try:
            yield
        finally:
            self._turns.release()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or not is_catalog_write(
            scope.get("method", ""), scope.get("path", "")
        ):
            await self.app(scope, receive, send)
            return
        turns = self._turns
        t0 = time.monotonic()
        self.waiting += 1
        try:
            async with asyncio.timeout(self.max_wait_s):  # leaves the turn free if it fires
                await turns.acquire(is_results_write(scope.get("path", "")))
        except TimeoutError:
            logger.warning(
                "%s %s waited %.0f s for the catalog write funnel; going ahead unqueued",
                scope.get("method"), scope.get("path"), time.monotonic() - t0,
            )  # fmt: skip
            await self.app(scope, receive, send)
            return
        finally:
            self.waiting -= 1
        try:
            await self.app(scope, receive, send)
        finally:
            turns.release()
