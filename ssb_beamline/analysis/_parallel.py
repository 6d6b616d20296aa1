"""Run a function over pixel chunks on a small thread pool.

numpy releases the GIL inside ufuncs and BLAS calls, so threads over pixel
chunks scale on the beamline's few cores.  BLAS is limited to one thread per
worker (when ``threadpoolctl`` is importable) to avoid oversubscription.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

__all__ = ["default_workers", "iter_chunks", "prepare_pool", "run_chunks"]

#: Default number of pixels per chunk: a (100, 16384) float32 block is 6.5 MB.
#: Smaller chunks fit the caches better but pay the per-call overhead of the
#: ~100 numpy calls per chunk more often (measured best: 16384-32768).
DEFAULT_CHUNK_PIXELS = 16384

_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()


def default_workers() -> int:
    """Number of worker threads: the CPUs this process may use (at most 8).

    Examples
    --------
    >>> default_workers() >= 1
    True
    """
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def iter_chunks(n_pixels: int, chunk: int) -> Iterator[slice]:
    """Yield slices of at most ``chunk`` items covering ``range(n_pixels)``.

    Examples
    --------
    >>> list(iter_chunks(5, 2))
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    chunk = max(1, int(chunk))
    for start in range(0, n_pixels, chunk):
        yield slice(start, min(start + chunk, n_pixels))


_CONTROLLER: object | None = None


def _blas_single_thread():
    """Limit BLAS to one thread.

    The controller is built once: introspecting the
    loaded libraries costs ~5 ms, more than a whole absorbance frame).
    """
    global _CONTROLLER  # noqa: PLW0603
    with _POOL_LOCK:
        if _CONTROLLER is None:
            _CONTROLLER = _new_controller()
    if _CONTROLLER is False:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return _CONTROLLER.limit(limits=1, user_api="blas")


def _new_controller() -> object:
    """threadpoolctl's controller, or False without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - optional
        return False
    return ThreadpoolController()


def _pool(workers: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_SIZE  # noqa: PLW0603
    with _POOL_LOCK:  # the warm-up thread may build it while a caller does
        if _POOL is None or workers > _POOL_SIZE:
            _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ssb-analysis")
            _POOL_SIZE = workers
        return _POOL


def prepare_pool(workers: int | None = None, *, blas_controller: bool = True) -> None:
    """Create the worker threads and the BLAS thread controller now, not on first use.

    Both are built once per process (the controller inspects the loaded libraries,
    about 60 ms); :func:`~._jit.warm_up` calls this off the critical path.

    Parameters
    ----------
    workers : int, optional
        Worker threads to start (default :func:`default_workers`).
    blas_controller : bool, default True
        Also build the BLAS controller (False: only the threads, for work that
        does no matrix products on several threads, like the compiled joint pass).

    Examples
    --------
    >>> prepare_pool(1)
    """
    workers = default_workers() if workers is None else max(1, int(workers))
    if blas_controller:
        with _blas_single_thread():
            pass
    if workers > 1:
        list(_pool(workers).map(int, range(workers)))  # start the threads


def run_chunks(
    func: Callable[[slice], None],
    n_pixels: int,
    chunk: int,
    workers: int | None = None,
    *,
    limit_blas: bool = True,
) -> None:
    """Call ``func(slice)`` for every pixel chunk, in parallel when ``workers > 1``.

    ``workers`` threads (the caller and ``workers - 1`` pool threads) take the
    chunks from one shared queue: a call costs ``workers - 1`` hand-offs to the
    pool, not one per chunk (a 2048 x 2048 frame is 32 chunks of 64 rows, and
    a task hand-off with its wake-up costs tens of microseconds).  Exceptions
    raised in a worker propagate to the caller, after every thread has stopped
    taking chunks.  ``limit_blas``
    limits BLAS to one thread during the call when it runs on several threads
    (skip it when ``func`` does no matrix products); a call of one chunk or one
    worker runs on the caller's thread and leaves BLAS as it is (building the
    limit's controller costs 40-90 ms once per process: a new process's first
    small call, e.g. the edge energies of two references, no longer pays it).

    Examples
    --------
    >>> seen = []
    >>> run_chunks(seen.append, 5, 2, workers=1)
    >>> len(seen)
    3
    """
    workers = default_workers() if workers is None else max(1, int(workers))
    slices = list(iter_chunks(n_pixels, chunk))
    # The per-chunk matrix products are small: one BLAS thread each is fastest and
    # avoids oversubscribing the cores with our own worker threads.
    if workers == 1 or len(slices) == 1:
        for s in slices:
            func(s)
        return
    with _blas_single_thread() if limit_blas else contextlib.nullcontext():
        _run_shared(func, slices, min(workers, len(slices)))


def _run_shared(func: Callable[[slice], None], slices: list[slice], n_threads: int) -> None:
    """Run ``func`` over ``slices`` on the caller and ``n_threads - 1`` pool threads."""
    queue = iter(slices)
    lock = threading.Lock()
    failed = threading.Event()

    def drain() -> None:
        while not failed.is_set():
            with lock:
                s = next(queue, None)
            if s is None:
                return
            try:
                func(s)
            except BaseException:
                failed.set()  # the other threads stop taking chunks
                raise

    futures = [_pool(n_threads).submit(drain) for _ in range(n_threads - 1)]
    try:
        drain()
    finally:
        for f in futures:
            f.exception()  # wait: no thread may still write when the caller returns
    for f in futures:
        f.result()
