"""Run a document callback on its own thread so that it never blocks the RunEngine."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

__all__ = ["BackgroundCallback", "CallbackFailedError"]

logger = logging.getLogger(__name__)

_STOP = object()


class CallbackFailedError(RuntimeError):
    """A background callback raised; the documents it failed on are named."""


class BackgroundCallback:
    """Feed documents to ``callback`` from a worker thread, in order.

    The RunEngine only puts documents on a queue; the callback (a tiled writer, a
    live analysis) runs while the acquisition goes on. Failures are never lost:
    each is logged at ERROR level when it happens and kept in :attr:`errors`, and
    :meth:`flush` raises :class:`CallbackFailedError` for them (once).

    Parameters
    ----------
    callback : callable
        ``callback(name, doc)``, called on this object's thread with every
        document in order.
    label : str
        What the callback is, for log messages (``"tiled writer"``).
    """

    def __init__(self, callback: Callable[[str, dict], object], label: str) -> None:
        self.callback = callback
        self.label = label
        self.errors: list[str] = []
        self._reported = 0
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name=f"bg-{label}", daemon=True)
        self._thread.start()

    def __call__(self, name: str, doc: dict) -> None:
        """Queue a document for the worker thread (never blocks the RunEngine)."""
        if not self._thread.is_alive():
            raise CallbackFailedError(f"The {self.label} thread has stopped; cannot accept {name}.")
        self._queue.put((name, doc))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                name, doc = item
                try:
                    self.callback(name, doc)
                except Exception as exc:
                    uid = doc.get("uid") or doc.get("run_start") or ""
                    message = f"{self.label} failed on {name} {uid}: {type(exc).__name__}: {exc}"
                    self.errors.append(message)
                    logger.exception(message)
            finally:
                self._queue.task_done()

    @property
    def pending(self) -> int:
        """Documents not yet handled."""
        return self._queue.unfinished_tasks

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued document is handled; raise for new failures.

        Raises
        ------
        TimeoutError
            If documents are still queued after ``timeout`` seconds.
        CallbackFailedError
            If the callback failed on any document since the last flush.
        """
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        if not done.wait(timeout):
            raise TimeoutError(
                f"The {self.label} still has {self.pending} documents queued after {timeout} s."
            )
        new = self.errors[self._reported :]
        self._reported = len(self.errors)
        if new:
            raise CallbackFailedError(
                f"The {self.label} failed {len(new)} time(s); first: {new[0]}"
            )

    def close(self, timeout: float | None = 60.0) -> None:
        """Handle what is queued, then stop the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)
