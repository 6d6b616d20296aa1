"""Replay's reused frame buffers: a frame handed out is never overwritten by a later read.

The frame resolver reads blocks into buffers of a pool (``ssb_beamline._memory``)
that it hands out again once no array refers to them; these tests pin that a frame
still held (a flat kept for later images, a frame waiting for its event) keeps its
values, that a buffer is reused once released, and that the stack and normalised
stack are zeroed, writable memory.
"""

from __future__ import annotations

import gc

import numpy as np

from ssb_beamline import _memory
from ssb_beamline._memory import BlockPool, keep_freed_memory, populated_zeros
from ssb_beamline.callbacks.frames import HDF5_MIMETYPE, HDF5FrameResolver
from ssb_beamline.storage.synthetic import DATASET, write_frames

SHAPE = (8, 8)
COUNT = 12


def frame_value(stream: str, index: int, shape: tuple[int, int]) -> np.ndarray:
    return np.full(shape, 1000 + index, np.uint16)


def address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def resolver_for(path) -> tuple[HDF5FrameResolver, str]:
    resolver = HDF5FrameResolver()
    resolver.stream_resource(
        {"uid": "res", "uri": f"file://localhost{path}", "data_key": "det",
         "mimetype": HDF5_MIMETYPE, "parameters": {"dataset": DATASET}}
    )  # fmt: skip
    return resolver, "res"


def datum(start: int, stop: int) -> dict:
    return {"uid": f"d{start}", "stream_resource": "res", "indices": {"start": start, "stop": stop}}


def test_frames_kept_by_the_caller_survive_every_later_read(tmp_path):
    path = tmp_path / "det.h5"
    write_frames(path, "flat", COUNT, SHAPE, frame_value)
    resolver, _ = resolver_for(path)
    kept = []  # one frame of every other block kept, as flats are
    try:
        for start in range(0, COUNT, 2):  # blocks of 2 frames, read ahead on a thread
            frames = resolver.frames(datum(start, start + 2))
            assert [int(f[0, 0]) for f in frames] == [1000 + start, 1001 + start]
            if start % 4 == 0:
                kept.append((start, frames[0]))
            del frames
    finally:
        resolver.close()
    for index, frame in kept:
        np.testing.assert_array_equal(frame, frame_value("flat", index, SHAPE))


def test_a_released_block_is_reused_and_a_held_one_is_not():
    pool = BlockPool(keep=2)
    first = pool.take((2, *SHAPE), np.uint16)
    first[:] = 5
    held = first[1]  # a frame of the block, still referenced
    where = address(first)
    del first
    gc.collect()
    second = pool.take((2, *SHAPE), np.uint16)
    assert not np.shares_memory(second, held)
    assert int(held.sum()) == 5 * held.size
    del held, second
    gc.collect()
    assert address(pool.take((1, *SHAPE), np.uint16)) == where  # released: reused


def test_a_pool_beyond_its_size_hands_out_unkept_buffers():
    pool = BlockPool(keep=1)
    blocks = [pool.take(SHAPE, np.uint16) for _ in range(3)]
    for n, block in enumerate(blocks):
        block[:] = n
    assert [int(b[0, 0]) for b in blocks] == [0, 1, 2]
    bigger = pool.take((4, *SHAPE), np.uint16)  # larger than any kept buffer
    assert bigger.shape == (4, *SHAPE) and bigger.flags.c_contiguous


def test_populated_zeros_are_zero_writable_and_of_the_asked_shape():
    stack = populated_zeros((3, *SHAPE), np.float32)
    assert stack.shape == (3, *SHAPE) and stack.dtype == np.float32
    assert not stack.any() and stack.flags.writeable and stack.flags.c_contiguous
    stack[1] = 2.0
    assert float(stack.sum()) == 2.0 * SHAPE[0] * SHAPE[1]
    assert populated_zeros((0, *SHAPE), np.float32).size == 0


def test_pages_are_mapped_in_steps_that_cover_the_range_once():
    # one call per POPULATE_STEP: a long mapping on a helper thread must not hold
    # the memory-map lock that the analysis thread needs to allocate
    calls = []

    def madvise(address, nbytes, advice):
        calls.append((address, nbytes, advice))
        return 0

    step = _memory.POPULATE_STEP
    assert _memory.populate_in_steps(madvise, 4096, 2 * step + 100)
    assert calls == [(4096, step, 23), (4096 + step, step, 23), (4096 + 2 * step, 100, 23)]


def test_a_kernel_without_populate_write_stops_the_steps_at_the_first():
    calls = []

    def old_kernel(address, nbytes, advice):
        calls.append(address)
        return -1  # EINVAL before Linux 5.14

    assert not _memory.populate_in_steps(old_kernel, 0, 3 * _memory.POPULATE_STEP)
    assert calls == [0]


def test_a_stack_larger_than_one_step_is_zero_and_writable(monkeypatch):
    monkeypatch.setattr(_memory, "POPULATE_STEP", 8 * 4096)  # many steps for a small stack
    stack = _memory._mapped(10 * 8 * 4096 + 123).view(np.uint8)
    assert stack.size == 10 * 8 * 4096 + 123 and not stack.any()
    stack[-1] = 7
    assert int(stack.sum()) == 7


def test_keep_freed_memory_is_idempotent():
    first = keep_freed_memory()
    assert keep_freed_memory() is first


def test_a_large_stack_reuses_the_last_ones_memory_zeroed_and_never_a_live_one():
    shape = (2, 4096, 4096)  # 128 MiB of float32: a "warm" mapping
    _memory._WARM.clear()  # none kept from other tests of this process
    first = populated_zeros(shape, np.float32)
    first[:] = 3.0  # a run's stack
    live = populated_zeros(shape, np.float32)  # `first` is alive: other memory
    assert not np.shares_memory(first, live) and not live.any()
    where = address(first)
    del first
    gc.collect()
    again = populated_zeros(shape, np.float32)  # the next run's stack
    assert address(again) == where
    assert not again.any()  # zeroed: nothing of the last run shows


def _numpy_huge_page_requests(enabled: bool) -> bool:
    """Set numpy's huge-page requests; returns the setting before."""
    from numpy._core.multiarray import _set_madvise_hugepage

    return bool(_set_madvise_hugepage(enabled))


def test_no_huge_page_requests_turns_numpy_s_requests_off():
    before = _numpy_huge_page_requests(True)
    try:
        _memory.no_huge_page_requests.cache_clear()
        assert _memory.no_huge_page_requests() is True
        assert _numpy_huge_page_requests(True) is False  # it was off
        assert _memory.no_huge_page_requests() is True  # idempotent (cached)
    finally:
        _numpy_huge_page_requests(before)
