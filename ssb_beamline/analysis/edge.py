"""Edge-energy and white-line maps."""

from __future__ import annotations

import logging
from typing import Literal, NamedTuple

import numpy as np

from ._kernels import derivative_max_block, half_step_block, peak_block, smooth3
from ._parallel import DEFAULT_CHUNK_PIXELS, run_chunks
from ._validation import check_mask, check_stack
from .edge_fit import EDGE_WINDOW_EV, build_edge_fit, find_e0

__all__ = ["WhiteLineResult", "edge_energy_map", "white_line_map"]

log = logging.getLogger(__name__)

#: Default white-line search window relative to e0, eV.
WHITE_LINE_WINDOW_EV = (-5.0, 25.0)


def _window(e: np.ndarray, e0: float, rel: tuple[float, float], min_pts: int) -> slice:
    inside = int(np.count_nonzero((e >= e0 + rel[0]) & (e <= e0 + rel[1])))
    lo = max(0, int(np.searchsorted(e, e0 + rel[0], side="left")) - 1)
    hi = min(e.size, int(np.searchsorted(e, e0 + rel[1], side="right")) + 1)
    if inside < min_pts:
        raise ValueError(
            f"too few points: only {inside} energies within {rel[0]:+.0f}..{rel[1]:+.0f} eV "
            f"of e0 = {e0:.1f} eV; at least {min_pts} are needed. Measure more energies "
            "across the edge or widen the window."
        )
    return slice(lo, hi)


def edge_energy_map(  # noqa: PLR0913 -- keyword-only options of the public scientific API
    mu_or_norm: np.ndarray,
    energies: np.ndarray,
    *,
    method: Literal["half_step", "derivative"] = "half_step",
    normalized: bool = False,
    mask: np.ndarray | None = None,
    e0: float | None = None,
    pre: tuple[float, float] | None = None,
    post: tuple[float, float] | None = None,
    nnorm: int | None = None,
    min_edge_step: float = 0.0,
    level: float = 0.5,
    edge_window: tuple[float, float] = EDGE_WINDOW_EV,
    chunk_pixels: int = DEFAULT_CHUNK_PIXELS,
    workers: int | None = None,
) -> np.ndarray:
    """Per-pixel edge energy (eV) as a float32 map.

    Methods
    -------
    ``"half_step"``
        Energy where the normalised absorbance first crosses ``level`` (0.5)
        going up through the edge window.  The crossing interval is found from
        the count of samples below ``level``, then the crossing is solved on the
        monotone cubic (PCHIP) through the 4 samples around it, which follows
        the curvature of the edge, so the answer does not depend on the grid
        step (:mod:`ssb_beamline.analysis.edge_interp`; where noise leaves the
        interval unbracketed, a least-squares line through the 4 samples; see
        :func:`ssb_beamline.analysis._kernels.half_step_block`).
    ``"derivative"``
        Maximum of the [1, 2, 1]-smoothed finite-difference derivative,
        refined to sub-sample precision with a parabola.

    Parameters
    ----------
    mu_or_norm : ndarray, shape (N,) or (N, H, W)
        Absorbance, or normalised absorbance with ``normalized=True``.
    energies : ndarray, shape (N,)
        Strictly increasing energies, eV.
    method : {"half_step", "derivative"}, default "half_step"
        ``"half_step"``: energy where the normalised spectrum crosses ``level``;
        ``"derivative"``: energy of the maximum of the first derivative in the edge
        window. Another value raises ``ValueError``.
    normalized : bool
        True if the input is already normalised (pre-edge 0, step 1).
    mask : ndarray of bool, shape (H, W), optional
        Pixels to analyse.
    e0 : float, optional
        Global e0 locating the edge window (default: derivative maximum of the
        mean spectrum).
    pre, post, nnorm :
        Normalisation options (see :func:`normalize_stack`), unnormalised input.
    min_edge_step : float
        Pixels whose edge step is not above this have no edge (unnormalised
        input only).
    level : float
        Crossing level of the half-step method.
    edge_window : (float, float)
        Search window relative to e0, eV.
    chunk_pixels, workers : int
        Pixels per chunk and worker threads.

    Returns
    -------
    ndarray of float32, shape (H, W) (or a 0-d array for one spectrum)
        NaN exactly where there is no edge: outside ``mask``, edge step not
        above ``min_edge_step``, or no upward ``level`` crossing in the window.

    Examples
    --------
    >>> e = np.arange(8300.0, 8450.0, 0.5)
    >>> mu = 0.5 + 1 / (1 + np.exp(-(e - 8343.0) / 2.0))
    >>> round(float(edge_energy_map(mu, e)), 2)
    8343.0
    >>> round(float(edge_energy_map(mu, e, method="derivative")), 2)
    8343.0
    """
    if method not in ("half_step", "derivative"):
        raise ValueError(
            f"method must be 'half_step' or 'derivative'; got {method!r}. Pick one of those."
        )
    if not (isinstance(level, int | float | np.floating | np.integer) and 0.0 < level < 1.0):
        raise ValueError(
            f"level must be a number strictly between 0 and 1 (the fraction of the edge step "
            f"the half-step crossing is taken at); got {level!r}. The usual value is 0.5."
        )
    x2, e, spatial = check_stack(mu_or_norm, energies, name="mu_or_norm", min_points=5)
    m = check_mask(mask, spatial)
    if e0 is None:
        e0 = find_e0(e, x2, mask=m)
    p = x2.shape[1]
    result = np.full(p, np.nan, np.float32)
    if normalized:
        win = _window(e, float(e0), edge_window, 4)
        fit = None
    else:
        fit = build_edge_fit(e, float(e0), pre=pre, post=post, nnorm=nnorm, edge_window=edge_window)
        win = fit.window
    ew = e[win]

    def work(s: slice) -> None:
        xb = x2[:, s]
        xw = xb[win].astype(np.float32, copy=False)
        ok = np.ones(xw.shape[1], bool)
        if fit is not None:
            coefs = fit.weights @ xb.astype(np.float32, copy=False)
            step = coefs[2]
            ok = np.isfinite(step) & (step > min_edge_step)
            if method == "half_step":
                xline = np.stack([np.ones(ew.size), fit.x[win]], axis=1).astype(np.float32)
                xw = xw - xline @ coefs[:2]
                with np.errstate(divide="ignore"):
                    xw *= np.where(ok, 1.0 / step, 0.0).astype(np.float32)
        if method == "half_step":
            r = half_step_block(xw, ew, level=level)
        else:
            r = derivative_max_block(xw, ew)
        r[~ok] = np.nan
        result[s] = r

    run_chunks(work, p, chunk_pixels, workers)
    if m is not None:
        result[~m] = np.nan
    log.debug("edge_energy_map(%s): %d of %d pixels without edge", method,
              int(np.isnan(result).sum()), p)  # fmt: skip
    return result.reshape(spatial)


