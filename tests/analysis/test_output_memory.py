"""The maps of analyse_xanes_stack live in pooled, pre-mapped memory (ssb_beamline._memory).

A repeated call reuses the pages of the last call's maps once they are dropped; the
maps must then be exactly those computed in fresh memory (nothing of the last call
shows), and maps still referred to are never overwritten.
"""

import gc

import numpy as np
import pytest
from xanes_synth import MAP_NAMES, REFS, random_mixture_stack, scan_energies

from ssb_beamline import _memory
from ssb_beamline._memory import BlockPool
from ssb_beamline._page_mapping import pooled_empty_many
from ssb_beamline.analysis import analyse_xanes_stack
from ssb_beamline.analysis.soc import SocCalibration, soc_map

E = scan_energies(40)


def stack(seed: int) -> np.ndarray:
    return random_mixture_stack(seed, E)


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


@pytest.fixture
def pool_everything(monkeypatch):
    """Every map of the small test stacks comes from a fresh output pool."""
    monkeypatch.setattr(_memory, "POOL_MIN_BYTES", 1)
    monkeypatch.setattr(_memory, "_OUTPUTS", BlockPool(keep=24, max_slack=2.0))


@pytest.mark.parametrize(
    "options",
    [{}, {"normalization": "edge_fit"}, {"derivative_e0": False}, {"mask_threshold": 0.3}],
)
def test_reused_maps_memory_gives_the_maps_of_fresh_memory(pool_everything, options):
    a, b = stack(1), stack(2)
    fresh = analyse_xanes_stack(b, E, REFS, **options)  # pooled, alive: not reused below
    before = {n: getattr(fresh, n).copy() for n in MAP_NAMES}
    first = analyse_xanes_stack(a, E, REFS, **options)
    where = address(first.soc)
    del first
    gc.collect()
    again = analyse_xanes_stack(b, E, REFS, **options)  # reuses the first call's pages
    assert any(address(getattr(again, n)) == where for n in MAP_NAMES)
    for name in MAP_NAMES:
        assert np.array_equal(getattr(again, name), before[name], equal_nan=True), name
        assert not np.shares_memory(getattr(again, name), getattr(fresh, name)), name
        # the live maps were not touched by the later calls
        assert np.array_equal(getattr(fresh, name), before[name], equal_nan=True), name


def pooled_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """One output array, as the analysis takes it, its pages mapped."""
    (array,), mapping = pooled_empty_many([(shape, dtype)])
    mapping.wait()
    return array


def test_pooled_outputs_reuse_only_dropped_arrays_of_a_fitting_size(monkeypatch):
    monkeypatch.setattr(_memory, "POOL_MIN_BYTES", 1024)
    monkeypatch.setattr(_memory, "_OUTPUTS", BlockPool(keep=4, max_slack=2.0))
    n = 1024  # float32: 4 KiB
    assert pooled_empty((3,), np.float32).base is None  # below the threshold: numpy's
    big = pooled_empty((n,), np.float32)
    big[:] = 1.0
    other = pooled_empty((n,), np.float32)
    assert not np.shares_memory(big, other)
    where = address(big)
    del big
    gc.collect()
    assert address(pooled_empty((4 * n,), np.float32)) != where  # too small for it
    assert address(pooled_empty((n // 4,), np.float32)) != where  # too large: slack 2
    reused = pooled_empty((n // 2 + 1,), np.float32)  # within the slack: the same pages
    assert address(reused) == where and reused.flags.writeable and reused.flags.c_contiguous


def test_a_pool_takes_the_smallest_idle_buffer_that_fits():
    pool = BlockPool(keep=3)
    sizes = (64, 16, 32)
    buffers = [pool.take((s,), np.uint8) for s in sizes]
    where = {s: address(b) for s, b in zip(sizes, buffers, strict=True)}
    del buffers
    gc.collect()
    assert address(pool.take((20,), np.uint8)) == where[32]


def test_soc_map_writes_into_out_with_the_same_values():
    cal = SocCalibration(reduced_edge_ev=8342.0, oxidised_edge_ev=8344.0)
    edge = np.array([8342.0, 8343.0, np.nan, 8344.5], np.float32)
    out = np.empty(4, np.float32)
    got = soc_map(edge, calibration=cal, out=out).soc
    assert got is out
    assert np.array_equal(out, soc_map(edge, calibration=cal).soc, equal_nan=True)
    fr = np.array([[0.75, 0.0, np.nan, 0.5], [0.25, 0.0, np.nan, 0.5]], np.float32)
    got = soc_map(fractions=fr, out=out).soc
    assert got is out
    assert np.array_equal(out, [0.25, np.nan, np.nan, 0.5], equal_nan=True)
    with pytest.raises(ValueError, match="out must be float32 with shape"):
        soc_map(edge, calibration=cal, out=np.empty(3, np.float32))


def test_a_full_pool_replaces_an_idle_buffer_that_does_not_fit():
    pool = BlockPool(keep=2, max_slack=2.0)
    small = [pool.take((16,), np.uint8) for _ in range(2)]
    del small
    gc.collect()
    big = pool.take((64,), np.uint8)  # replaces one idle small buffer: kept
    assert sorted(b.nbytes for b in pool._buffers) == [16, 64]
    del big
    gc.collect()
    again = pool.take((64,), np.uint8)
    assert np.shares_memory(again, pool._buffers[1])
