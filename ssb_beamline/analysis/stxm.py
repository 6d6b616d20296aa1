"""STXM point-detector counts to optical density, valence-ratio and Ni3+ fraction maps.

Pure numpy. The chain, per pixel of a line counted for ``dwell`` s:

1. dead time (non-paralysable counter, ``tau`` s): ``n = m / (1 - m * tau / dwell)``;
2. dark: ``rate = n / dwell - dark_rate`` (``dark_rate`` from the shutter-closed pixels);
3. I0: ``T = rate / (i0_flux * open_rate)`` where ``open_rate`` is the rate per unit
   monitor flux measured off the sample at the same energy and ``i0_flux`` the I0
   monitor at the pixel (drift between the I0 line and the pixel cancels);
4. ``OD = -ln T``.

Fly-scan pixels are placed at the stage position interpolated from the monitored
readback at their time stamps (:func:`~.fly_angles.angles_from_monitor`) and
resampled onto the nominal grid (:func:`resample_line`). The valence ratio is
``OD(E2) / OD(E1)`` (optionally both minus a pre-edge OD; :func:`~.ratio.ratio_map`),
and with the ratios ``R2``, ``R3`` of pure Ni2+ / Ni3+ references the Ni3+
fraction is (:func:`ni3_fraction`)::

    f = (R - R2) / ((R - R2) + k * (R3 - R)),   k = OD_ref3(E1) / OD_ref2(E1)

(exact for a linear mixture of the two references; ``k = 1`` is linear
interpolation between the reference ratios).

Examples
--------
>>> import numpy as np
>>> round(float(ni3_fraction(np.array([1.0]), 0.5, 2.0)[0]), 4)
0.3333
"""

from __future__ import annotations

import logging

import numpy as np

from .fly_angles import angles_from_monitor
from .masks import otsu_threshold
from .ratio import ratio_map

__all__ = [
    "dark_rate",
    "deadtime_correct",
    "line_od",
    "ni3_fraction",
    "ni_mask",
    "open_rate",
    "pixel_positions",
    "resample_line",
    "valence_ratio",
]

log = logging.getLogger(__name__)


def deadtime_correct(counts: np.ndarray, dwell: float, tau: float) -> np.ndarray:
    """True counts of a non-paralysable counter from recorded ``counts`` (float64).

    Parameters
    ----------
    counts : numpy.ndarray
        Recorded detector counts per pixel (any shape), counted over ``dwell``.
    dwell : float
        Counting time per pixel, s; must be > 0 (``ValueError`` otherwise).
    tau : float
        Dead time of the non-paralysable counter, s (0 for an ideal counter).

    Returns
    -------
    numpy.ndarray of float64
        True counts ``m / (1 - m tau / dwell)``, same shape as ``counts``.

    Raises
    ------
    ValueError
        If ``dwell`` is not positive, or a pixel's counts saturate the counter
        (``m tau / dwell >= 1``): lower the flux or check the dead time.

    Examples
    --------
    >>> deadtime_correct(np.array([9000.0]), 0.001, 1e-8).round(1).tolist()
    [9890.1]
    """
    m = np.asarray(counts, dtype=np.float64)
    if dwell <= 0:
        raise ValueError(f"dwell must be > 0 s, got {dwell}")
    loss = m * (tau / dwell)
    if np.any(loss >= 1):
        raise ValueError(
            f"counts up to {m.max():.0f} in {dwell} s saturate a counter of dead time {tau} s: "
            "lower the flux or check the dead time."
        )
    return m / (1.0 - loss)


def dark_rate(counts: np.ndarray, dwell: float, tau: float) -> float:
    """Mean dark count rate (counts/s) of shutter-closed pixels.

    Parameters
    ----------
    counts : numpy.ndarray
        Recorded detector counts per pixel (any shape), counted over ``dwell``.
    dwell : float
        Counting time per pixel, s; must be > 0 (``ValueError`` otherwise).
    tau : float
        Dead time of the non-paralysable counter, s (0 for an ideal counter).

    Returns
    -------
    float
        Mean dark rate, counts/s, after the dead-time correction.
    """
    return float(np.mean(deadtime_correct(counts, dwell, tau))) / dwell


