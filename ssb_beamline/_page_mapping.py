"""A call's fresh output pages mapped by background threads while the call works.

A new process's first :func:`~ssb_beamline.analysis.analyse_xanes_stack` at
2048 x 2048 needs ~170 MB of fresh output pages (later calls reuse them, from the
pool ``ssb_beamline._memory._OUTPUTS``). Mapping them costs the
kernel ~60 ms on the project's 2-core VM, on the caller's thread before the call
can build its operators and load its compiled kernel. :func:`pooled_empty_many`
takes the same pooled memory but leaves new mappings unmapped and hands them to
background threads (``MADV_POPULATE_WRITE`` through ctypes: no GIL held), so the
mapping runs on the other core meanwhile. The kernel writes nothing when it
populates, so the caller may write the arrays at any time; a page written first is
mapped by that write, as with ``np.empty``. No library offers this (numpy's
allocator has no asynchronous prefault); it imports only :mod:`ssb_beamline._memory`.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import os
import threading
from collections.abc import Sequence

import numpy as np

from . import _memory

__all__ = ["PageMapping", "pooled_empty_many"]

logger = logging.getLogger(__name__)


def pooled_empty_many(
    specs: Sequence[tuple[tuple[int, ...], object]], *, threads: int | None = None
) -> tuple[list[np.ndarray], PageMapping]:
    """Uninitialised arrays, one per ``(shape, dtype)``, reused across calls.

    For the outputs of an analysis call that the caller keeps (maps): arrays of
    ``_memory.POOL_MIN_BYTES`` or more come from one of the last ``_memory.POOL_KEEP``
    mappings that no array refers to any more (the previous call's maps, once they
    are dropped: no page fault at all), else from a new mapping; smaller arrays are
    ``np.empty``. An array keeps only its own mapping alive, as a numpy array does.

    The arrays are returned at once; the pages of those in new mappings (a new
    process's first call: ~170 MB for the maps of a 2048 x 2048 image) are mapped by
    ``threads`` background threads (default: one per core this process may use
    besides the caller's, at least 1 and at most 2), each over an equal share of
    the bytes. Mapping is the kernel's work (``MADV_POPULATE_WRITE``, which writes
    nothing): the caller may write to the arrays meanwhile (a page written first is
    mapped by that write, as with ``np.empty``); :meth:`PageMapping.wait` returns once
    all are mapped (the threads keep the memory alive until then). Where the kernel
    cannot populate (Linux < 5.14) or there is no ``madvise``, the pages are left to
    the first write, as ``np.empty`` does. Arrays reused from the pool need no mapping.

    Examples
    --------
    >>> (a, b), mapping = pooled_empty_many([((2, 3), np.float32), ((4,), np.bool_)])
    >>> mapping.wait()
    >>> a.shape, b.dtype.name, a.flags.writeable
    ((2, 3), 'bool', True)
    """
    arrays, fresh = [], []
    for shape, dtype in specs:
        dt = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        if nbytes < _memory.POOL_MIN_BYTES:
            arrays.append(np.empty(shape, dt))
            continue
        array, new = _memory._OUTPUTS.take_unmapped(shape, dt)
        arrays.append(array)
        if new is not None:
            fresh.append(new)
    return arrays, PageMapping(fresh, _page_threads() if threads is None else threads)


def _page_threads() -> int:
    """Threads that map fresh pages: the cores besides the caller's, from 1 to 2."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores - 1))


def _split_ranges(ranges: list[tuple[int, int]], parts: int) -> list[list[tuple[int, int]]]:
    """Page-aligned ``(address, nbytes)`` ranges cut into ``parts`` lists of about equal size.

    Cuts fall on page boundaries (``MADV_POPULATE_WRITE`` wants aligned starts).

    Examples
    --------
    >>> p = mmap.PAGESIZE
    >>> parts = _split_ranges([(0, 4 * p), (8 * p, 2 * p)], 2)
    >>> parts == [[(0, 3 * p)], [(3 * p, p), (8 * p, 2 * p)]]
    True
    """
    page = mmap.PAGESIZE
    total = sum(-(-n // page) for _, n in ranges)  # pages
    share = -(-total // max(1, parts))
    out: list[list[tuple[int, int]]] = [[]]
    room = share
    for start, size in ranges:
        address, left = start, size
        while left > 0:
            if room == 0:
                out.append([])
                room = share
            take = min(left, room * page)
            out[-1].append((address, take))
            address, left, room = address + take, left - take, room - -(-take // page)
    return [part for part in out if part]


class PageMapping:
    """The background mapping of fresh output pages (see :func:`pooled_empty_many`).

    Parameters
    ----------
    buffers : list of ndarray
        Fresh page-aligned buffers (views of anonymous mappings) to map.
    threads : int
        Threads to share the bytes among (none when there is nothing to map).
    """

    def __init__(self, buffers: list[np.ndarray], threads: int) -> None:
        self._buffers = buffers  # kept alive (mapped) until wait()
        ranges = [(b.ctypes.data, b.nbytes) for b in buffers if b.nbytes]
        madvise = _memory._libc_madvise()
        self._threads: list[threading.Thread] = []
        if madvise is None or not ranges:
            return
        for part in _split_ranges(ranges, max(1, threads)):
            thread = threading.Thread(
                target=_populate_ranges,
                args=(madvise, part, buffers),  # the thread keeps them mapped
                name="ssb-map-pages",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    @property
    def threads(self) -> int:
        """Threads started (0: nothing was fresh, or no ``madvise``)."""
        return len(self._threads)

    def wait(self) -> None:
        """Return once every page is mapped (at once if it is, or nothing was to map)."""
        for thread in self._threads:
            thread.join()
        self._buffers = []


def _populate_ranges(madvise, ranges: list[tuple[int, int]], buffers: list[np.ndarray]) -> None:
    """Map the pages of ``ranges`` in ``buffers`` (ctypes releases the GIL meanwhile)."""
    for address, nbytes in ranges:
        if not _memory.populate_in_steps(madvise, address, nbytes):
            # Linux < 5.14 (EINVAL): the first writes map the pages, as np.empty's do
            logger.debug("MADV_POPULATE_WRITE failed (errno %d)", ctypes.get_errno())
            return
