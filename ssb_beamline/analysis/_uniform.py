"""Fast paths of the edge-window kernels for a uniformly spaced energy window.

TXM scans step the energy uniformly across the edge.  On a uniform grid the
smoothed derivative needs no per-row scaling, the parabola through the maximum
and the 4-point line fit of the half step have constant weights, and the
energies of the rows follow from their index, so these kernels need no table
gathers.  Results equal the general kernels of :mod:`._kernels` to float32
rounding.
"""

from __future__ import annotations

import numpy as np

from ._scratch import gather_rows, scratch
from .edge_interp import cubic_crossing

__all__ = ["derivative_max_uniform", "half_step_uniform", "try_uniform", "uniform_step"]

#: Relative tolerance on the spacing of a "uniform" grid.
_UNIFORM_RTOL = 1e-6


def uniform_step(e: np.ndarray) -> float | None:
    """The spacing of a uniformly spaced, increasing grid (None otherwise).

    Examples
    --------
    >>> uniform_step(np.array([1.0, 1.5, 2.0]))
    0.5
    >>> uniform_step(np.array([1.0, 1.5, 3.0])) is None
    True
    """
    e = np.asarray(e, np.float64)
    if e.size < 2:
        return None
    de = np.diff(e)
    h = float(de.mean())
    if h <= 0 or np.abs(de - h).max() > _UNIFORM_RTOL * h:
        return None
    return h


