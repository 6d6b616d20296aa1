"""The whole joint-fit pass of a pixel chunk in one compiled sweep over its spectra.

:func:`joint_pass` is the compiled twin of
:func:`~._xanes_chunks.joint_fit_chunk` + :func:`~._xanes_chunks.edge_and_norm`
on a uniformly spaced edge window (the default grids), for a C-contiguous
float32 ``(N, P)`` stack.  The numpy path reads and writes the chunk several
times: ``D = mu - mu[0]`` (written out), the projection product, the sum of
squares, a dozen per-pixel vector operations, and the edge-window kernel.  Here
every block of ``_BLOCK`` pixels is read from the stack once: the projections
and the sum of squares are accumulated row by row (registers and L1), the
edge-window rows of ``D`` are kept in a small buffer that stays in L2 for
:func:`~._kernels_window.edge_window_uniform`, and the per-pixel finish (edge step,
fraction, RMS residual) is a scalar loop.  Only the normalised stack, when asked
for, reads the block a second time (from the cache).

Same float32 arithmetic as the numpy path except for the order of the sums of
the projection (BLAS blocks its sums differently), so results agree to float32
rounding.  Like the other kernels it is ``nogil`` and serial; the thread pool of
:func:`~._parallel.run_chunks` runs it over chunks.  numba cannot fuse numpy
calls across a chunk, which is why this is hand-written.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit_cache import install_locator
from ._kernels_window import edge_window_into, window_scratch

install_locator()

__all__ = ["joint_pass", "joint_scratch"]

#: Pixels per block: the window rows of ``D`` (about 40 x _BLOCK float32) stay in L2,
#: the accumulators (6 x _BLOCK float32) in L1.
_BLOCK = 1024


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def _project_rows4(mu2, r, k0, m, jw, sw, acc, dwin, win_row):
    """Add rows ``r .. r + 3`` of ``D`` to the accumulators (one load and store of each).

    ``sw`` holds 1 for rows in the fit range, else 0; ``win_row`` is the row of
    ``dwin`` that row ``r`` goes to, or -1 when the four rows are outside the window.
    """
    a0, a1, a2, a3, ss, x0 = acc[0], acc[1], acc[2], acc[3], acc[4], acc[5]
    ra, rb = mu2[r, k0 : k0 + m], mu2[r + 1, k0 : k0 + m]
    rc, rd = mu2[r + 2, k0 : k0 + m], mu2[r + 3, k0 : k0 + m]
    w0a, w0b, w0c, w0d = jw[0, r], jw[0, r + 1], jw[0, r + 2], jw[0, r + 3]
    w1a, w1b, w1c, w1d = jw[1, r], jw[1, r + 1], jw[1, r + 2], jw[1, r + 3]
    w2a, w2b, w2c, w2d = jw[2, r], jw[2, r + 1], jw[2, r + 2], jw[2, r + 3]
    w3a, w3b, w3c, w3d = jw[3, r], jw[3, r + 1], jw[3, r + 2], jw[3, r + 3]
    sa, sb, sc, sd = sw[r], sw[r + 1], sw[r + 2], sw[r + 3]
    if win_row >= 0:
        oa, ob, oc, od = dwin[win_row], dwin[win_row + 1], dwin[win_row + 2], dwin[win_row + 3]
        for j in range(m):
            x = x0[j]
            da, db, dc, dd = ra[j] - x, rb[j] - x, rc[j] - x, rd[j] - x
            oa[j], ob[j], oc[j], od[j] = da, db, dc, dd
            a0[j] += (w0a * da + w0b * db) + (w0c * dc + w0d * dd)
            a1[j] += (w1a * da + w1b * db) + (w1c * dc + w1d * dd)
            a2[j] += (w2a * da + w2b * db) + (w2c * dc + w2d * dd)
            a3[j] += (w3a * da + w3b * db) + (w3c * dc + w3d * dd)
            ss[j] += (sa * da * da + sb * db * db) + (sc * dc * dc + sd * dd * dd)
    else:
        for j in range(m):
            x = x0[j]
            da, db, dc, dd = ra[j] - x, rb[j] - x, rc[j] - x, rd[j] - x
            a0[j] += (w0a * da + w0b * db) + (w0c * dc + w0d * dd)
            a1[j] += (w1a * da + w1b * db) + (w1c * dc + w1d * dd)
            a2[j] += (w2a * da + w2b * db) + (w2c * dc + w2d * dd)
            a3[j] += (w3a * da + w3b * db) + (w3c * dc + w3d * dd)
            ss[j] += (sa * da * da + sb * db * db) + (sc * dc * dc + sd * dd * dd)


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def _project_row(mu2, r, k0, m, jw, sw, acc, dwin, win_row):
    """Add row ``r`` of ``D`` to the accumulators (see :func:`_project_rows4`)."""
    a0, a1, a2, a3, ss, x0 = acc[0], acc[1], acc[2], acc[3], acc[4], acc[5]
    row = mu2[r, k0 : k0 + m]
    w0, w1, w2, w3, s = jw[0, r], jw[1, r], jw[2, r], jw[3, r], sw[r]
    if win_row >= 0:
        out = dwin[win_row]
        for j in range(m):
            d = row[j] - x0[j]
            out[j] = d
            a0[j] += w0 * d
            a1[j] += w1 * d
            a2[j] += w2 * d
            a3[j] += w3 * d
            ss[j] += s * d * d
    else:
        for j in range(m):
            d = row[j] - x0[j]
            a0[j] += w0 * d
            a1[j] += w1 * d
            a2[j] += w2 * d
            a3[j] += w3 * d
            ss[j] += s * d * d


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def _project_block(mu2, k0, m, jw, sw, win_a, win_b, acc, dwin):
    """Accumulate ``jw @ D`` (rows 0-3 of ``acc``) and ``sum(sw * D ** 2)`` (row 4).

    ``D = mu2[:, k0:k0+m] - mu2[0, k0:k0+m]``; the window rows of ``D`` are copied
    to ``dwin`` ((win_b - win_a, m), C order).  Row 5 of ``acc`` holds ``mu2[0]``.
    Rows go four at a time where the four are all inside or all outside the window.
    """
    n = mu2.shape[0]
    first = mu2[0, k0 : k0 + m]
    zero = np.float32(0.0)
    for j in range(m):
        acc[5, j] = first[j]
        acc[0, j] = zero
        acc[1, j] = zero
        acc[2, j] = zero
        acc[3, j] = zero
        acc[4, j] = zero
    if win_a == 0:  # D's row 0 is zero
        for j in range(m):
            dwin[0, j] = zero
    r = np.int64(1)  # row 0 of D is zero: it adds nothing
    while r < n:
        inside = win_a <= r < win_b
        if r + 4 <= n and inside == (win_a <= r + 3 < win_b):
            _project_rows4(mu2, r, k0, m, jw, sw, acc, dwin, r - win_a if inside else -1)
            r += 4
        else:
            _project_row(mu2, r, k0, m, jw, sw, acc, dwin, r - win_a if inside else -1)
            r += 1


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def _finish_block(acc, jg, inv_nfit, k0, m, px, pre_edge, frac, step_out, resid, ok_out):  # noqa: PLR0913 -- numba nopython kernel: arrays and scalars are passed flat
    """Per pixel: pre-edge line, edge step, 1 / step, oxidised fraction, RMS residual.

    ``px`` rows receive (p0, p1, step, 1 / step) of the block.
    """
    zero, one = np.float32(0.0), np.float32(1.0)
    for j in range(m):
        k = k0 + j
        c0, c1, c2, c3 = acc[0, j], acc[1, j], acc[2, j], acc[3, j]
        step = c2 + c3
        ok = np.isfinite(step) and step > zero
        inv = one / step if ok else zero
        px[0, j] = c0
        px[1, j] = c1
        px[2, j] = step
        px[3, j] = inv
        pre_edge[0, k] = c0 + acc[5, j]
        pre_edge[1, k] = c1
        f = c3 * inv
        frac[k] = min(max(f, zero), one) if not np.isnan(f) else f
        step_out[k] = step
        ok_out[k] = ok
        # RMS residual in closed form: |D|^2 - c^T G c
        q = zero
        for a in range(4):
            ca = acc[a, j]
            q += ca * (jg[a, 0] * c0 + jg[a, 1] * c1 + jg[a, 2] * c2 + jg[a, 3] * c3)
        s = max(np.float64(acc[4, j]) - np.float64(q), 0.0)
        resid[k] = np.sqrt(s * inv_nfit) * inv


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def _normalise_block(mu2, k0, m, x0, px, line_x, norm):
    """``norm[:, k0:k0+m] = (D - p0 - p1 x) / step`` (0 where the step is not positive)."""
    n = mu2.shape[0]
    p0, p1, inv = px[0], px[1], px[3]
    for r in range(n):
        row = mu2[r, k0 : k0 + m]
        out = norm[r, k0 : k0 + m]
        xr = line_x[r]
        for j in range(m):
            out[j] = ((row[j] - x0[j]) - (p0[j] + xr * p1[j])) * inv[j]


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def joint_pass(mu2, c0, c1, jw, jg, fit, window, grid, derivative, norm, outputs, scratch):  # noqa: PLR0913 -- numba nopython kernel: arrays and scalars are passed flat
    """Joint fit, edge energies and (optionally) the normalised spectra of pixels ``c0:c1``.

    Parameters
    ----------
    mu2 : float32 (N, P), C-contiguous
        The stack.
    c0, c1 : int
        The pixel chunk.
    jw, jg : float32 (4, N), (4, 4)
        Joint-fit solve weights and Gram matrix.
    fit : (float32 (N,), float)
        1 for the LCF rows, else 0; and ``1 / (number of LCF rows)``.
    window : (int, int)
        Edge-window rows ``[a, b)``.
    grid : (float, float, float, float, float32 (N,))
        Uniform window: first energy, step (eV), first reduced energy and its step
        per row; and the reduced energies of all rows (pre-edge line of ``norm``).
    derivative : bool
        Compute the derivative-maximum ``e0`` (else NaN).
    norm : float32 (N, P) or (0, 0)
        Normalised stack output; a (0, 0) array for none.
    outputs : tuple of arrays (P,)
        pre_edge (2, P), frac_ox, step, resid, ok, edge, e0.
    scratch : tuple of arrays
        Work arrays from :func:`joint_scratch` (``c1 - c0`` pixels, this window):
        the kernel allocates none, so loading it from the disk cache needs none of
        numba's array-allocation code (whose import costs a new process ~20 ms).
    """
    sw, inv_nfit = fit
    win_a, win_b = window
    e_first, h, xl0, dxl, line_x = grid
    pre_edge, frac, step, resid, ok, edge, e0 = outputs
    acc, px, dwin_full, dwin_tail, edge_b, e0_b, window_work = scratch
    want_norm = norm.shape[0] > 0
    for k0 in range(c0, c1, _BLOCK):
        m = min(_BLOCK, c1 - k0)
        dwin = dwin_full if m == _BLOCK else dwin_tail  # (window rows, m), C-contiguous
        _project_block(mu2, k0, m, jw, sw, win_a, win_b, acc, dwin)
        _finish_block(acc, jg, inv_nfit, k0, m, px, pre_edge, frac, step, resid, ok)
        edge_window_into(
            dwin, px[0], px[1], px[2], px[3], xl0, dxl, e_first, h, derivative, edge_b, e0_b,
            window_work,
        )  # fmt: skip
        for j in range(m):
            k = k0 + j
            good = ok[k]
            edge[k] = edge_b[j] if good else np.nan
            e0[k] = e0_b[j] if good and derivative else np.nan
        if want_norm:
            _normalise_block(mu2, k0, m, acc[5], px, line_x, norm)


def joint_scratch(c0: int, c1: int, window: tuple[int, int]) -> tuple:
    """The work arrays of :func:`joint_pass` over pixels ``c0:c1`` and edge-window rows.

    Examples
    --------
    >>> acc, px, full, tail, edge, e0, work = joint_scratch(0, 1500, (10, 40))
    >>> full.shape, tail.shape, acc.shape
    ((30, 1024), (30, 476), (6, 1024))
    """
    nwin, f32 = window[1] - window[0], np.float32
    tail = (c1 - c0) % _BLOCK
    acc, px = np.empty((6, _BLOCK), f32), np.empty((4, _BLOCK), f32)
    full, part = np.empty((nwin, _BLOCK), f32), np.empty((nwin, tail), f32)
    edge_b, e0_b = np.empty(_BLOCK, f32), np.empty(_BLOCK, f32)
    return acc, px, full, part, edge_b, e0_b, window_scratch(nwin)