def open_rate(counts: np.ndarray, i0: np.ndarray, dwell: float, tau: float,
              dark: float) -> float:  # fmt: skip
    """Count rate per unit I0 flux off the sample (counts/s), the OD reference.

    Parameters
    ----------
    counts : numpy.ndarray
        Recorded detector counts per pixel (any shape), counted over ``dwell``.
    dwell : float
        Counting time per pixel, s; must be > 0 (``ValueError`` otherwise).
    tau : float
        Dead time of the non-paralysable counter, s (0 for an ideal counter).
    i0 : numpy.ndarray
        I0 monitor flux at each pixel (same shape as ``counts``, monitor units).
    dark : float
        Dark count rate to subtract, counts/s (:func:`dark_rate`).

    Returns
    -------
    float
        Mean count rate per unit I0 flux, counts/s.

    Raises
    ------
    ValueError
        If the rate is not positive (no beam off the sample: shutter closed, or the
        sample-out position on the sample).
    """
    rate = deadtime_correct(counts, dwell, tau) / dwell - dark
    value = float(np.mean(rate / np.asarray(i0, dtype=np.float64)))
    if not value > 0:
        raise ValueError(
            f"The I0 reference rate is {value:.3g} counts/s: no beam off the sample (shutter "
            "closed, or sample_out on the sample?)."
        )
    return value


