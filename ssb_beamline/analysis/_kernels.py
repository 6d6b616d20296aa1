"""Vectorised per-pixel kernels on (N, P) blocks (energy along axis 0).

All kernels avoid per-pixel Python loops: they loop (at most) over the few
energies of the edge window and operate on whole rows of pixels.  Temporaries
come from the per-thread scratch pool of :mod:`._scratch`, so processing a stack chunk by chunk does
not allocate (and page-fault) new memory for every chunk.
"""

from __future__ import annotations

import numpy as np

from ._scratch import flat_view, gather_rows, scratch
from ._uniform import try_uniform
from .edge_interp import pchip_half_step

__all__ = [
    "count_below",
    "derivative_max_block",
    "gather_rows",
    "half_step_block",
    "half_step_from_count",
    "peak_block",
    "scratch",
    "smooth3",
    "smoothed_derivative",
]


def smooth3(block: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """[1, 2, 1] / 4 smoothing along axis 0; the end rows are copied unchanged.

    Examples
    --------
    >>> smooth3(np.array([[0.0], [4.0], [0.0]])).ravel().tolist()
    [0.0, 2.0, 0.0]
    """
    if out is None:
        out = np.empty_like(block)
    n = block.shape[0]
    if n < 3:
        out[...] = block
        return out
    mid = out[1:-1]
    np.add(block[:-2], block[2:], out=mid)
    mid += block[1:-1]
    mid += block[1:-1]
    mid *= 0.25
    out[0] = block[0]
    out[-1] = block[-1]
    return out


def peak_block(
    values: np.ndarray, x: np.ndarray, lo: int, hi: int, *, with_height: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Sub-sample position and height of the per-column maximum of ``values[lo:hi]``.

    The maximum row ``i`` (``lo <= i < hi``, needs ``1 <= lo`` and
    ``hi <= len - 1``) is refined with a parabola through rows ``i - 1 .. i + 1``
    (vertex clipped to ``[x[i-1], x[i+1]]``; no refinement where the three
    points are not concave).  The row index is the number of rows whose
    running maximum is still below the final maximum (one cheap pass per row,
    no ``argmax`` along axis 0).

    Returns
    -------
    position, height : ndarray of float64, shape (P,)
        ``height`` is None when ``with_height`` is False.

    Examples
    --------
    >>> x = np.arange(5.0)
    >>> v = -((x - 2.25) ** 2)[:, None]
    >>> [round(float(a[0]), 3) for a in peak_block(v, x, 1, 4)]
    [2.25, 0.0]
    """
    x = np.asarray(x, np.float64)
    p = values.shape[1]
    sub = values[lo:hi]
    m = sub.shape[0]
    run = scratch("peak_run", (m, p), values.dtype)
    run[0] = sub[0]
    for i in range(1, m):
        np.maximum(run[i - 1], sub[i], out=run[i])
    below = scratch("peak_below", (m, p), bool)
    np.less(run, run[-1], out=below)
    dtype = np.uint8 if m < 256 else np.intp
    idx = np.add.reduce(below.view(np.uint8), axis=0, dtype=dtype).astype(np.intp)
    idx += lo
    flat, rs = flat_view(values)
    base = idx * rs + np.arange(p)
    y1 = run[-1].astype(np.float32)
    y0 = np.take(flat, base - rs).astype(np.float32)
    y2 = np.take(flat, base + rs).astype(np.float32)
    h0_tab = np.zeros(x.size, np.float32)
    h2_tab = np.zeros(x.size, np.float32)
    h0_tab[1:] = x[:-1] - x[1:]
    h2_tab[:-1] = x[1:] - x[:-1]
    h0 = np.take(h0_tab, idx)
    h2 = np.take(h2_tab, idx)
    with np.errstate(divide="ignore", invalid="ignore"):
        d0 = (y0 - y1) / h0
        d2 = (y2 - y1) / h2
        a = (d2 - d0) / (h2 - h0)
        b = d0 - a * h0
        t = np.where(a < 0, -b / (2 * a), 0.0).astype(np.float32)
    t = np.where(np.isfinite(t), t, 0.0)
    np.clip(t, h0, h2, out=t)
    if not with_height:
        return x[idx] + t, None
    height = y1 + t * (b + a * t)
    height = np.where(np.isfinite(height), np.maximum(height, y1), y1)
    return x[idx] + t, height.astype(np.float64)


def smoothed_derivative(block: np.ndarray, energies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed finite-difference derivative along axis 0 (3 array passes).

    ``d[i] = (x[i+2] + x[i+1] - x[i] - x[i-1]) / (E[i+2] + E[i+1] - E[i] - E[i-1])``,
    placed at ``(E[i] + E[i+1]) / 2`` for ``i = 1 .. n-3``: on a uniform grid this
    is the two-point difference smoothed with a [1, 2, 1] / 4 kernel.

    Returns
    -------
    d : ndarray of float32, shape (n - 3, P)
        Derivative (a per-thread scratch buffer: copy it to keep it).
    e_mid : ndarray of float64, shape (n - 3,)
        Energies of the rows of ``d``.

    Examples
    --------
    >>> d, em = smoothed_derivative(np.arange(6.0)[:, None] * 2, np.arange(6.0))
    >>> d.ravel().tolist(), em.tolist()
    ([2.0, 2.0, 2.0], [1.5, 2.5, 3.5])
    """
    e = np.asarray(energies, np.float64)
    n, p = block.shape
    c = scratch("deriv_c", (n - 2, p), np.float32)
    np.subtract(block[2:], block[:-2], out=c)  # c[i-1] = x[i+1] - x[i-1]
    d = scratch("deriv_d", (n - 3, p), np.float32)
    np.add(c[:-1], c[1:], out=d)
    de = e[3:] + e[2:-1] - e[1:-2] - e[:-3]
    d *= (1.0 / de).astype(np.float32)[:, None]
    return d, 0.5 * (e[1:-2] + e[2:-1])


def derivative_max_block(
    block: np.ndarray, energies: np.ndarray, *, exclude: int = 0
) -> np.ndarray:
    """Energy of the maximum of the smoothed derivative, per pixel (sub-sample).

    The derivative is :func:`smoothed_derivative` (two-point difference
    smoothed with [1, 2, 1] / 4); its maximum is refined with a parabola
    through the maximum and its neighbours.  Adding a line to, or scaling (by a
    positive factor) the spectra does not change the result, so mu and
    normalised mu give the same e0.

    Parameters
    ----------
    block : ndarray, shape (n, P)
        Spectra (mu or normalised mu), energy along axis 0.
    energies : ndarray, shape (n,)
        Strictly increasing energies of the rows.
    exclude : int
        Derivative samples at each end that may not hold the maximum (at least 1).

    Returns
    -------
    ndarray of float64, shape (P,)

    Examples
    --------
    >>> e = np.arange(8320.0, 8360.0, 0.5)
    >>> mu = 1 / (1 + np.exp(-(e - 8340.2) / 1.5))
    >>> round(float(derivative_max_block(mu[:, None], e)[0]), 1)
    8340.2
    """
    n = block.shape[0]
    if n < 6:
        raise ValueError(
            f"too few points: the edge window holds {n} energies, at least 6 are needed "
            "for a derivative maximum. Measure more energies across the edge."
        )
    fast = try_uniform("derivative", block, energies, exclude=exclude)
    if fast is not None:
        return fast
    d, em = smoothed_derivative(block, energies)
    m = d.shape[0]
    lo = max(1, exclude)
    hi = min(m - 1, m - exclude)
    if hi <= lo:
        lo, hi = 1, m - 1
    return peak_block(d, em, lo, hi, with_height=False)[0]


def count_below(values: np.ndarray, threshold: np.ndarray | float) -> np.ndarray:
    """Number of rows with ``values < threshold`` per column (uint8 if n < 256).

    Examples
    --------
    >>> count_below(np.array([[0.1, 0.9], [0.6, 0.2], [0.3, 0.1]]), 0.5).tolist()
    [2, 2]
    """
    below = scratch("below", values.shape, bool)
    np.less(values, threshold, out=below)
    dtype = np.uint8 if values.shape[0] < 256 else np.intp
    return np.add.reduce(below.view(np.uint8), axis=0, dtype=dtype).astype(np.intp)


_TABLES: dict[tuple[bytes, int, bytes], tuple[np.ndarray, ...]] = {}


def _line_tables(
    e: np.ndarray, k: int, xl: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Tables of the 4-point line fits of an energy grid.

    Per fit start s (rows s..s+k-1): mean energy, float32 slope weights, and
    mean / slope of ``xl`` over those rows (cached per energy grid).
    """
    key = (e.tobytes(), k, b"" if xl is None else np.asarray(xl, np.float64).tobytes())
    hit = _TABLES.get(key)
    if hit is None:
        rows = np.arange(e.size - k + 1)[:, None] + np.arange(k)[None, :]
        xs = e[rows]  # (S, k)
        xm = xs.mean(axis=1)
        dx = xs - xm[:, None]
        weights = dx / (dx * dx).sum(axis=1, keepdims=True)  # slope = weights @ y
        xl_mean = xl_slope = None
        if xl is not None:
            xls = np.asarray(xl, np.float64)[rows]
            xl_mean = xls.mean(axis=1).astype(np.float32)
            xl_slope = np.einsum("sk,sk->s", weights, xls).astype(np.float32)
        if len(_TABLES) > 64:
            _TABLES.clear()
        hit = _TABLES[key] = (xm, weights.astype(np.float32), xl_mean, xl_slope)
    return hit


def half_step_from_count(
    count: np.ndarray,
    block: np.ndarray,
    energies: np.ndarray,
    *,
    level: float = 0.5,
    npts: int = 4,
    line: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
    interp: str = "pchip",
) -> np.ndarray:
    """Half-step energies from the per-pixel count of samples below ``level``.

    ``block`` (n, P) holds normalised spectra, or raw spectra with
    ``line = (p0, p1, x, inv)`` such that ``norm = (block - p0 - p1 * x[:, None]) * inv``
    (``x`` (n,) linear in energy).  See :func:`half_step_block` for the
    algorithm and ``interp``.

    Examples
    --------
    >>> e = np.arange(5.0)
    >>> y = np.array([[0.0], [0.25], [0.5], [0.75], [1.0]])
    >>> float(half_step_from_count(np.array([2]), y, e)[0])
    2.0
    """
    e = np.asarray(energies, np.float64)
    fast = try_uniform(
        "half_step", block, e, count=count, level=level, npts=npts, line=line, interp=interp
    )
    if fast is not None:
        return fast
    if interp == "pchip":
        return pchip_half_step(count, block, e, level=level, line=line, fallback=_half_step_line)
    return _half_step_line(count, block, e, level=level, npts=npts, line=line)


def _half_step_line(count, block, e, *, level=0.5, npts=4, line=None):
    """The least-squares line of :func:`half_step_from_count` (``interp="line"``)."""
    n, p = block.shape
    count = np.asarray(count).astype(np.intp)
    found = (count > 0) & (count < n)
    k = min(npts, n)
    # crossing between j = count - 1 and j + 1; fit rows start .. start + k - 1
    start = np.clip(count - k // 2, 0, n - k)
    xm_tab, w_tab, xl_mean, xl_slope = _line_tables(e, k, None if line is None else line[2])
    flat, rs = flat_view(block)
    base = start * rs
    base += np.arange(p)
    y = np.take(flat, base[None, :] + (np.arange(k) * rs)[:, None]).astype(np.float32)
    slope = np.einsum("pk,kp->p", np.take(w_tab, start, axis=0), y)
    ym = y.mean(axis=0)
    if line is not None:
        p0, p1, xl, inv = line
        xl = np.asarray(xl, np.float64)
        ym -= p0
        ym -= p1 * np.take(xl_mean, start)
        ym *= inv
        slope -= p1 * np.take(xl_slope, start)
        slope *= inv
    with np.errstate(divide="ignore", invalid="ignore"):
        e_fit = np.take(xm_tab, start) + (np.float32(level) - ym) / slope
    good_fit = np.isfinite(e_fit) & (slope > 0)
    res = np.clip(e_fit, np.take(e, start), np.take(e, start + k - 1))
    bad = np.flatnonzero(~good_fit & found)
    if bad.size:  # fallback: linear interpolation between samples j and j + 1
        j = np.clip(count[bad] - 1, 0, n - 2)
        yj = np.take(flat, j * rs + bad).astype(np.float64)
        yj1 = np.take(flat, (j + 1) * rs + bad).astype(np.float64)
        if line is not None:
            yj = (yj - p0[bad] - p1[bad] * xl[j]) * inv[bad]
            yj1 = (yj1 - p0[bad] - p1[bad] * xl[j + 1]) * inv[bad]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.clip((level - yj) / (yj1 - yj), 0.0, 1.0)
        t = np.where(np.isfinite(t), t, 0.5)
        res[bad] = e[j] + t * (e[j + 1] - e[j])
    res[~found] = np.nan
    return res


def half_step_block(
    norm: np.ndarray,
    energies: np.ndarray,
    *,
    level: float = 0.5,
    npts: int = 4,
    interp: str = "pchip",
) -> np.ndarray:
    """Energy where normalised spectra cross ``level`` going up, per pixel.

    Algorithm (no per-pixel loop):

    1. count the window samples below ``level``; for an edge rising through the
       window the crossing lies between sample ``j = count - 1`` and ``j + 1``
       (a noise flip near the crossing moves ``j`` by one sample at most);
    2. ``interp="pchip"`` (default): where ``y[j] < level <= y[j + 1]``, solve
       the monotone cubic (Fritsch-Carlson PCHIP) through ``j - 1 .. j + 2``
       for ``level`` (:func:`~.edge_interp.cubic_crossing`): it follows the
       curvature of the edge, so the answer does not depend on the grid step;
    3. ``interp="line"`` (and where the samples do not bracket ``level``):
       fit a straight line by least squares to the ``npts`` samples around the
       crossing (``j - 1 .. j + 2`` for 4) and solve it for ``level``; the
       result is clipped to that energy span.  Where the local slope is not
       positive, linear interpolation between ``j`` and ``j + 1`` is used.
       The line averages noise (about 0.55x the per-pixel scatter of the
       cubic) but lands early on a curved edge, by up to a quarter of a step.

    Pixels whose spectrum is everywhere below or everywhere above ``level`` in
    the window have no edge there and get NaN.  Keep the window short enough
    (default e0 - 10 .. e0 + 6 eV) that post-edge values stay above ``level``.

    Examples
    --------
    >>> e = np.arange(8320.0, 8360.0, 0.5)
    >>> mu = 1 / (1 + np.exp(-(e - 8340.2) / 1.5))
    >>> round(float(half_step_block(mu[:, None], e)[0]), 2)
    8340.2
    """
    n = norm.shape[0]
    if n < 3:
        raise ValueError(
            f"too few points: the edge window holds {n} energies, at least 3 are needed "
            "to locate the half-step crossing. Measure more energies across the edge."
        )
    if interp not in ("pchip", "line"):
        raise ValueError(f"interp must be 'pchip' or 'line'; got {interp!r}. Pick one of those.")
    count = count_below(norm, np.float32(level))
    return half_step_from_count(count, norm, energies, level=level, npts=npts, interp=interp)
