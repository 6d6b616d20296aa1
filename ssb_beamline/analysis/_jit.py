"""Compiled (numba) kernels for the per-frame hot paths of the live analysis.

Each kernel does in one sweep over memory what a chain of numpy ufuncs does in
several: at 2048 x 2048 the chains are memory bound, so fusing them is what
brings a frame under 10 ms on two cores.  The kernels are ``nogil`` and serial:
:func:`~ssb_beamline.analysis._parallel.run_chunks` runs them on its thread
pool over row/pixel chunks, which avoids numba's threading layers (not all of
them tolerate calls from several threads).  ``cache=True`` keeps the compiled
code next to this module, so only the first process compiles (about 1 s).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["absorbance_table_rows", "accumulate_joint_sums"]

#: Pixels per inner block of :func:`accumulate_joint_sums` (stays in L1/L2 cache).
_BLOCK = 4096


@njit(nogil=True, cache=True, boundscheck=False)
def absorbance_table_rows(frame, dark_plus1, limit, table, log_open, out, valid):
    """``out = log_open - table[frame - dark_plus1]`` where valid, else 0; invalid count.

    The logarithm-table path of
    :func:`~ssb_beamline.analysis.absorbance_with_open_beam` for (rows, W) blocks:
    ``w = frame - dark_plus1`` wraps in uint16 arithmetic, and a pixel is valid
    when ``w < limit`` (see :class:`~ssb_beamline.analysis.CountTable`).
    """
    h, w = frame.shape
    n_bad = 0
    for i in range(h):
        for j in range(w):
            k = np.uint16(frame[i, j] - dark_plus1[i, j])
            ok = k < limit[i, j]
            valid[i, j] = ok
            if ok:
                out[i, j] = log_open[i, j] - table[k]
            else:
                out[i, j] = np.float32(0.0)
                n_bad += 1
    return n_bad


@njit(nogil=True, cache=True, boundscheck=False, fastmath=True)
def accumulate_joint_sums(stack, rows, coeffs, reference, projections, sum_squares, start, stop):
    """Add ``coeffs[r, k] * (stack[rows[r]] - reference)`` to ``projections[k]``, and the squares.

    Works on the pixels ``start:stop`` in cache-sized blocks, all rows of a block
    at a time, so the sums are read and written once per call.

    Parameters
    ----------
    stack : float32 (N, P), C-contiguous
        Frames (pixels flattened).
    rows : int64 (R,)
        Rows of ``stack`` to add.
    coeffs : float64 (R, 4)
        Basis values of those rows.
    reference : float32 (P,)
        Frame subtracted from every row before summing (keeps float32 sums small).
    projections : float64 (4, P), C-contiguous
        Running sums, updated in place.
    sum_squares : float64 (P,)
        Running sum of ``(stack[rows[r]] - reference) ** 2``, updated in place.
    start, stop : int
        Pixel range.
    """
    q0, q1, q2, q3 = projections[0], projections[1], projections[2], projections[3]
    for b0 in range(start, stop, _BLOCK):
        b1 = min(stop, b0 + _BLOCK)
        for r in range(rows.size):
            row = stack[rows[r]]
            c0, c1, c2, c3 = coeffs[r, 0], coeffs[r, 1], coeffs[r, 2], coeffs[r, 3]
            for j in range(b0, b1):
                d = np.float64(row[j] - reference[j])
                sum_squares[j] += d * d
                q0[j] += c0 * d
                q1[j] += c1 * d
                q2[j] += c2 * d
                q3[j] += c3 * d
