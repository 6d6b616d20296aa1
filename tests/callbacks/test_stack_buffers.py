"""The live XANES stack and normalised stack, mapped on a helper thread (StackBuffers)."""

from __future__ import annotations

import numpy as np

from ssb_beamline.callbacks._stack_buffers import StackBuffers

SHAPE = (5, 8, 8)


def test_the_stack_and_normalised_stack_are_separate_zeroed_arrays():
    buffers = StackBuffers(SHAPE, normalized=True)
    stack = buffers.stack()
    assert stack is buffers.stack()  # one stack per run
    stack[:] = 3.0  # the images
    normalized = buffers.normalized(SHAPE)
    assert normalized.shape == SHAPE and normalized.dtype == np.float32
    assert not normalized.any() and not np.shares_memory(stack, normalized)
    assert normalized.flags.c_contiguous and normalized.flags.writeable


def test_fewer_energies_take_the_first_rows_and_the_buffer_is_used_once():
    buffers = StackBuffers(SHAPE, normalized=True)
    first = buffers.normalized((3, 8, 8))  # an aborted run: 3 images analysed
    assert first.shape == (3, 8, 8) and first.flags.c_contiguous and not first.any()
    first[:] = 1.0
    again = buffers.normalized((3, 8, 8))  # not handed out twice
    assert not np.shares_memory(first, again) and not again.any()


def test_another_shape_or_no_normalised_stack_asked_gets_a_new_array():
    buffers = StackBuffers(SHAPE, normalized=False)
    assert buffers.normalized(SHAPE).shape == SHAPE
    other = StackBuffers(SHAPE, normalized=True).normalized((6, 8, 8))  # more rows
    assert other.shape == (6, 8, 8) and not other.any()
