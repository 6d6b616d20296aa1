"""A first call's fresh output pages are mapped in the background (ssb_beamline._page_mapping).

The mapping (``MADV_POPULATE_WRITE`` on background threads) must never change what
the call computes: the maps equal those of memory mapped before the call, of memory
left to numpy-like first-touch faults (no ``madvise``, or a kernel that refuses it),
and values written while the mapping runs are kept.
"""

import gc
import itertools
import mmap

import numpy as np
import pytest
from xanes_synth import MAP_NAMES, REFS, random_mixture_stack, scan_energies

from ssb_beamline import _memory, _page_mapping
from ssb_beamline._memory import BlockPool
from ssb_beamline._page_mapping import _split_ranges, pooled_empty_many
from ssb_beamline.analysis import _jit, analyse_xanes_stack

E = scan_energies(40)


def stack(seed: int) -> np.ndarray:
    return random_mixture_stack(seed, E)


@pytest.fixture
def fresh_pool(monkeypatch):
    """Every map of the small test stacks comes from a new, empty output pool."""
    monkeypatch.setattr(_memory, "POOL_MIN_BYTES", 1)
    monkeypatch.setattr(_memory, "_OUTPUTS", BlockPool(keep=24, max_slack=2.0))


def maps_of(mu: np.ndarray) -> dict[str, np.ndarray]:
    maps = analyse_xanes_stack(mu, E, REFS)
    return {n: getattr(maps, n).copy() for n in MAP_NAMES}


def test_pages_mapped_in_the_background_give_the_maps_of_memory_mapped_before(
    fresh_pool, monkeypatch
):
    mu = stack(3)
    background = maps_of(mu)  # a new pool: every output mapped by the background threads
    monkeypatch.setattr(_memory, "_OUTPUTS", BlockPool(keep=24, max_slack=2.0))
    started = []
    original = _page_mapping.PageMapping.__init__

    def mapped_first(self, buffers, threads):  # every page mapped before the call goes on
        original(self, buffers, threads)
        started.append(self.threads)
        self.wait()

    monkeypatch.setattr(_page_mapping.PageMapping, "__init__", mapped_first)
    before = maps_of(mu)
    assert started and started[0] >= 1
    for name in MAP_NAMES:
        assert np.array_equal(background[name], before[name], equal_nan=True), name


@pytest.mark.parametrize("madvise", [None, "fails"], ids=["no madvise", "kernel refuses"])
def test_without_the_background_mapping_the_maps_are_the_same(fresh_pool, monkeypatch, madvise):
    mu = stack(4)
    expected = maps_of(mu)
    monkeypatch.setattr(_memory, "_OUTPUTS", BlockPool(keep=24, max_slack=2.0))
    calls = []

    def refuse(address, nbytes, advice):  # Linux < 5.14: EINVAL
        calls.append(advice)
        return -1

    monkeypatch.setattr(_memory, "_libc_madvise", lambda: None if madvise is None else refuse)
    got = maps_of(mu)
    for name in MAP_NAMES:
        assert np.array_equal(got[name], expected[name], equal_nan=True), name
    if madvise == "fails":
        assert calls and set(calls) == {_memory._MADV_POPULATE_WRITE}


def test_values_written_while_the_pages_are_mapped_are_kept(monkeypatch):
    monkeypatch.setattr(_memory, "_OUTPUTS", BlockPool(keep=4, max_slack=2.0))
    n = 8 * 2**20  # 32 MiB of float32: the threads are still mapping when the writes start
    (a, b), mapping = pooled_empty_many([((n,), np.float32), ((n,), np.float32)], threads=2)
    assert mapping.threads == 2
    a[::1024] = 7.0  # every page, from the first
    b[::-1024] = 3.0  # every page, from the last
    mapping.wait()
    assert np.all(a[::1024] == 7.0) and np.all(b[::-1024] == 3.0)
    where = a.__array_interface__["data"][0]
    del a, b
    gc.collect()
    (again,), reused = pooled_empty_many([((n,), np.float32)])
    assert again.__array_interface__["data"][0] == where  # the pool's memory again ...
    assert reused.threads == 0  # ... already mapped: no thread started
    reused.wait()


@pytest.mark.parametrize(
    "sizes, parts", [([4, 2], 2), ([1, 1, 1], 2), ([7], 3), ([3, 5, 2], 1), ([1], 4), ([], 2)]
)
def test_the_split_covers_every_page_once_with_aligned_starts(sizes, parts):
    page = mmap.PAGESIZE
    ranges, start = [], 0
    for pages in sizes:
        ranges.append((start, pages * page - 100))  # a last page partly used
        start += (pages + 3) * page
    split = _split_ranges(ranges, parts)
    assert len(split) <= parts
    pieces = [piece for part in split for piece in part]
    assert all(address % page == 0 for address, _ in pieces)
    covered = sorted(pieces)
    assert sum(n for _, n in covered) == sum(n for _, n in ranges)
    for (a0, n0), (a1, _) in itertools.pairwise(covered):
        assert a0 + n0 <= a1  # no byte twice
    for address, nbytes in ranges:  # every byte of every range
        inside = [(a, n) for a, n in covered if address <= a < address + nbytes]
        assert sum(n for _, n in inside) == nbytes


def test_background_threads_start_once_per_name():
    calls = []
    first = _jit._start_once("ssb-test-once", lambda: calls.append(1))
    assert _jit._start_once("ssb-test-once", lambda: calls.append(2)) is first
    first.join()
    assert calls == [1]
    other = _jit._start_once("ssb-test-other", lambda: calls.append(3))
    other.join()
    assert other is not first and calls == [1, 3]
    loader = _jit.load_joint_pass(background=True)
    assert _jit.load_joint_pass(background=True) is loader
    loader.join()
    assert _jit.load_joint_pass() is None and _jit._JOINT_LOADED.is_set()
