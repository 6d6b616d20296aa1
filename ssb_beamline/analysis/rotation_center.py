"""Rotation-axis column of a parallel-beam tomography scan (geometry as :mod:`.tomography`).

Two estimates: algotom's Vo method on one sinogram row (assumes uniform angles), and the
0/180-degree projection pair registered by a masked normalised cross-correlation (exact
whatever the angular sampling, when the scan reaches 180 degrees).
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import fft as sfft

from ._validation import check_angles, numeric_stack

__all__ = [
    "check_center",
    "find_rotation_center",
    "median_center",
    "mirror_shift",
    "opposed_pair_center",
]

logger = logging.getLogger(__name__)


def check_center(center: float, width: int, what: str) -> float:
    """``center`` as a float if a reconstruction circle fits around it, else ValueError.

    Parameters
    ----------
    center : float
        Rotation-axis column, pixels (sub-pixel allowed; 0 is the first column).
    width : int
        Detector width X, pixels; the centre must lie within ``[2, X - 3]`` so a
        reconstruction circle fits around it.
    what : str
        Where the centre came from (``"given"``, ``"found"``), for the message.

    Returns
    -------
    float
        ``center`` as a float.

    Raises
    ------
    ValueError
        If ``center`` is not finite or lies outside ``[2, X - 3]``; the message says to
        pass ``center=`` or re-align the rotation axis into the field of view.
    """
    c = float(center)
    if not np.isfinite(c) or not 2.0 <= c <= width - 3:  # else no reconstruction circle
        raise ValueError(
            f"{what} rotation centre {c:.4g} lies outside the detector [2, {width - 3}]; pass "
            "center= (the axis column) or re-align the rotation axis into the field of view"
        )
    return c


def find_rotation_center(
    data: ArrayLike, angles_deg: ArrayLike, *, slice_index: int | None = None
) -> float:
    """Rotation-axis column (pixels, sub-pixel) of a parallel-beam scan.

    ``data``: (A, X) sinogram or (A, Z, X) projections (line integrals).  algotom's
    ``find_center_vo`` (0.25 px steps, within ``(X-1)/2 +- X/4``) on the first 180
    degrees of row ``slice_index`` (default middle), cross-checked by correlating
    the 0/180-degree projections if both exist (a difference > 1 px
    is logged; used if Vo fails).  Outside the detector: ValueError.

    Parameters
    ----------
    data : array_like
        ``(A, X)`` sinogram or ``(A, Z, X)`` projections (line integrals).
    angles_deg : array_like
        One angle per projection, deg.
    slice_index : int, optional
        Row used by Vo's method (default the middle).

    Examples
    --------
    >>> th = np.radians(np.arange(0, 180, 1.0))[:, None]
    >>> u = np.arange(64)[None, :]
    >>> sino = np.clip(25 - (u - 34.0 - 10 * np.cos(th)) ** 2, 0, None)  # axis at 34
    >>> abs(find_rotation_center(sino, np.arange(0, 180, 1.0)) - 34.0) < 0.5
    True
    """
    from algotom.prep.calculation import find_center_vo

    arr = numeric_stack(data, "data", (2, 3)).astype(np.float32, copy=False)
    ang = check_angles(angles_deg, arr.shape[0])
    width = arr.shape[-1]
    frames = arr[:, None, :] if arr.ndim == 2 else arr
    row = frames.shape[1] // 2 if slice_index is None else int(slice_index)
    if not 0 <= row < frames.shape[1]:
        raise ValueError(f"slice_index={row} outside 0..{frames.shape[1] - 1}")
    i0 = int(np.argmin(ang))
    half = np.flatnonzero(ang - ang[i0] < 180.0 - 1e-9)
    corr = opposed_pair_center(frames, ang)
    vo = np.nan
    try:
        sino = np.ascontiguousarray(frames[half[np.argsort(ang[half])], row])
        lo, hi = (width - 1) / 2 - width / 4, (width - 1) / 2 + width / 4
        vo = float(find_center_vo(sino, start=max(lo, 0), stop=min(hi, width - 1), ncore=1))
    except (ValueError, IndexError, ZeroDivisionError) as exc:
        logger.warning("find_center_vo failed (%s); using the 0/180-degree correlation", exc)
    if not np.isfinite(vo):
        if corr is None:
            raise ValueError("centre not found (Vo failed, no 0/180-degree pair): pass center=")
        vo = corr
    elif corr is not None and abs(vo - corr) > 1.0:
        logger.warning("rotation centre: Vo %.2f vs 0/180 correlation %.2f px disagree", vo, corr)
    pair = "none" if corr is None else f"{corr:.2f}"
    logger.info("rotation centre %.2f px (0/180 correlation: %s)", vo, pair)
    return check_center(vo, width, "found")


def opposed_pair_center(data: ArrayLike, angles_deg: ArrayLike) -> float | None:
    """Rotation-axis column from the projections at the first angle and 180 degrees on.

    The projection at exactly ``angles[0] + 180`` is interpolated linearly in angle
    between the two frames around it (so a fly scan's irregular angles do not
    matter), mirrored and registered to the first one by :func:`mirror_shift`
    (normalised cross-correlation over all rows).  None when the scan does not
    reach 180 degrees, or only across a gap of more than twice the median angle step.

    Parameters
    ----------
    data : array_like
        ``(A, X)`` sinogram or ``(A, Z, X)`` projections.
    angles_deg : array_like
        One angle per projection, deg.

    Examples
    --------
    >>> ang = np.arange(0.0, 182.0, 3.0)
    >>> u = np.arange(64)[None, None, :]
    >>> th = np.radians(ang)[:, None, None]
    >>> proj = np.clip(25 - (u - 34.0 - 10 * np.cos(th)) ** 2, 0, None) * np.ones((1, 8, 1))
    >>> abs(opposed_pair_center(proj, ang) - 34.0) < 0.25
    True
    """
    arr = numeric_stack(data, "data", (2, 3)).astype(np.float32, copy=False)
    ang = check_angles(angles_deg, arr.shape[0])
    frames = arr[:, None, :] if arr.ndim == 2 else arr
    order = np.argsort(ang)
    a = ang[order]
    target = a[0] + 180.0
    hi = int(np.searchsorted(a, target - 1e-9))
    if hi >= a.size:
        return None
    if a[hi] - target <= 1e-9:  # a frame at 180 degrees (within rounding)
        opposite = frames[order[hi]]
    else:
        lo, step = hi - 1, float(np.median(np.diff(a)))
        if a[hi] - a[lo] > 2.0 * step:
            return None
        w = np.float32((target - a[lo]) / (a[hi] - a[lo]))
        opposite = frames[order[lo]] * (1 - w) + frames[order[hi]] * w
    width = frames.shape[-1]
    shift = mirror_shift(frames[order[0]], opposite[:, ::-1], min_overlap=width // 2)
    return None if shift is None else float((width - 1 + shift) / 2)


def _row_correlation(a: NDArray, b: NDArray, n: int) -> NDArray[np.float64]:
    """``sum over rows and u of a[u] b[u - s]`` for every shift ``s`` (index ``s mod n``)."""
    spec = sfft.rfft(a, n, axis=-1) * np.conj(sfft.rfft(b, n, axis=-1))
    return sfft.irfft(spec.reshape(-1, spec.shape[-1]).sum(axis=0), n)


def mirror_shift(reference: ArrayLike, moving: ArrayLike, *, min_overlap: int) -> float | None:
    """Column shift ``s`` best aligning ``moving[:, u - s]`` with ``reference[:, u]``.

    The Pearson correlation of the two over their overlapping columns (at least
    ``min_overlap``), for every integer shift at once by FFT (masked normalised
    cross-correlation, Padfield 2012), refined by a parabola through the peak.  Unlike
    whitened phase correlation it is not led astray by noise on faint, small
    projections, and an overlap of flat background cannot score.  None when no shift
    has both sides varying.

    Parameters
    ----------
    reference, moving : array_like, shape (..., X)
        Two images (or rows) of the same shape; the last axis is the column axis.
        Other shapes raise ``ValueError``.
    min_overlap : int
        Fewest overlapping columns a shift may have to be scored (keyword only); a
        larger value rejects shifts that align only the edges.

    Returns
    -------
    float or None
        The shift ``s``, columns (sub-pixel); None when no shift has both sides varying
        over the overlap (flat images).

    Examples
    --------
    >>> u = np.arange(40.0)
    >>> ref = np.exp(-((u - 22.3) ** 2) / 8)[None, :]
    >>> mov = np.exp(-((u - 17.3) ** 2) / 8)[None, :]
    >>> round(mirror_shift(ref, mov, min_overlap=20), 1)
    5.0
    """
    ref = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    mov = np.atleast_2d(np.asarray(moving, dtype=np.float64))
    if ref.shape != mov.shape:
        raise ValueError(f"mirror_shift needs equal shapes, got {ref.shape} and {mov.shape}")
    rows, width = int(np.prod(ref.shape[:-1])), ref.shape[-1]
    n, one = sfft.next_fast_len(2 * width), np.ones((1, width))
    shifts = np.arange(1 - width, width)
    pick = shifts % n
    count = (width - np.abs(shifts)) * rows  # overlapping pixels at each shift
    s_ref, s_mov = _row_correlation(ref, one, n)[pick], _row_correlation(one, mov, n)[pick]
    cross = _row_correlation(ref, mov, n)[pick]
    sq_ref, sq_mov = (
        _row_correlation(ref * ref, one, n)[pick],
        _row_correlation(one, mov * mov, n)[pick],
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        var_ref, var_mov = sq_ref - s_ref**2 / count, sq_mov - s_mov**2 / count
        # a side is flat when its variance is FFT rounding of its sum of squares
        varying = (var_ref > 1e-9 * sq_ref) & (var_mov > 1e-9 * sq_mov)
        ok = (count >= min_overlap * rows) & varying
        score = np.where(ok, (cross - s_ref * s_mov / count) / np.sqrt(var_ref * var_mov), -np.inf)
    k = int(np.argmax(score))
    if not np.isfinite(score[k]):
        return None
    shift = float(shifts[k])
    if 0 < k < shifts.size - 1 and np.isfinite(score[k - 1]) and np.isfinite(score[k + 1]):
        left, mid, right = score[k - 1], score[k], score[k + 1]
        if (curve := left - 2 * mid + right) < 0:
            shift += 0.5 * (left - right) / curve
    return float(shift)


def median_center(stack: np.ndarray, angles: np.ndarray, rows: int = 7) -> float:
    """The rotation centre of a tomogram's projections ``(A, Z, X)``.

    From the 0/180-degree pair when the scan reaches 180 degrees
    (:func:`opposed_pair_center`: exact whatever
    the angular sampling, which a fly scan on a busy machine makes irregular);
    otherwise the median of Vo's method over ``rows`` rows (one row can mislead).

    Parameters
    ----------
    stack : numpy.ndarray, shape (A, Z, X)
        Projections (line integrals, ``-log`` of the flat-corrected transmission) of
        A angles, Z rows, X columns.
    angles : numpy.ndarray, shape (A,)
        Rotation angle of each projection, degrees, increasing (irregular steps of a
        fly scan are fine).
    rows : int, default 7
        Number of rows, spread evenly from 20 % to 80 % of the height, on which Vo's
        method runs when the scan does not reach 180 degrees.

    Returns
    -------
    float
        Rotation-axis column, pixels (sub-pixel).

    Raises
    ------
    ValueError
        If Vo's method places the centre outside the detector (see
        :func:`find_rotation_center`).
    """
    pair = opposed_pair_center(stack, angles)
    if pair is not None and 0.0 < pair < stack.shape[-1] - 1:
        return pair
    picks = np.linspace(0.2, 0.8, rows) * (stack.shape[1] - 1)
    found = [find_rotation_center(stack, angles, slice_index=round(r))
             for r in picks]  # fmt: skip
    return float(np.median(found))
