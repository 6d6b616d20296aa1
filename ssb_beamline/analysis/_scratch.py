"""Per-thread scratch buffers and the row gather shared by every block kernel.

The lowest module of the analysis kernels (``_kernels``, ``_uniform``, ``_fused``,
``absorbance`` import it; it imports none of them), so the kernels have no
import cycle.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["flat_view", "gather_rows", "scratch"]

_TLS = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
    """A reusable, uninitialised per-thread buffer of ``shape``.

    The same ``name`` returns (a view of) the same memory in the same thread,
    so callers must not keep two live buffers under one name.

    Examples
    --------
    >>> scratch("doc", (2, 3)).shape
    (2, 3)
    """
    bufs = getattr(_TLS, "bufs", None)
    if bufs is None:
        bufs = _TLS.bufs = {}
    size = int(np.prod(shape))
    key = (name, np.dtype(dtype).str)
    buf = bufs.get(key)
    if buf is None or buf.size < size:
        buf = bufs[key] = np.empty(max(size, 1), dtype)
    return buf[:size].reshape(shape)


def flat_view(block: np.ndarray) -> tuple[np.ndarray, int]:
    """1-D view of a (n, P) block with contiguous rows, and its row stride (items)."""
    n, p = block.shape
    item = block.itemsize
    if block.strides[1] != item or block.strides[0] % item or block.strides[0] < 0:
        block = np.ascontiguousarray(block)
    row_stride = block.strides[0] // item if n > 1 else p
    flat = np.lib.stride_tricks.as_strided(
        block, shape=((n - 1) * row_stride + p,), strides=(item,), writeable=False
    )
    return flat, row_stride


def gather_rows(block: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``block[rows[..., p], p]`` for a (n, P) block whose rows are contiguous.

    ``rows`` has shape (P,) or (k, P).  Uses one flat ``np.take`` (much faster
    than 2-D fancy indexing), also for row-strided views of a larger stack.

    Examples
    --------
    >>> b = np.arange(6.0).reshape(2, 3)
    >>> gather_rows(b, np.array([[1, 0, 1]])).tolist()
    [[3.0, 1.0, 5.0]]
    """
    flat, row_stride = flat_view(block)
    return np.take(flat, rows * row_stride + np.arange(block.shape[1]))