def line_od(counts: np.ndarray, i0: np.ndarray, dwell: float, tau: float, dark: float,
            reference: float) -> np.ndarray:  # fmt: skip
    """Optical density of the pixels of a line (float32; NaN where no photon came through).

    Parameters
    ----------
    counts : numpy.ndarray
        Recorded detector counts per pixel (any shape), counted over ``dwell``.
    dwell : float
        Counting time per pixel, s; must be > 0 (``ValueError`` otherwise).
    tau : float
        Dead time of the non-paralysable counter, s (0 for an ideal counter).
    i0 : numpy.ndarray
        I0 monitor flux at each pixel (same shape as ``counts``, monitor units).
    dark : float
        Dark count rate to subtract, counts/s (:func:`dark_rate`).
    reference : float
        Count rate per unit I0 flux off the sample at this energy, counts/s
        (:func:`open_rate`).

    Returns
    -------
    numpy.ndarray of float32
        Optical density ``-ln T`` per pixel; NaN where the transmission is not positive
        (no photon came through).
    """
    rate = deadtime_correct(counts, dwell, tau) / dwell - dark
    t = rate / (np.asarray(i0, dtype=np.float64) * reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(t > 0, -np.log(t), np.nan).astype(np.float32)


def pixel_positions(times: np.ndarray, monitor_times: np.ndarray,
                    monitor_positions: np.ndarray) -> np.ndarray:  # fmt: skip
    """Stage position of each pixel at its time stamp, from the monitored readback (um).

    Parameters
    ----------
    times : numpy.ndarray
        Time stamp of each pixel, s (same clock as ``monitor_times``).
    monitor_times : numpy.ndarray
        Time stamps of the monitored stage readback, s (need not be sorted;
        repeated stamps keep the last value).
    monitor_positions : numpy.ndarray
        Stage readback at those times, um.

    Returns
    -------
    numpy.ndarray
        Stage position of each pixel, um, interpolated linearly in time (held at
        the first / last readback outside the monitored interval).
    """
    return angles_from_monitor(times, monitor_times, monitor_positions)


def resample_line(positions: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``values`` measured at ``positions`` linearly interpolated onto ``grid`` (NaN outside).

    Parameters
    ----------
    positions : numpy.ndarray, shape (n,)
        Where the values were measured, um (any order: a return line runs backwards).
    values : numpy.ndarray, shape (n,)
        Values at those positions (e.g. optical density).
    grid : numpy.ndarray
        Nominal positions to resample onto, um.

    Returns
    -------
    numpy.ndarray of float32
        Values on ``grid``; NaN outside the measured positions (no extrapolation).

    Examples
    --------
    >>> resample_line(np.array([2.0, 1.0, 0.0]), np.array([4.0, 2.0, 0.0]),
    ...               np.array([0.5, 3.0])).tolist()
    [1.0, nan]
    """
    p = np.asarray(positions, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    p, v = p[order], v[order]
    out = np.interp(grid, p, v)
    out[(grid < p[0]) | (grid > p[-1])] = np.nan
    return out.astype(np.float32)


def ni_mask(od_e1: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Pixels holding Ni: ``OD(E1)`` above ``threshold`` (Otsu of the finite pixels by default).

    At the Ni L3 peak NMC absorbs several times more than the electrolyte and carbon,
    so the histogram is bimodal.

    Parameters
    ----------
    od_e1 : numpy.ndarray
        Optical density map at E1, the Ni L3 peak; NaN pixels are never in the mask.
    threshold : float, optional
        OD above which a pixel holds Ni. None (default): Otsu's threshold of the finite
        pixels (an empty mask when fewer than 2 are finite).

    Returns
    -------
    numpy.ndarray of bool
        True where the pixel holds Ni.
    """
    od = np.asarray(od_e1, dtype=np.float64)
    finite = np.isfinite(od)
    if threshold is None:
        if finite.sum() < 2:
            return np.zeros(od.shape, bool)
        threshold = otsu_threshold(od[finite])
    return finite & (od > threshold)


def valence_ratio(od_e1: np.ndarray, od_e2: np.ndarray, *, pre_edge: np.ndarray | None = None,
                  mask: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """``(OD(E2) - pre) / (OD(E1) - pre)`` per pixel, NaN outside ``mask`` (float32).

    Parameters
    ----------
    od_e1, od_e2 : numpy.ndarray
        Optical density maps at E1 (Ni L3 peak of Ni2+) and E2 (of Ni3+), same shape.
    pre_edge : numpy.ndarray, optional
        Optical density map below the edge, subtracted from both (keyword only); None:
        nothing subtracted.
    mask : numpy.ndarray of bool, optional
        Pixels to compute (e.g. :func:`ni_mask`); others are NaN (keyword only).
        Pixels where either OD is NaN are NaN too.

    Returns
    -------
    numpy.ndarray of float32
        The ratio per pixel; NaN outside ``mask`` and where ``|OD(E1) - pre|`` is at
        most 1e-6 of its maximum (no meaningful ratio).

    Examples
    --------
    >>> valence_ratio(np.array([[2.0]]), np.array([[3.0]]), pre_edge=np.array([[1.0]])).tolist()
    [[2.0]]
    """
    a = np.asarray(od_e1, dtype=np.float64)
    b = np.asarray(od_e2, dtype=np.float64)
    if pre_edge is not None:
        a, b = a - pre_edge, b - pre_edge
    valid = np.isfinite(a) & np.isfinite(b)
    if mask is not None:
        valid &= np.asarray(mask, bool)
    stack = np.stack([np.where(valid, a, 0.0), np.where(valid, b, 0.0)])
    return ratio_map(stack, np.array([0.0, 1.0]), 0.0, 1.0, mask=valid)


def ni3_fraction(ratio: np.ndarray, ratio_ni2: float, ratio_ni3: float,
                 e1_ratio: float = 1.0) -> np.ndarray:  # fmt: skip
    """Ni3+ fraction from the valence ratio and the two references' ratios (float32).

    Parameters
    ----------
    ratio : ndarray
        ``OD(E2) / OD(E1)`` map.
    ratio_ni2, ratio_ni3 : float
        The same ratio of pure Ni2+ and pure Ni3+ references.
    e1_ratio : float
        ``OD(E1)`` of the Ni3+ reference over that of the Ni2+ one (1: linear).
    """
    if ratio_ni2 == ratio_ni3:
        raise ValueError(
            f"The two reference ratios are equal ({ratio_ni2}): they cannot calibrate a "
            "fraction. Give the Ni2+ and the Ni3+ reference ratio."
        )
    r = np.asarray(ratio, dtype=np.float64)
    num = r - ratio_ni2
    with np.errstate(divide="ignore", invalid="ignore"):
        f = num / (num + e1_ratio * (ratio_ni3 - r))
    return f.astype(np.float32)
