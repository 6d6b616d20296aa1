"""Memory for a replay's frames that costs no page fault per use.

A replay moves gigabytes through memory: 1.7 GB of frames, a 1.7 GB float32
stack, a flat prepared per energy, the normalised stack. Memory the process has
not touched yet costs a page fault per 4 KiB page on first write, and on the
project's virtual machine (which hands freed memory back to its host, and where
numpy's transparent-huge-page requests make each fault compact memory first)
that is the larger part of a replay: ~1-3 s per GB, more than reading the
files. Three tools, each measured on a 100-energy 2048 x 2048 replay:

- :func:`populated_zeros`: a large zeroed array whose pages are mapped by the
  kernel (``MADV_POPULATE_WRITE``, in steps that let other threads map memory
  meanwhile), without huge-page compaction, for the stack and the normalised stack;
- :class:`BlockPool`: buffers for blocks of frames (~32 MiB, which glibc would
  map afresh and unmap on every read) handed out again only when no array
  refers to them any more: every frame handed out is a view whose ``base`` is
  the pool's buffer, so a buffer's reference count says whether any frame,
  block, or pending read still uses it; a frame a caller keeps (a flat, a frame
  waiting for its event) keeps its buffer out of the pool and is never
  overwritten;
- :data:`_OUTPUTS` (a :class:`BlockPool`): the large outputs of an analysis
  call (maps of a 2048 x 2048 image, 4-32 MiB each) in mappings that the next
  call reuses once no array refers to them any more, so a repeated call pays
  no page fault; :func:`ssb_beamline._page_mapping.pooled_empty_many` hands them
  out and maps a first call's fresh pages in the background;
- :func:`keep_freed_memory`: glibc keeps the memory of freed arrays up to 32 MiB
  (flats, frames, temporaries) for the next ones instead of returning it to the
  kernel, so the per-energy arrays of a replay reuse warm pages;
- :func:`no_huge_page_requests`: numpy stops asking the kernel for transparent
  huge pages for its arrays, whose first touch then costs no memory compaction.

No library offers these (numpy's allocator cache stops at 1 KiB blocks). It
imports nothing of the package, so every layer may use it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import mmap
import sys
import threading

import numpy as np

__all__ = [
    "BlockPool",
    "keep_freed_memory",
    "no_huge_page_requests",
    "populated_zeros",
]

logger = logging.getLogger(__name__)

#: Linux's ``MADV_POPULATE_WRITE`` (5.14+): fault every page of a mapping in one call.
_MADV_POPULATE_WRITE = 23
#: Bytes mapped per ``madvise`` call. Each call holds the process's memory-map lock
#: (for reading) while it runs; a thread that maps or unmaps memory meanwhile (a
#: large numpy array, numba loading a kernel) waits for it, and every page fault
#: queues behind that thread. In one call, mapping a replay's 1.7 GB stack on a
#: helper thread stalled the analysis thread for the whole mapping (measured: a
#: 40 MB allocation waited 1.38 s of a 1.43 s mapping of 1 GiB; in 64 MiB calls,
#: 0.30 s). 2 MiB (~1 ms when memory is warm) keeps those waits short.
POPULATE_STEP = 2 * 2**20


#: glibc's ``mallopt`` parameters (malloc.h) and the values set by keep_freed_memory.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD = 32 * 2**20  # glibc's largest; bigger requests are mapped afresh
_TRIM_THRESHOLD = 2**31 - 1  # the largest mallopt takes: give nothing back


@functools.cache  # once per process
def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of returning it (idempotent).

    glibc returns the top of its heap to the kernel once more than a threshold is
    free there (by default twice the largest block it recently freed), so each
    new flat or frame of a replay lands on fresh pages. After this call, blocks
    up to 32 MiB come from the heap and freed ones stay there for the next
    allocation: the process keeps its peak heap size until it ends (a replay's
    per-energy arrays, some hundred MB). Larger arrays are mapped and unmapped
    as before. Process-wide; a no-op (False) where the C library is not glibc.

    Returns
    -------
    bool
        True if glibc took the settings (at the first call; later calls repeat its answer).
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # setting either disables glibc's own adjustment of both, so set both
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) == 1
    return mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1 and ok


@functools.cache  # once per process
def no_huge_page_requests() -> bool:
    """Make numpy stop asking for transparent huge pages for its arrays (idempotent).

    numpy calls ``madvise(MADV_HUGEPAGE)`` on every array of 4 MiB or more. Where
    the kernel defragments on request (``/sys/kernel/mm/transparent_hugepage/defrag``
    ``madvise``, as on the project's VM), the first touch of such memory then
    compacts memory synchronously: measured there, filling a fresh 1 GiB
    ``np.empty`` took 2.6-5.0 s with the request and 0.84 s without (a replay's
    flats, frame blocks and temporaries are such arrays: a 100-energy 2048 x 2048
    replay from files went from 10-13 s to 4-8 s with nothing else changed).
    Arrays work the same either way; only the page size the kernel may pick
    differs. Process-wide (numpy's ``NUMPY_MADVISE_HUGEPAGE=0`` at start-up does
    the same); a no-op (False) where numpy has no such switch.

    Returns
    -------
    bool
        True if numpy took the setting (at the first call; later calls repeat its answer).
    """
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # pragma: no cover - numpy without the switch
        return False
    _set_madvise_hugepage(False)
    return True


def populated_zeros(shape: tuple[int, ...], dtype) -> np.ndarray:
    """Zeros of ``shape`` whose pages are all mapped now, by the kernel.

    A large ``np.zeros``/``np.empty`` is paid for later, one page fault per page
    on first write; numpy also asks the kernel for transparent huge pages, which
    on a long-running virtual machine makes each fault compact memory first
    (measured on the project's 2-core VM, 1.7 GB: 2.2-5.6 s with ``np.empty`` +
    ``fill``, 0.7-1.3 s mapped here). Anonymous memory, ``MADV_POPULATE_WRITE``
    where the kernel has it, else every page written once.

    Arrays of :data:`WARM_MIN_BYTES` or more reuse, zeroed, one of the last
    :data:`WARM_KEEP` such mappings that no array refers to any more (the previous
    run's stack, once its analysis is gone): writing zeros over warm pages costs a
    tenth of mapping fresh ones. The process keeps those mappings until it ends.

    Examples
    --------
    >>> a = populated_zeros((2, 3), np.float32)
    >>> a.shape, a.dtype.name, float(a.sum()), a.flags.writeable
    ((2, 3), 'float32', 0.0, True)
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes >= WARM_MIN_BYTES:
        return _WARM.take(shape, dtype, zero=True)
    return _mapped(nbytes)[:nbytes].view(dtype).reshape(shape)


@functools.cache
def _libc_madvise():
    """libc's ``madvise`` through ctypes (which releases the GIL), or None."""
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):  # pragma: no cover - not a POSIX libc
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise


def populate_in_steps(madvise, address: int, nbytes: int) -> bool:
    """``MADV_POPULATE_WRITE`` over ``nbytes`` at ``address``, :data:`POPULATE_STEP` per call.

    ``madvise`` is :func:`_libc_madvise`'s (ctypes: the GIL is released meanwhile);
    ``address`` is page-aligned. Returns False at the first call that fails (Linux
    < 5.14: EINVAL), the rest left for the first writes to map.
    """
    for start in range(address, address + nbytes, POPULATE_STEP):
        step = min(POPULATE_STEP, address + nbytes - start)
        if madvise(start, step, _MADV_POPULATE_WRITE) != 0:
            return False
    return True


def _populate(memory: mmap.mmap, array: np.ndarray) -> None:
    """Map every page of ``memory`` (viewed as ``array``) now.

    Through ctypes, so other Python threads run meanwhile (a kernel loading), and
    in steps, so that they can map memory meanwhile too (:data:`POPULATE_STEP`).
    """
    madvise = _libc_madvise()
    if madvise is not None and populate_in_steps(madvise, array.ctypes.data, array.nbytes):
        return
    try:
        memory.madvise(_MADV_POPULATE_WRITE)
    except (OSError, ValueError):  # kernel < 5.14: touch every page (zeros already)
        logger.debug("MADV_POPULATE_WRITE unavailable; writing every page")
        array[:: mmap.PAGESIZE] = 0


def _mapped(nbytes: int, *, populate: bool = True) -> np.ndarray:
    """``nbytes`` (at least 1) of zeroed anonymous memory, every page mapped if ``populate``.

    The array returned is the one the views of it name as their ``base``.
    """
    memory = mmap.mmap(-1, max(nbytes, 1), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    array = np.frombuffer(memory, np.uint8)
    if populate:
        _populate(memory, array)
    return array


class BlockPool:
    """Buffers for blocks of frames, reused when no array refers to them any more.

    Parameters
    ----------
    keep : int
        Buffers kept for reuse (more may be in use at once; those are not kept). When
        ``keep`` are kept and none idle fits, a new buffer replaces an idle one.
    max_slack : float, optional
        Reuse a kept buffer only if it is at most this many times the size asked
        for (None: any buffer large enough). Of the idle buffers that qualify,
        the smallest is taken.

    Examples
    --------
    >>> pool = BlockPool(keep=2)
    >>> a = pool.take((2, 3, 3), np.uint16)
    >>> a[:] = 7
    >>> b = pool.take((2, 3, 3), np.uint16)  # `a` is alive: another buffer
    >>> np.shares_memory(a, b), int(a.sum())
    (False, 126)
    >>> address = a.__array_interface__["data"][0]
    >>> del a
    >>> c = pool.take((1, 3, 3), np.uint16)  # `a` is gone: its buffer again
    >>> c.__array_interface__["data"][0] == address
    True
    """

    def __init__(self, keep: int = 4, max_slack: float | None = None) -> None:
        self.keep = keep
        self.max_slack = max_slack
        self._buffers: list[np.ndarray] = []  # raw bytes, each the base of what it hands out
        self._idle: list[int] = []  # reference count of each buffer when nothing uses it
        self._lock = threading.Lock()

    def _refs(self, index: int) -> int:
        return sys.getrefcount(self._buffers[index])

    def take(self, shape: tuple[int, ...], dtype, *, zero: bool = False) -> np.ndarray:
        """A C-contiguous array of ``shape`` and ``dtype``, uninitialised unless ``zero``.

        Its memory comes from a kept buffer no array refers to (large enough),
        else from a new one (kept if fewer than ``keep`` are), its pages mapped.
        """
        array, _ = self._take(shape, dtype, zero=zero, populate=True)
        return array

    def take_unmapped(self, shape: tuple[int, ...], dtype) -> tuple[np.ndarray, np.ndarray | None]:
        """As :meth:`take` (uninitialised), but a new buffer's pages are left unmapped.

        Returns the array and, if its memory is a new buffer, that buffer's bytes
        (a view, to map with ``MADV_POPULATE_WRITE``), else None.
        """
        array, new = self._take(shape, dtype, zero=False, populate=False)
        return array, (None if new is None else new[: array.nbytes])

    def _take(
        self, shape: tuple[int, ...], dtype, *, zero: bool, populate: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        with self._lock:
            index = self._best_idle(nbytes)
            if index is not None:
                array = self._buffers[index][:nbytes].view(dtype).reshape(shape)
                if zero:  # what the last user wrote must not show
                    array.fill(0)
                return array, None
            buffer = _mapped(nbytes, populate=populate)
            self._drop_one_idle_if_full()
            if len(self._buffers) < self.keep:
                self._buffers.append(buffer)
                view = buffer[:nbytes].view(dtype).reshape(shape)
                del buffer
                self._idle.append(self._refs(len(self._buffers) - 1) - 1)  # minus `view`
                return view, view.reshape(-1).view(np.uint8)
        view = buffer[:nbytes].view(dtype).reshape(shape)
        return view, view.reshape(-1).view(np.uint8)

    def _drop_one_idle_if_full(self) -> None:
        """Forget one idle buffer (that did not fit) when ``keep`` are kept: room for a new one."""
        if len(self._buffers) < self.keep:
            return
        for index in range(len(self._buffers)):  # no loop variable: it would count
            if self._refs(index) == self._idle[index]:
                del self._buffers[index], self._idle[index]
                return

    def _best_idle(self, nbytes: int) -> int | None:
        """Index of the smallest idle kept buffer that fits ``nbytes``, or None."""
        most = float("inf") if self.max_slack is None else self.max_slack * max(nbytes, 1)
        best = None
        for index in range(len(self._buffers)):  # no loop variable: it would count
            size = self._buffers[index].nbytes
            smaller = best is None or size < self._buffers[best].nbytes
            if nbytes <= size <= most and smaller and self._refs(index) == self._idle[index]:
                best = index
        return best

    def clear(self) -> None:
        """Forget every buffer (those still in use live on with their arrays)."""
        with self._lock:
            self._buffers.clear()
            self._idle.clear()


#: Zeroed arrays of this size or more come from :data:`_WARM` (see populated_zeros).
WARM_MIN_BYTES = 64 * 2**20
#: Mappings of that size kept for reuse (a stack and its normalised copy).
WARM_KEEP = 2
_WARM = BlockPool(keep=WARM_KEEP)

#: Arrays from ``_page_mapping.pooled_empty_many`` of this size or more come from :data:`_OUTPUTS`.
POOL_MIN_BYTES = 4 * 2**20
#: Mappings kept for those arrays: the maps of two analysis calls (one kept by the
#: caller while the next runs) of ~12 arrays each.
POOL_KEEP = 24
_OUTPUTS = BlockPool(keep=POOL_KEEP, max_slack=2.0)
