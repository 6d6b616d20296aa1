"""The edge-window kernel: half-step and derivative-maximum energies per pixel.

:func:`edge_window_uniform` sweeps the rows of a block of pixels (vectorised,
no branches): the count of samples below the half step, and the derivative
maximum together with its two neighbours (kept while sweeping, so the parabola
through them needs no look-up afterwards).  The only per-pixel gather left is
the four samples around each crossing; the monotone-cubic crossing
(:mod:`.edge_interp`), its least-squares-line fallback and the parabola are then
branch-free arithmetic over the block (selects, not jumps), which the compiler
vectorises.  The arithmetic is that of the numpy twins in :mod:`._uniform` /
:mod:`.edge_interp` (float32, same order of operations).

Hand-written because numpy would need one pass over memory per operation, and
the per-pixel branches of a plain loop (bracketed or not, fallback or not)
mispredict on noisy background pixels.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit_cache import install_locator
from .edge_interp import _NEWTON_STEPS

install_locator()  # before the decorators below: they pick their cache directory

__all__ = ["edge_window_into", "edge_window_uniform", "window_scratch"]

#: Pixels per block of :func:`edge_window_uniform`: (n, block) float32 stays in L2.
_WINDOW_BLOCK = 512


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy", inline="always")
def _pick(g0, g1, g2, g3, i):
    """``(g0, g1, g2, g3)[i]`` as selects (``i`` in 0..3)."""
    lo = g0 if i == 0 else g1
    hi = g2 if i == 2 else g3
    return lo if i <= 1 else hi


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def _count_rows(dw, b0, m, p0, p1, step, xl, count):
    """``count[j]``: samples of pixel ``b0 + j`` below ``p0 + p1 x + step / 2``."""
    half = np.float32(0.5)
    a_blk, b_blk, s_blk = p0[b0 : b0 + m], p1[b0 : b0 + m], step[b0 : b0 + m]
    for j in range(m):
        count[j] = 0
    for r in range(dw.shape[0]):  # contiguous rows, 32-bit lanes, no branches
        xr = xl[r]
        row = dw[r, b0 : b0 + m]
        for j in range(m):
            count[j] += np.int32(row[j] < a_blk[j] + xr * b_blk[j] + half * s_blk[j])


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def _derivative_rows(dw, b0, m, best, arg, ya, yb):
    """First maximum of ``d[i] = x[i+3] + x[i+2] - x[i+1] - x[i]`` over ``i = 1 .. n-5``.

    ``best``, ``arg``: the maximum and its ``i``; ``ya``, ``yb``: ``d[i - 1]`` and
    ``d[i + 1]`` (the parabola's neighbours), kept during the sweep.  (Four arrays
    written per loop at most: with more, the compiler stops vectorising it.)
    """
    n = dw.shape[0]
    r0, r1, r2, r3 = dw[0, b0 : b0 + m], dw[1, b0 : b0 + m], dw[2, b0 : b0 + m], dw[3, b0 : b0 + m]
    for j in range(m):
        d = (r3[j] + r2[j]) - (r1[j] + r0[j])
        ya[j] = d
        yb[j] = d
        best[j] = -np.inf
        arg[j] = 1
    for i in range(1, n - 4):
        rm, r0 = dw[i - 1, b0 : b0 + m], dw[i, b0 : b0 + m]
        r1, r2, r3 = dw[i + 1, b0 : b0 + m], dw[i + 2, b0 : b0 + m], dw[i + 3, b0 : b0 + m]
        i32, before = np.int32(i), np.int32(i - 1)
        for j in range(m):
            d = (r3[j] + r2[j]) - (r1[j] + r0[j])
            yb[j] = d if arg[j] == before else yb[j]
            better = d > best[j]
            ya[j] = ((r2[j] + r1[j]) - (r0[j] + rm[j])) if better else ya[j]
            best[j] = d if better else best[j]
            arg[j] = i32 if better else arg[j]
    i = n - 4  # only the right neighbour of a maximum at n - 5
    r0, r1, r2, r3 = (
        dw[i, b0 : b0 + m],
        dw[i + 1, b0 : b0 + m],
        dw[i + 2, b0 : b0 + m],
        dw[i + 3, b0 : b0 + m],
    )
    before = np.int32(i - 1)
    for j in range(m):
        d = (r3[j] + r2[j]) - (r1[j] + r0[j])
        yb[j] = d if arg[j] == before else yb[j]


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def _gather4(dw, b0, m, count, g):
    """``g[:, j]``: the rows ``start .. start + 3`` of pixel ``b0 + j`` around its count."""
    n = dw.shape[0]
    for j in range(m):
        k = b0 + j
        s = min(max(count[j] - 2, 0), n - 4)
        g[0, j] = dw[s, k]
        g[1, j] = dw[s + 1, k]
        g[2, j] = dw[s + 2, k]
        g[3, j] = dw[s + 3, k]


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy", inline="always")
def _line_rows(g0, g1, g2, g3, c, n, a, b, iv, xl0, dxl):  # noqa: PLR0913 -- numba nopython kernel: scalars passed flat
    """Crossing in rows by the least-squares line through the four rows (fallback).

    Where its slope is not positive: linear interpolation between rows ``q`` and
    ``q + 1`` (``q = count - 1``), in float64.
    """
    half, f32_3, f32_01, f32_q = np.float32(0.5), np.float32(3.0), np.float32(0.1), np.float32(0.25)
    dxl32 = np.float32(dxl)
    start = min(max(c - 2, 0), n - 4)
    slope = ((g3 - g0) * f32_3 + g2 - g1) * f32_01
    ym = (g0 + g1 + g2 + g3) * f32_q
    mid = np.float32(start) + np.float32(1.5)
    ym = (ym - a - b * (np.float32(xl0) + dxl32 * mid)) * iv
    slope = (slope - b * dxl32) * iv
    off = (half - ym) / slope
    line = np.float64(mid) + min(max(np.float64(off), -1.5), 1.5)
    q = min(max(c - 1, 0), n - 2)
    o = q - start
    u0 = (np.float64(_pick(g0, g1, g2, g3, o)) - a - b * (xl0 + dxl * q)) * iv
    u1 = (np.float64(_pick(g0, g1, g2, g3, o + 1)) - a - b * (xl0 + dxl * (q + 1))) * iv
    t = (0.5 - u0) / (u1 - u0)
    t = min(max(t, 0.0), 1.0) if np.isfinite(t) else 0.5
    return line if np.isfinite(off) and slope > 0 else q + t


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy", inline="always")
def _cubic_rows(g0, g1, g2, g3, c, n, a, b, iv, xl0, dxl):  # noqa: PLR0913 -- numba nopython kernel: scalars passed flat
    """Crossing of 0.5 in rows by the monotone cubic on rows ``q, q + 1`` (``q = c - 1``).

    Returns the crossing ``q + t`` and whether the two rows bracket 0.5. The
    Newton steps start from the linear crossing (see :mod:`.edge_interp`).
    """
    half, two, three = np.float32(0.5), np.float32(2.0), np.float32(3.0)
    zero, one = np.float32(0.0), np.float32(1.0)
    q = min(max(c - 1, 0), n - 2)
    o = q - min(max(c - 2, 0), n - 4)
    qp, qn = max(q - 1, 0), min(q + 2, n - 1)
    xq, xq1 = np.float32(xl0 + dxl * q), np.float32(xl0 + dxl * (q + 1))
    xqp, xqn = np.float32(xl0 + dxl * qp), np.float32(xl0 + dxl * qn)
    u0 = (_pick(g0, g1, g2, g3, o) - a - b * xq) * iv
    u1 = (_pick(g0, g1, g2, g3, o + 1) - a - b * xq1) * iv
    up = (_pick(g0, g1, g2, g3, max(o - 1, 0)) - a - b * xqp) * iv
    un = (_pick(g0, g1, g2, g3, min(o + 2, 3)) - a - b * xqn) * iv
    d = u1 - u0
    up = up if q >= 1 else u0 - d
    un = un if q + 2 <= n - 1 else u1 + d
    s0, s1 = u0 - up, un - u1
    t0 = two * s0 * d / (s0 + d)
    t1 = two * s1 * d / (s1 + d)
    tan0 = t0 if s0 * d > zero else zero
    tan1 = t1 if s1 * d > zero else zero
    ok = (u0 < half) and (u1 >= half) and np.isfinite(up) and np.isfinite(un)
    bb = three * d - two * tan0 - tan1
    cc = tan0 + tan1 - two * d
    tl = (half - u0) / d
    t = min(max(tl, zero), one) if np.isfinite(tl) else half
    for _ in range(_NEWTON_STEPS):
        p = u0 + t * (tan0 + t * (bb + t * cc)) - half
        dp = tan0 + t * (two * bb + three * t * cc)
        step = p / dp
        step = step if dp > zero else zero
        t = min(max(t - step, zero), one)
    return np.float64(q) + np.float64(t), ok


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def _crossings(g, count, n, b0, m, line, grid, edge_out):
    """Half-step energy of pixels ``b0 .. b0 + m`` from the four gathered rows ``g``.

    The monotone cubic where its rows bracket 0.5, else the line (all pixels are
    computed, the answer is selected: no branches); NaN where every sample is on
    one side.  ``line`` = (p0, p1, inv), ``grid`` = (xl0, dxl, e_first, h).
    """
    p0, p1, inv = line
    xl0, dxl, e_first, h = grid
    for j in range(m):
        k = b0 + j
        c = count[j]
        g0, g1, g2, g3 = g[0, j], g[1, j], g[2, j], g[3, j]
        a, b, iv = p0[k], p1[k], inv[k]
        cubic, ok = _cubic_rows(g0, g1, g2, g3, c, n, a, b, iv, xl0, dxl)
        r = cubic if ok else _line_rows(g0, g1, g2, g3, c, n, a, b, iv, xl0, dxl)
        edge_out[k] = r * h + e_first if 0 < c < n else np.nan


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def _parabola_e0(best, arg, ya, yb, m, e_first, h, b0, e0_out):
    """Sub-sample derivative maximum: the vertex of the parabola through ``ya, best, yb``."""
    for j in range(m):
        y1 = best[j]
        ya_, yb_ = ya[j], yb[j]
        den = ya_ + yb_ - y1 - y1
        tt = (ya_ - yb_) / (den + den)
        tt = tt if np.isfinite(tt) else np.float32(0.0)
        tt = min(max(tt, np.float32(-1.0)), np.float32(1.0))
        tt = tt if den < 0 else np.float32(0.0)
        e0_out[b0 + j] = (arg[j] + 1.5 + np.float64(tt)) * h + e_first


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def edge_window_uniform(dw, p0, p1, step, inv, xl0, dxl, e_first, h, derivative, edge_out, e0_out):  # noqa: PLR0913 -- numba nopython kernel: flat arguments
    """Half-step energy and derivative maximum per pixel on a uniform energy window.

    The compiled twin of ``count_below`` + :func:`~._uniform.half_step_uniform`
    (with the pre-edge ``line``) + :func:`~._uniform.derivative_max_uniform`, in
    one sweep over the window (same float32 arithmetic; results agree to float32
    rounding).

    Parameters
    ----------
    dw : float32 (n, P), C-contiguous, n >= 6
        Window rows of the spectra (any per-pixel offset, the same as ``p0``'s).
    p0, p1, step, inv : float32 (P,)
        Pre-edge line (value at e0, slope per reduced unit), edge step, 1 / step.
    xl0, dxl : float
        Reduced energy of row 0 and its step per row.
    e_first, h : float
        Energy of row 0 and the grid spacing, eV.
    derivative : bool
        Also compute the derivative maximum (else ``e0_out`` is left untouched).
    edge_out, e0_out : float32 (P,)
        Outputs (NaN where there is no crossing).
    """
    nb = _WINDOW_BLOCK
    xl, fl = np.empty(dw.shape[0], np.float32), np.empty((7, nb), np.float32)
    count, arg = np.empty(nb, np.int32), np.empty(nb, np.int32)
    edge_window_into(
        dw, p0, p1, step, inv, xl0, dxl, e_first, h, derivative, edge_out, e0_out,
        (xl, count, arg, fl),
    )  # fmt: skip


def window_scratch(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scratch of :func:`edge_window_into` for an ``n``-row window (allocated by numpy)."""
    nb = _WINDOW_BLOCK
    xl, count, arg = np.empty(n, np.float32), np.empty(nb, np.int32), np.empty(nb, np.int32)
    return xl, count, arg, np.empty((7, nb), np.float32)


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def edge_window_into(  # noqa: PLR0913 -- numba nopython kernel: flat arguments
    dw, p0, p1, step, inv, xl0, dxl, e_first, h, derivative, edge_out, e0_out, scratch
):
    """:func:`edge_window_uniform` with its scratch arrays given (:func:`window_scratch`).

    A kernel that allocates no array needs none of numba's array-allocation code
    when it is loaded from the disk cache (importing it costs a new process ~20 ms
    of CPU); :func:`~._kernels_joint.joint_pass` calls this one.
    """
    n, n_px = dw.shape
    xl, count, arg, fl = scratch
    for r in range(n):
        xl[r] = np.float32(xl0 + dxl * r)
    nb = _WINDOW_BLOCK
    g = fl[3:7]  # best, ya, yb, then the 4 rows around the count
    line, grid = (p0, p1, inv), (xl0, dxl, e_first, h)
    for b0 in range(0, n_px, nb):
        m = min(nb, n_px - b0)
        _count_rows(dw, b0, m, p0, p1, step, xl, count)
        if derivative:
            _derivative_rows(dw, b0, m, fl[0], arg, fl[1], fl[2])
            _parabola_e0(fl[0], arg, fl[1], fl[2], m, e_first, h, b0, e0_out)
        _gather4(dw, b0, m, count, g)
        _crossings(g, count, n, b0, m, line, grid, edge_out)
