"""The non-temporal store of the numba kernels writes exactly what a plain store writes."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from ssb_beamline.analysis._jit_store import store_nt


@njit(nogil=True)
def _scaled_copy(src, dst, scale):
    for j in range(src.size):
        store_nt(dst, j, src[j] * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_streaming_store_equals_a_plain_store(dtype):
    src = np.arange(37, dtype=dtype) - 5
    dst = np.full(37, 99, dtype)
    _scaled_copy(src, dst, dtype(3))
    np.testing.assert_array_equal(dst, src * dtype(3))


def test_streaming_store_follows_the_strides_of_a_view():
    src = np.linspace(0.0, 1.0, 16, dtype=np.float32)
    base = np.zeros((3, 32), np.float32)
    _scaled_copy(src, base[1, ::2], np.float32(2.0))
    expected = np.zeros_like(base)
    expected[1, ::2] = src * np.float32(2.0)
    np.testing.assert_array_equal(base, expected)  # nothing written between the strides


def test_streaming_store_refuses_a_value_of_another_dtype():
    with pytest.raises(Exception, match="store_nt"):
        _scaled_copy(np.zeros(4, np.float64), np.zeros(4, np.float32), 1.0)
