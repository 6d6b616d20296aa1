"""The linear parts of the fused XANES pass (projection, residual sum, normalised output)."""

from __future__ import annotations

import numpy as np

from ._scratch import scratch

__all__ = ["subtract_project", "write_normalized"]

#: Largest row block, bytes.  Measured on the 2-core beamline node: one block per
#: 16384-pixel chunk (6.5 MB) beats 0.5-2 MB blocks (BLAS and call overhead), so
#: only much larger chunks are split.
ROW_BLOCK_BYTES = 1 << 26


def subtract_project(
    xb: np.ndarray, weights: np.ndarray, fit_rows: slice
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``D = xb - xb[0]``, ``weights @ D`` and ``sum(D[fit_rows] ** 2)`` in one sweep.

    The three results need the same data, so they are computed together, row
    block by row block (blocks of at most ``ROW_BLOCK_BYTES``) for large chunks.

    Parameters
    ----------
    xb : ndarray, shape (N, P)
        Spectra (a pixel chunk of the stack; rows may be strided).
    weights : ndarray of float32, shape (K, N)
        Linear operators (rows) applied to ``D``.
    fit_rows : slice
        Rows whose squares are summed (``start``/``stop`` set).

    Returns
    -------
    d : ndarray of float32, shape (N, P)
        ``xb - xb[0]`` (a per-thread scratch buffer).
    coef : ndarray of float32, shape (K, P)
        ``weights @ d`` (scratch).
    sumsq : ndarray of float64, shape (P,)
        ``(d[fit_rows] ** 2).sum(axis=0)``.

    Examples
    --------
    >>> xb = np.array([[1.0, 2.0], [2.0, 4.0], [4.0, 2.0]], np.float32)
    >>> d, coef, ss = subtract_project(xb, np.ones((1, 3), np.float32), slice(0, 3))
    >>> d.tolist(), coef.tolist(), ss.tolist()
    ([[0.0, 0.0], [1.0, 2.0], [3.0, 0.0]], [[4.0, 2.0]], [10.0, 4.0])
    """
    n, npx = xb.shape
    k = weights.shape[0]
    d = scratch("mu_minus_first", (n, npx))
    coef = scratch("fused_coef", (k, npx))
    part = scratch("fused_part", (k, npx))
    sq = scratch("fused_sq", (npx,))
    sumsq = np.zeros(npx, np.float64)
    rows = max(1, ROW_BLOCK_BYTES // max(1, 4 * npx))
    first = xb[0]
    fa, fb = fit_rows.start or 0, n if fit_rows.stop is None else fit_rows.stop
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        blk = d[r0:r1]
        np.subtract(xb[r0:r1], first, out=blk, dtype=np.float32)
        if r0 == 0:
            np.matmul(weights[:, r0:r1], blk, out=coef)
        else:
            coef += np.matmul(weights[:, r0:r1], blk, out=part)
        a, b = max(r0, fa), min(r1, fb)
        if a < b:
            sumsq += np.einsum("ij,ij->j", d[a:b], d[a:b], out=sq)
    return d, coef, sumsq


def write_normalized(
    d: np.ndarray, line: np.ndarray, coef: np.ndarray, inv: np.ndarray, out: np.ndarray
) -> None:
    """``out = (d - line @ coef) * inv``, built in scratch and written to ``out`` once.

    Parameters
    ----------
    d : ndarray of float32, shape (N, P)
        Spectra (``mu - mu[0]``).
    line : ndarray of float32, shape (N, 2)
        ``[1, x]`` of the pre-edge line.
    coef : ndarray of float32, shape (2, P)
        Pre-edge line coefficients per pixel.
    inv : ndarray of float32, shape (P,)
        ``1 / edge_step`` (0 where there is no edge).
    out : ndarray of float32, shape (N, P)
        Output (e.g. a pixel chunk of the normalised stack; rows may be strided).

    Examples
    --------
    >>> d = np.array([[0.0], [1.0], [3.0]], np.float32)
    >>> line = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]], np.float32)
    >>> out = np.empty((3, 1), np.float32)
    >>> write_normalized(d, line, np.zeros((2, 1), np.float32), np.full(1, 0.5, np.float32), out)
    >>> out.ravel().tolist()
    [0.0, 0.5, 1.5]
    """
    n, npx = d.shape
    tmp = scratch("norm_tmp", (n, npx))
    rows = max(1, ROW_BLOCK_BYTES // max(1, 4 * npx))
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        t = np.matmul(line[r0:r1], coef, out=tmp[r0:r1])
        np.subtract(d[r0:r1], t, out=t)
        np.multiply(t, inv, out=out[r0:r1])
