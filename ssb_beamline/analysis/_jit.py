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

import logging
import threading

import numpy as np
from numba import njit

from ._jit_cache import install_locator
from .edge_interp import _NEWTON_STEPS

log = logging.getLogger(__name__)

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
def _cubic_block(dw, b0, m, count, p0, p1, inv, xl, scr, t_out, ok_out):  # noqa: PLR0913 -- numba nopython kernel: arrays and scalars are passed flat, not as objects
    """Monotone-cubic half-step crossing of pixels ``b0 .. b0 + m`` (see :mod:`.edge_interp`).

    ``t_out[j]`` receives the crossing in rows (``q + t``, ``q = count - 1``) and
    ``ok_out[j]`` whether rows ``q``, ``q + 1`` bracket 0.5.  The Newton steps run
    as branch-free loops over the block (vectorised, many pixels in flight):
    a per-pixel loop would wait on each step's division in turn.
    """
    n = dw.shape[0]
    y0, m0, bb, cc, t = scr[0], scr[1], scr[2], scr[3], scr[4]
    half, one, two, three = np.float32(0.5), np.float32(1.0), np.float32(2.0), np.float32(3.0)
    zero = np.float32(0.0)
    for j in range(m):  # gather the 4 rows around the count, normalised, and the tangents
        k = b0 + j
        q = min(max(count[j] - 1, 0), n - 2)
        qp, qn = max(q - 1, 0), min(q + 2, n - 1)
        a, b, iv = p0[k], p1[k], inv[k]
        u0 = (dw[q, k] - a - b * xl[q]) * iv
        u1 = (dw[q + 1, k] - a - b * xl[q + 1]) * iv
        up = (dw[qp, k] - a - b * xl[qp]) * iv
        un = (dw[qn, k] - a - b * xl[qn]) * iv
        d = u1 - u0
        up = up if q >= 1 else u0 - d
        un = un if q + 2 <= n - 1 else u1 + d
        s0, s1 = u0 - up, un - u1
        t0 = two * s0 * d / (s0 + d)
        t1 = two * s1 * d / (s1 + d)
        tan0 = t0 if s0 * d > zero else zero
        tan1 = t1 if s1 * d > zero else zero
        ok_out[j] = (u0 < half) and (u1 >= half) and np.isfinite(up) and np.isfinite(un)
        y0[j] = u0
        m0[j] = tan0
        bb[j] = three * d - two * tan0 - tan1
        cc[j] = tan0 + tan1 - two * d
        t0 = (half - u0) / d
        t[j] = min(max(t0, zero), one) if np.isfinite(t0) else half
        t_out[j] = np.float64(q)
    for _ in range(_NEWTON_STEPS):
        for j in range(m):
            tj = t[j]
            pj = y0[j] + tj * (m0[j] + tj * (bb[j] + tj * cc[j])) - half
            dp = m0[j] + tj * (two * bb[j] + three * tj * cc[j])
            step = pj / dp
            step = step if dp > zero else zero
            t[j] = min(max(tj - step, zero), one)
    for j in range(m):
        t_out[j] += np.float64(t[j])


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def _half_step_line_rows(dw, k, c, a, b, iv, xl0, dxl):
    """Half-step crossing of one pixel from its count of samples below.

    Crossing of pixel ``k`` in rows (``0 < c < n`` samples below) by the
    least-squares line through the 4 rows around the count (where the monotone
    cubic's rows do not bracket 0.5), or linear interpolation if its slope is not
    positive.
    """
    n = dw.shape[0]
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
    q = min(max(c - 1, 0), n - 2)  # linear interpolation between rows q and q + 1
    u0 = (np.float64(dw[q, k]) - a - b * (xl0 + dxl * q)) * iv
    u1 = (np.float64(dw[q + 1, k]) - a - b * (xl0 + dxl * (q + 1))) * iv
    t = (0.5 - u0) / (u1 - u0)
    t = min(max(t, 0.0), 1.0) if np.isfinite(t) else 0.5
    return q + t


