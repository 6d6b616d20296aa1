"""Where the live XANES ingest puts its threads on the beamline's few cores (issue 18).

Per image, the callback's thread corrects the frame (a memory-bound sweep, ~3 ms
per 2048 x 2048 frame on one thread) while the frame resolver reads the next frame
ahead on a thread of its own. Two helpers keep the callback's thread short:

- :func:`ingest_workers`: threads for one frame's absorbance, every core but one
  (the read ahead's). Measured on the 2-core node: one thread corrects a frame in
  the same wall time as two (the sweep is bound by memory bandwidth) for half the
  CPU, and leaves the second core to the read.
- :class:`Releaser`: drops objects on a helper thread. A spent flat returns ~20 MB
  to the kernel (its frame block is a mapping of its own), ~0.5 ms per image when
  freed on the callback's thread.

The standard library's ``ThreadPoolExecutor`` does the work; this module only
decides where.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ssb_beamline.analysis._parallel import default_workers

__all__ = ["Releaser", "ingest_workers"]


def ingest_workers() -> int:
    """Threads for one frame's absorbance: the analysis' worker count less one core.

    Examples
    --------
    >>> ingest_workers() >= 1
    True
    """
    return max(1, default_workers() - 1)


class Releaser:
    """Drop lists of objects on one helper thread (started on first use).

    Examples
    --------
    >>> r = Releaser()
    >>> spent = [bytearray(10), bytearray(10)]
    >>> r.release(spent)
    >>> r.close()
    >>> spent
    []
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None

    def release(self, spent: list) -> None:
        """Clear ``spent`` on the helper thread: its items die there if nothing else holds them."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="ingest-release")
        self._pool.submit(spent.clear)

    def close(self) -> None:
        """Wait until everything released so far is dropped; stop the thread."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