def _first_argmax(sub: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First row index of the column maximum of a contiguous (m < 256, P) block.

    ``max`` along axis 0 is a fast row-wise reduction; the index is recovered
    from ``sub == max`` weighted by ``m - 1 - row`` (uint8) and another max.
    """
    m, p = sub.shape
    mx = sub.max(axis=0)
    eq = scratch("uni_eq", (m, p), bool)
    np.equal(sub, mx, out=eq)
    rev = np.arange(m - 1, -1, -1, dtype=np.uint8)[:, None]
    wt = scratch("uni_wt", (m, p), np.uint8)
    np.multiply(eq.view(np.uint8), rev, out=wt)
    idx = wt.max(axis=0).astype(np.intp)
    np.subtract(m - 1, idx, out=idx)
    return idx, mx


def derivative_max_uniform(block: np.ndarray, e_first: float, h: float) -> np.ndarray:
    """:func:`~._kernels.derivative_max_block` (``exclude=0``) on a uniform grid.

    Parameters
    ----------
    block : ndarray, shape (n, P), n >= 6 and n < 256
        Spectra, energy along axis 0 (rows may be a strided view).
    e_first, h : float
        Energy of row 0 and the grid spacing.

    Returns
    -------
    ndarray of float64, shape (P,)

    Examples
    --------
    >>> e = np.arange(8320.0, 8360.0, 0.5)
    >>> mu = 1 / (1 + np.exp(-(e - 8340.2) / 1.5))
    >>> round(float(derivative_max_uniform(mu[:, None], e[0], 0.5)[0]), 1)
    8340.2
    """
    n, p = block.shape
    # s[j] = x[j] + x[j+1];  d[i-1] = s[i+1] - s[i-1] = x[i+2] + x[i+1] - x[i] - x[i-1]
    s = scratch("uni_s", (n - 1, p))
    np.add(block[1:], block[:-1], out=s)
    d = scratch("uni_d", (n - 3, p))
    np.subtract(s[2:], s[:-2], out=d)
    m = d.shape[0]
    idx, y1 = _first_argmax(d[1 : m - 1])
    idx += 1
    flat = d.reshape(-1)
    base = idx * p
    base += np.arange(p)
    y0 = np.take(flat, base - p, mode="clip")
    y2 = np.take(flat, base + p, mode="clip")
    # vertex of the parabola through (-1, y0), (0, y1), (1, y2), in units of h
    den = y0 + y2
    den -= y1
    den -= y1
    num = y0 - y2
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.divide(num, den + den, out=num)
    t[~(den < 0)] = 0.0
    t[~np.isfinite(t)] = 0.0
    np.clip(t, -1.0, 1.0, out=t)
    # row i of d sits at (E[i+1] + E[i+2]) / 2 = e_first + (i + 1.5) h
    pos = idx.astype(np.float64)
    pos += 1.5
    pos += t
    pos *= h
    pos += e_first
    return pos


def half_step_uniform(
    count: np.ndarray,
    block: np.ndarray,
    e_first: float,
    h: float,
    *,
    level: float = 0.5,
    line: tuple[np.ndarray, np.ndarray, float, float, np.ndarray] | None = None,
    interp: str = "pchip",
) -> np.ndarray:
    """:func:`~._kernels.half_step_from_count` (``npts=4``) on a uniform grid.

    ``line = (p0, p1, xl0, dxl, inv)``: ``norm = (block - p0 - p1 * xl) * inv``
    with ``xl = xl0 + dxl * row``.  ``interp`` is ``"pchip"`` (the monotone
    cubic of :func:`~.edge_interp.cubic_crossing`, the default) or ``"line"``
    (the 4-point least-squares line, also the fallback where the samples around
    the count do not bracket ``level``).

    Examples
    --------
    >>> y = np.array([[0.0], [0.25], [0.5], [0.75], [1.0]], np.float32)
    >>> float(half_step_uniform(np.array([2]), y, 0.0, 1.0)[0])
    2.0
    """
    if interp == "line":
        return _half_step_line_uniform(count, block, e_first, h, level=level, line=line)
    n = block.shape[0]
    count = np.asarray(count).astype(np.intp)
    found = (count > 0) & (count < n)
    j = np.clip(count - 1, 0, n - 2)
    rows = (np.maximum(j - 1, 0), j, j + 1, np.minimum(j + 2, n - 1))
    ys = [gather_norm(block, r, line) for r in rows]
    t, ok = bracketed_crossing(ys, j, n, level)
    res = j.astype(np.float64)
    res += t
    res *= h
    res += e_first
    bad = np.flatnonzero(~ok & found)
    if bad.size:
        sub_line = None
        if line is not None:
            sub_line = (line[0][bad], line[1][bad], line[2], line[3], line[4][bad])
        res[bad] = _half_step_line_uniform(
            count[bad], block[:, bad], e_first, h, level=level, line=sub_line
        )
    res[~found] = np.nan
    return res


def gather_norm(block: np.ndarray, rows: np.ndarray, line: tuple | None) -> np.ndarray:
    """``block[rows[p], p]`` as float64, normalised with a uniform ``line`` if given.

    Examples
    --------
    >>> gather_norm(np.arange(6.0).reshape(2, 3), np.array([1, 0, 1]), None).tolist()
    [3.0, 1.0, 5.0]
    """
    y = gather_rows(block, rows).astype(np.float64)
    if line is not None:
        p0, p1, xl0, dxl, inv = line
        y -= p0
        y -= p1 * (xl0 + dxl * rows)
        y *= inv
    return y


def bracketed_crossing(
    ys: list[np.ndarray], j: np.ndarray, n: int, level: float, h: tuple | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Monotone-cubic crossing, with a secant extension at the ends.

    :func:`~.edge_interp.cubic_crossing` of rows ``j - 1 .. j + 2`` (clipped to
    ``0 .. n - 1``): a missing neighbour is replaced by the secant extension.

    Examples
    --------
    >>> ys = [np.array([0.25]), np.array([0.25]), np.array([0.75]), np.array([1.0])]
    >>> t, ok = bracketed_crossing(ys, np.array([0]), 4, 0.5)
    >>> bool(ok[0]), round(float(t[0]), 2)
    (True, 0.46)
    """
    y_prev, y0, y1, y_next = ys
    y_prev = np.where(j >= 1, y_prev, y0 - (y1 - y0))
    y_next = np.where(j + 2 <= n - 1, y_next, y1 + (y1 - y0))
    return cubic_crossing(y_prev, y0, y1, y_next, level, h=h or (1.0, 1.0, 1.0))


def _half_step_line_uniform(  # noqa: PLR0915 -- one vectorised kernel, kept whole so its scratch buffers are reused per chunk
    count: np.ndarray,
    block: np.ndarray,
    e_first: float,
    h: float,
    *,
    level: float = 0.5,
    line: tuple[np.ndarray, np.ndarray, float, float, np.ndarray] | None = None,
) -> np.ndarray:
    """Half-step crossing by a 4-point least-squares line (uniform grid).

    The line through the rows around the crossing (the
    estimator before the monotone cubic; its fallback and ``interp="line"``).
    """
    n, p = block.shape
    count = np.asarray(count).astype(np.intp)
    found = (count > 0) & (count < n)
    start = np.clip(count - 2, 0, n - 4)
    rs = block.strides[0] // block.itemsize
    if block.strides[1] != block.itemsize or block.strides[0] % block.itemsize:
        block = np.ascontiguousarray(block)
        rs = p
    flat = np.lib.stride_tricks.as_strided(
        block, shape=((n - 1) * rs + p,), strides=(block.itemsize,), writeable=False
    )
    base = start * rs
    base += np.arange(p)
    y0 = np.take(flat, base, mode="clip")
    y1 = np.take(flat, base + rs, mode="clip")
    y2 = np.take(flat, base + 2 * rs, mode="clip")
    y3 = np.take(flat, base + 3 * rs, mode="clip")
    # least-squares line through rows start..start+3: slope per row and mean
    slope = y3 - y0
    slope *= 3.0
    slope += y2
    slope -= y1
    slope *= 0.1
    ym = y0 + y1
    ym += y2
    ym += y3
    ym *= 0.25
    mid = start.astype(np.float32)
    mid += 1.5
    if line is not None:
        p0, p1, xl0, dxl, inv = line
        ym -= p0
        ym -= p1 * (xl0 + dxl * mid)
        ym *= inv
        slope -= p1 * dxl
        slope *= inv
    with np.errstate(divide="ignore", invalid="ignore"):
        off = (level - ym) / slope
    good = np.isfinite(off) & (slope > 0)
    off = off.astype(np.float64)
    np.clip(off, -1.5, 1.5, out=off)
    res = mid.astype(np.float64)
    res += off
    bad = np.flatnonzero(~good & found)
    if bad.size:  # fallback: linear interpolation between rows j and j + 1
        j = np.clip(count[bad] - 1, 0, n - 2)
        yj = np.take(flat, j * rs + bad).astype(np.float64)
        yj1 = np.take(flat, (j + 1) * rs + bad).astype(np.float64)
        if line is not None:
            yj = (yj - p0[bad] - p1[bad] * (xl0 + dxl * j)) * inv[bad]
            yj1 = (yj1 - p0[bad] - p1[bad] * (xl0 + dxl * (j + 1))) * inv[bad]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.clip((level - yj) / (yj1 - yj), 0.0, 1.0)
        res[bad] = j + np.where(np.isfinite(t), t, 0.5)
    res *= h
    res += e_first
    res[~found] = np.nan
    return res


def try_uniform(
    kind: str,
    block: np.ndarray,
    energies: np.ndarray,
    *,
    exclude: int = 0,
    count: np.ndarray | None = None,
    level: float = 0.5,
    npts: int = 4,
    line: tuple | None = None,
    interp: str = "pchip",
) -> np.ndarray | None:
    """The uniform-grid fast path of a kernel, or None.

    The uniform-grid result of ``kind`` ("derivative" or "half_step"), or None
    when the grid (or the line abscissa) is not uniform or the options differ.

    Examples
    --------
    >>> try_uniform("derivative", np.zeros((8, 1)), np.r_[0.0, np.arange(2.0, 9.0)]) is None
    True
    """
    n = block.shape[0]
    h = uniform_step(energies)
    if h is None:
        return None
    e_first = float(np.asarray(energies, np.float64)[0])
    if kind == "derivative":
        if exclude > 1 or not 6 <= n < 256:
            return None
        return derivative_max_uniform(block, e_first, h)
    if npts != 4 or n < 4 or count is None:
        return None
    uline = None
    if line is not None:
        xl = np.asarray(line[2], np.float64)
        if uniform_step(xl) is None:
            return None
        uline = (line[0], line[1], float(xl[0]), float(xl[1] - xl[0]), line[3])
    return half_step_uniform(count, block, e_first, h, level=level, line=uline, interp=interp)
