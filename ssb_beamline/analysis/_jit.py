"""Compiled (numba) kernels for the per-frame hot paths of the live analysis.

Each kernel does in one sweep over memory what a chain of numpy ufuncs does in
several: at 2048 x 2048 the chains are memory bound, so fusing them is what
brings a frame under 10 ms on two cores.  The kernels are ``nogil`` and serial:
:func:`~ssb_beamline.analysis._parallel.run_chunks` runs them on its thread
pool over row/pixel chunks, which avoids numba's threading layers (not all of
them tolerate calls from several threads).  ``cache=True`` keeps the compiled
code in a user cache directory (:mod:`._jit_cache`: ``$SSB_BEAMLINE_NUMBA_CACHE``,
else ``$XDG_CACHE_HOME/ssb_beamline/numba`` or ``~/.cache/ssb_beamline/numba``),
so only the first process on a machine compiles (a few seconds); the others load.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit_cache import install_locator
from .edge_interp import _NEWTON_STEPS

install_locator()  # before the decorators below: they pick their cache directory

__all__ = ["absorbance_table_rows", "edge_window_uniform", "open_counts", "warm_up"]


@njit(nogil=True, cache=True, boundscheck=False)
def open_counts(flat, dark_plus1, top, flat_w, valid):
    """``flat_w = flat - dark_plus1`` (uint16, wrapping) and its validity.

    A flat pixel is valid when ``flat_w < top - dark_plus1``: above the dark and
    below the saturation ``top`` (see :class:`~ssb_beamline.analysis.CountTable`).
    Returns the number of pixels above the dark.
    """
    h, w = flat.shape
    top32 = np.int32(top)
    n_above = 0
    for i in range(h):
        f, d1, fw_row, v = flat[i], dark_plus1[i], flat_w[i], valid[i]
        for j in range(w):
            d = np.int32(d1[j])
            fw = np.uint16(f[j] - d1[j])
            fw_row[j] = fw
            v[j] = np.int32(fw) < top32 - d
            n_above += np.int32(f[j]) >= d
    return n_above


@njit(nogil=True, cache=True, boundscheck=False)
def absorbance_table_rows(frame, dark_plus1, top, table, flat_w, shift, out, valid, and_valid):
    """``out = table[flat_w] - table[frame - dark_plus1] + shift`` where valid, else 0.

    The logarithm-table path of
    :func:`~ssb_beamline.analysis.absorbance_with_open_beam` for (rows, W) blocks:
    ``w = frame - dark_plus1`` wraps in uint16 arithmetic, and a pixel is valid
    when ``w`` and the flat's index ``flat_w`` (from :func:`open_counts`) are both
    below ``top - dark_plus1`` (above the dark, below saturation); see
    :class:`~ssb_beamline.analysis.CountTable`. ``valid`` receives the validity, or
    is ANDed with it when ``and_valid`` (a mask accumulated over frames).
    """
    h, w = frame.shape
    top32 = np.int32(top)
    for i in range(h):
        f, d1, fw_row, o, v = frame[i], dark_plus1[i], flat_w[i], out[i], valid[i]
        for j in range(w):
            k = np.uint16(f[j] - d1[j])
            fw = fw_row[j]
            lim = top32 - np.int32(d1[j])
            # (a branch, not a select: nearly every pixel is valid, and a select makes
            # LLVM vectorise the table look-ups with slow gathers)
            if np.int32(k) < lim and np.int32(fw) < lim:
                o[j] = table[fw] - table[k] + shift
                if not and_valid:
                    v[j] = True
            else:
                o[j] = np.float32(0.0)
                v[j] = False


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def _cubic_crossing1(y_prev, y0, y1, y_next, level):
    """Scalar :func:`~.edge_interp.cubic_crossing` on a uniform grid; -1 if not bracketed."""
    if not (y0 < level and y1 >= level and np.isfinite(y_prev) and np.isfinite(y_next)):
        return -1.0
    d = y1 - y0
    m0 = 0.0
    s0 = y0 - y_prev
    if s0 * d > 0:
        m0 = 2.0 * s0 * d / (s0 + d)
    m1 = 0.0
    s1 = y_next - y1
    if s1 * d > 0:
        m1 = 2.0 * s1 * d / (s1 + d)
    b = 3.0 * d - 2.0 * m0 - m1
    c3 = m0 + m1 - 2.0 * d
    t = (level - y0) / d
    for _ in range(_NEWTON_STEPS):
        p = y0 + t * (m0 + t * (b + t * c3)) - level
        dp = m0 + t * (2.0 * b + 3.0 * t * c3)
        if dp > 0:
            t = min(max(t - p / dp, 0.0), 1.0)
    return t


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def _half_step_rows(dw, k, c, a, b, iv, xl0, dxl):
    """Crossing of pixel ``k`` in rows (``0 < c < n`` samples below): the monotone
    cubic through rows ``c - 2 .. c + 1`` (see :mod:`.edge_interp`), or where they
    do not bracket 0.5, the least-squares line of the 4 rows around the count."""
    n = dw.shape[0]
    q = min(max(c - 1, 0), n - 2)
    u0 = (np.float64(dw[q, k]) - a - b * (xl0 + dxl * q)) * iv
    u1 = (np.float64(dw[q + 1, k]) - a - b * (xl0 + dxl * (q + 1))) * iv
    up = u0 - (u1 - u0)
    if q >= 1:
        up = (np.float64(dw[q - 1, k]) - a - b * (xl0 + dxl * (q - 1))) * iv
    un = u1 + (u1 - u0)
    if q + 2 <= n - 1:
        un = (np.float64(dw[q + 2, k]) - a - b * (xl0 + dxl * (q + 2))) * iv
    t_c = _cubic_crossing1(up, u0, u1, un, 0.5)
    if t_c >= 0.0:
        return q + t_c
    half, f32_3, f32_01, f32_q = np.float32(0.5), np.float32(3.0), np.float32(0.1), np.float32(0.25)
    dxl32 = np.float32(dxl)
    start = min(max(c - 2, 0), n - 4)
    y0, y1, y2, y3 = dw[start, k], dw[start + 1, k], dw[start + 2, k], dw[start + 3, k]
    slope = ((y3 - y0) * f32_3 + y2 - y1) * f32_01
    ym = (y0 + y1 + y2 + y3) * f32_q
    mid = np.float32(start) + np.float32(1.5)
    ym = (ym - a - b * (np.float32(xl0) + dxl32 * mid)) * iv
    slope = (slope - b * dxl32) * iv
    off = (half - ym) / slope
    if np.isfinite(off) and slope > 0:
        return np.float64(mid) + min(max(np.float64(off), -1.5), 1.5)
    t = (0.5 - u0) / (u1 - u0)  # linear interpolation between rows q and q + 1
    t = min(max(t, 0.0), 1.0) if np.isfinite(t) else 0.5
    return q + t


#: Pixels per block of :func:`edge_window_uniform`: (n, block) float32 stays in L2.
_WINDOW_BLOCK = 512


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def edge_window_uniform(dw, p0, p1, step, inv, xl0, dxl, e_first, h, derivative, edge_out, e0_out):
    """Half-step energy and derivative maximum per pixel on a uniform energy window.

    The compiled twin of ``count_below`` + :func:`~._uniform.half_step_uniform`
    (with the pre-edge ``line``) + :func:`~._uniform.derivative_max_uniform`, in
    one sweep over the window (same float32 arithmetic; results agree to float32
    rounding). Rows are swept over blocks of pixels (vectorised), then the few
    samples around each pixel's crossing and derivative maximum are gathered.

    Parameters
    ----------
    dw : float32 (n, P), C-contiguous
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
    n, n_px = dw.shape
    half = np.float32(0.5)
    xl = np.empty(n, np.float32)
    for r in range(n):
        xl[r] = np.float32(xl0 + dxl * r)
    count = np.empty(_WINDOW_BLOCK, np.int32)
    best = np.empty(_WINDOW_BLOCK, np.float32)
    arg = np.empty(_WINDOW_BLOCK, np.int32)
    for b0 in range(0, n_px, _WINDOW_BLOCK):
        b1 = min(n_px, b0 + _WINDOW_BLOCK)
        m = b1 - b0
        a_blk, b_blk, s_blk = p0[b0:b1], p1[b0:b1], step[b0:b1]
        count[:m] = 0
        for r in range(n):  # contiguous rows, 32-bit lanes, no branches: vectorised
            xr = xl[r]
            row = dw[r, b0:b1]
            for j in range(m):
                count[j] += np.int32(row[j] < a_blk[j] + xr * b_blk[j] + half * s_blk[j])
        if derivative:
            # d[i] = x[i+3] + x[i+2] - x[i+1] - x[i]; first maximum over i = 1 .. n-5
            best[:m] = -np.inf
            arg[:m] = 1
            for i in range(1, n - 4):
                r0, r1, r2, r3 = dw[i, b0:b1], dw[i + 1, b0:b1], dw[i + 2, b0:b1], dw[i + 3, b0:b1]
                i32 = np.int32(i)
                for j in range(m):
                    d = (r3[j] + r2[j]) - (r1[j] + r0[j])
                    better = d > best[j]
                    best[j] = d if better else best[j]
                    arg[j] = i32 if better else arg[j]
        for j in range(m):
            k = b0 + j
            c = count[j]
            if c in (0, n):
                edge_out[k] = np.nan
            else:
                edge_out[k] = (
                    _half_step_rows(dw, k, c, p0[k], p1[k], inv[k], xl0, dxl) * h + e_first
                )
            if derivative:
                i = arg[j]
                y1 = best[j]
                ya = (dw[i + 2, k] + dw[i + 1, k]) - (dw[i, k] + dw[i - 1, k])
                yb = (dw[i + 4, k] + dw[i + 3, k]) - (dw[i + 2, k] + dw[i + 1, k])
                den = ya + yb - y1 - y1
                tt = np.float32(0.0)
                if den < 0:
                    tt = (ya - yb) / (den + den)
                    if not np.isfinite(tt):
                        tt = np.float32(0.0)
                    tt = min(max(tt, np.float32(-1.0)), np.float32(1.0))
                e0_out[k] = (i + 1.5 + np.float64(tt)) * h + e_first


def warm_up() -> None:
    """Load (or compile) every kernel for the array types the live analysis uses.

    A new process pays about 0.5 s per kernel on its first call; a live analysis
    calls this while the darks are taken, so that no image waits for it.
    """
    f32, u16 = np.float32, np.uint16
    frame, ones = np.zeros((2, 4), u16), np.ones((2, 4), u16)
    out, valid = np.empty((2, 4), f32), np.empty((2, 4), np.bool_)
    table = np.zeros(65536, f32)
    absorbance_table_rows(frame, ones, 65535, table, ones, f32(0.0), out, valid, False)
    open_counts(frame, ones, 65535, frame.copy(), valid)
    window, px = np.zeros((8, 4), f32), np.zeros(4, f32)
    edge_window_uniform(window, px, px, px, px, 0.0, 0.01, 8330.0, 0.5, True, px, px.copy())