class WhiteLineResult(NamedTuple):
    """White-line (main peak above the edge) position and height maps.

    Attributes
    ----------
    energy : ndarray of float32
        Peak energy, eV (parabola through the maximum of the smoothed spectrum).
    height : ndarray of float32
        Normalised peak height (parabola vertex).
    """

    energy: np.ndarray
    height: np.ndarray


def white_line_map(
    norm: np.ndarray,
    energies: np.ndarray,
    *,
    e0: float | None = None,
    window: tuple[float, float] = WHITE_LINE_WINDOW_EV,
    mask: np.ndarray | None = None,
    chunk_pixels: int = DEFAULT_CHUNK_PIXELS,
    workers: int | None = None,
) -> WhiteLineResult:
    """White-line energy and height of normalised spectra.

    The maximum of the [1, 2, 1]-smoothed normalised spectrum within
    ``e0 + window`` is refined with a parabola through it and its neighbours.
    Smoothing lowers a sharp peak slightly (by ~1/4 of its curvature x step^2).

    Parameters
    ----------
    norm : ndarray, shape (N,) or (N, H, W)
        Normalised absorbance.
    energies : ndarray, shape (N,)
        Strictly increasing energies, eV.
    e0 : float, optional
        Global edge energy (default: derivative maximum of the mean spectrum).
    window : (float, float)
        Search window relative to e0, eV.
    mask : ndarray of bool, optional
        Pixels to analyse; others are NaN.
    chunk_pixels : int
        Pixels per chunk of the computation (bounds the memory of temporaries).
    workers : int, optional
        Threads over chunks (default: all cores).

    Returns
    -------
    WhiteLineResult

    Examples
    --------
    >>> e = np.arange(8330.0, 8400.0, 0.5)
    >>> step = 1 / (1 + np.exp(-(e - 8343.0) / 1.5))
    >>> norm = step + 0.6 * np.exp(-0.5 * ((e - 8350.0) / 2.5) ** 2)
    >>> wl = white_line_map(norm, e, e0=8343.0)
    >>> round(float(wl.energy), 1), round(float(wl.height), 2)
    (8350.1, 1.58)
    """
    x2, e, spatial = check_stack(norm, energies, name="norm", min_points=5)
    m = check_mask(mask, spatial)
    if e0 is None:
        e0 = find_e0(e, x2, mask=m)
    win = _window(e, float(e0), window, 3)
    ew = e[win]
    p = x2.shape[1]
    pos = np.empty(p, np.float32)
    height = np.empty(p, np.float32)

    def work(s: slice) -> None:
        sm = smooth3(x2[win, s].astype(np.float32))
        xv, yv = peak_block(sm, ew, 1, sm.shape[0] - 1)
        pos[s] = xv
        height[s] = yv

    run_chunks(work, p, chunk_pixels, workers)
    if m is not None:
        pos[~m] = np.nan
        height[~m] = np.nan
    return WhiteLineResult(pos.reshape(spatial), height.reshape(spatial))