#: Pixels per block of :func:`edge_window_uniform`: (n, block) float32 stays in L2.
_WINDOW_BLOCK = 512


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def edge_window_uniform(dw, p0, p1, step, inv, xl0, dxl, e_first, h, derivative, edge_out, e0_out):  # noqa: PLR0912, PLR0913 -- numba nopython kernel: flat arguments; the branches are the per-pixel cases of one compiled sweep
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
    scr = np.empty((5, _WINDOW_BLOCK), np.float32)
    rows = np.empty(_WINDOW_BLOCK, np.float64)
    bracketed = np.empty(_WINDOW_BLOCK, np.bool_)
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
        _cubic_block(dw, b0, m, count, p0, p1, inv, xl, scr, rows, bracketed)
        for j in range(m):
            k = b0 + j
            c = count[j]
            if c in (0, n):
                edge_out[k] = np.nan
            elif bracketed[j]:
                edge_out[k] = rows[j] * h + e_first
            else:
                r = _half_step_line_rows(dw, k, c, p0[k], p1[k], inv[k], xl0, dxl)
                edge_out[k] = r * h + e_first
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


_WARM_LOCK = threading.Lock()
_WARM_THREAD: threading.Thread | None = None


def _warm_up_now() -> None:
    from ._kernels_edt import particle_edt_2d
    from ._parallel import prepare_pool

    f32, u16 = np.float32, np.uint16
    frame, ones = np.zeros((2, 4), u16), np.ones((2, 4), u16)
    out, valid = np.empty((2, 4), f32), np.empty((2, 4), np.bool_)
    table = np.zeros(65536, f32)
    absorbance_table_rows(frame, ones, 65535, table, ones, f32(0.0), out, valid, False)
    open_counts(frame, ones, 65535, frame.copy(), valid)
    window, px = np.zeros((8, 4), f32), np.zeros(4, f32)
    edge_window_uniform(window, px, px, px, px, 0.0, 0.01, 8330.0, 0.5, True, px, px.copy())
    lab, box = np.ones((2, 4), np.int32), np.array([[1, 0, 2, 0, 4]], np.int64)
    particle_edt_2d(lab, valid, box, 0, 1, 1.0, out, np.zeros(2))  # diffusion maps
    prepare_pool()


def _warm_up_logged() -> None:
    try:
        _warm_up_now()
    except Exception:  # pragma: no cover - the first real call reports the problem
        log.exception("background warm-up of the analysis kernels failed")


def warm_up(*, background: bool = False) -> threading.Thread | None:
    """Load (or compile) every kernel for the array types the live analysis uses.

    A new process pays numba's first-use initialisation (about 0.6 s of CPU on
    the beamline node) and then a few ms per kernel loaded from the disk cache
    (or about 0.5 s per kernel compiled into it).  With ``background=True`` this
    runs once per process in a daemon thread and returns at once (the thread):
    start it as soon as a process knows it will analyse (a live callback is
    built at the run's start, a replay before it fetches the documents), so the
    work overlaps the I/O that comes first.  A kernel called while the thread
    still runs waits for numba's compiler lock, never for a second compilation.
    Without ``background`` it waits for a running warm-up and returns None.

    Parameters
    ----------
    background : bool, default False
        True: start the warm-up in a daemon thread (once per process) and return
        at once; False: wait until every kernel is loaded.

    Returns
    -------
    threading.Thread or None
        The warm-up thread with ``background=True``; None otherwise.

    Examples
    --------
    >>> thread = warm_up(background=True)
    >>> warm_up()  # waits for the thread, then loads what is left (nothing)
    >>> thread.is_alive()
    False
    """
    global _WARM_THREAD  # noqa: PLW0603
    with _WARM_LOCK:
        thread = _WARM_THREAD
        if background:
            if thread is None:
                thread = threading.Thread(
                    target=_warm_up_logged, name="ssb-kernel-warm-up", daemon=True
                )
                _WARM_THREAD = thread
                thread.start()
            return thread
    if thread is not None:
        thread.join()
    _warm_up_now()
    return None
