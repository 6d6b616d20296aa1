"""Pre-/post-edge fits as linear operators shared by all pixels.

With one global ``e0`` (given, or the derivative maximum of the mean spectrum)
the fit ranges are the same for every pixel, so the pre-edge line, the
post-edge polynomial and the edge step are *linear* in mu: each is a row
vector ``w`` with ``value = w @ mu``.  Applying them to a stack is one small
matrix product (BLAS) over the stack reshaped to (N, H*W).

Definitions follow ``larch.xafs.pre_edge``: a line is fitted to mu over the
pre-edge range, a polynomial of degree ``nnorm`` to ``mu - pre_line`` over the
post-edge range, ``edge_step = post(e0) - pre(e0)`` and
``norm = (mu - pre_line(E)) / edge_step``.

Default ranges (our TXM scans span only ~8300-8450 eV, edge ~8342 eV):

* ``pre = (energies[0], e0 - 15)``
* ``post = (e0 + 25, energies[-1])``
* ``nnorm`` as in larch: 2 if the post range spans more than 300 eV, 1 if more
  than 30 eV, else 0 (and at most ``n_post_points - 1``).
* edge window (per-pixel e0 and half-step search): ``(e0 - 10, e0 + 6)``; the
  global e0 (derivative maximum of the mean) lies 2-5 eV above the half step of
  Ni2+/Ni3+ mixtures, and pixel edges spread a few eV around it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ssb_beamline.reference_data import NI_K_EDGE_EV

from ._kernels import derivative_max_block, smoothed_derivative
from ._validation import check_energies
from .energy_bins import even_energy_bins

__all__ = ["EdgeFit", "NoEdgeContrastError", "build_edge_fit", "find_e0", "mean_spectrum"]

log = logging.getLogger(__name__)

#: Default pre-edge end, post-edge start and edge window, eV relative to e0.
PRE_END_EV = -15.0
POST_START_EV = 25.0
EDGE_WINDOW_EV = (-10.0, 6.0)
#: Unit of the reduced energy ``x = (E - e0) / X_SCALE_EV`` of the line coefficients.
X_SCALE_EV = 50.0


def mean_spectrum(
    stack2d: np.ndarray, mask: np.ndarray | None = None, *, max_pixels: int = 1 << 18
) -> np.ndarray:
    """Mean spectrum of an (N, P) stack, over ``mask`` or a regular pixel subset.

    A regular subset of at most ``max_pixels`` contiguous runs keeps this cheap
    for 2048 x 2048 frames (the e0 of the mean barely depends on the subset).

    Parameters
    ----------
    stack2d : ndarray, shape (N, P)
        N energies by P pixels (absorbance, dimensionless); a 3-D stack must be
        reshaped first (it raises ``ValueError`` on unpacking the shape).
    mask : ndarray of bool, shape (P,), optional
        Pixels to average (e.g. the particle mask); ``None`` or an all-False mask
        averages the regular subset of all pixels instead.
    max_pixels : int, optional
        Most pixels averaged (default 2**18, ~4 % of a 2048 x 2048 frame); more
        pixels cost time, not accuracy.

    Returns
    -------
    ndarray of float64, shape (N,)
        The mean spectrum.

    Examples
    --------
    >>> mean_spectrum(np.arange(6.0).reshape(2, 3)).tolist()
    [1.0, 4.0]
    """
    n, p = stack2d.shape
    if mask is not None and mask.any():
        sel = np.flatnonzero(mask)
        if sel.size > max_pixels:
            sel = sel[:: sel.size // max_pixels + 1]
        return stack2d[:, sel].mean(axis=1, dtype=np.float64)
    if p <= max_pixels:
        return stack2d.mean(axis=1, dtype=np.float64)
    run = 4096
    n_runs = max(1, max_pixels // run)
    starts = np.linspace(0, p - run, n_runs).astype(np.intp)
    acc = np.zeros(n, np.float64)
    for s in starts:
        acc += stack2d[:, s : s + run].sum(axis=1, dtype=np.float64)
    return acc / (run * n_runs)


def find_e0(energies: np.ndarray, mu: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Edge energy e0 = maximum of the smoothed derivative of the (mean) spectrum.

    Parameters
    ----------
    energies : ndarray, shape (N,)
        Strictly increasing energies, eV.
    mu : ndarray, shape (N,) or (N, ...)
        One spectrum, or a stack whose mean spectrum is used.
    mask : ndarray of bool, optional
        Pixels to average (stack input only).

    Returns
    -------
    float
        e0 in eV (sub-sample, parabola through the derivative maximum).  The
        first and last ``max(2, 5 % of N)`` derivative samples are excluded,
        as in larch, to avoid glitches at the ends of the scan.

    Examples
    --------
    >>> e = np.arange(8300.0, 8400.0, 0.5)
    >>> mu = 0.3 + 1 / (1 + np.exp(-(e - 8345.0) / 1.5))
    >>> round(find_e0(e, mu), 2)
    8345.0
    """
    e = check_energies(energies, np.shape(mu)[0], min_points=5)
    arr = np.asarray(mu)
    if arr.ndim == 1:
        spec = arr.astype(np.float64)
    else:
        flat = arr.reshape(arr.shape[0], -1)
        m = None if mask is None else np.asarray(mask, bool).reshape(-1)
        spec = mean_spectrum(flat, m)
    if not np.all(np.isfinite(spec)):
        raise ValueError(
            "the spectrum contains NaN or inf; cannot locate the edge. "
            "Mask invalid pixels (absorbance(...).valid) before averaging."
        )
    exclude = max(2, int(0.05 * e.size))
    _check_edge_present(e, spec, exclude)
    return float(derivative_max_block(spec[:, None], e, exclude=exclude)[0])


#: The derivative maximum must exceed this multiple of the median |derivative|.
EDGE_CONTRAST_MIN = 4.0
#: The Ni K-edge rise, eV: from the metal's E0 to the edge of Ni3+/Ni4+ (8333-8350 eV).
NI_K_EDGE_RISE_EV = (NI_K_EDGE_EV, 8350.0)


class NoEdgeContrastError(ValueError):
    """A scan that covers the Ni K-edge shows none: no Ni in the field, or no sample."""


def _check_edge_present(e: np.ndarray, spec: np.ndarray, exclude: int) -> None:
    """Raise if the spectrum shows no absorption edge inside the scan.

    Two signs of no edge: the steepest rise sits at either end of the scan, or it
    is not clearly steeper than the rest of the spectrum (maximum < 4 x median of
    |derivative|), both on the spectrum averaged onto an even grid
    (:mod:`.energy_bins`, so that a scan with most of its points on the edge is
    not taken for one without an edge).  When the scan covers the Ni K-edge (with
    the pre- and post-edge room of the normalisation) the edge is not missing from
    the range but from the data (no edge contrast: sample out of the beam, images
    empty or saturated); otherwise the range misses the edge.
    """
    grid, even = even_energy_bins(e, spec)
    d, em = smoothed_derivative(even.astype(np.float32)[:, None], grid)
    d = d[:, 0].astype(np.float64)
    imax = int(np.argmax(d))
    contrast = d[imax] / max(float(np.median(np.abs(d))), 1e-30)
    at_end = imax < exclude - 1 or imax > d.size - exclude
    if at_end or contrast < EDGE_CONTRAST_MIN:
        where = (
            f"at the {'start' if imax < d.size / 2 else 'end'} of the scan"
            if at_end
            else (f"only {contrast:.1f}x the median slope")
        )
        if _covers_ni_k_edge(e, em[max(exclude - 1, 0)], em[d.size - exclude]):
            lo, hi = NI_K_EDGE_RISE_EV
            raise NoEdgeContrastError(
                f"no edge contrast: the scan {e[0]:.1f}-{e[-1]:.1f} eV covers the Ni K-edge "
                f"({lo:.0f}-{hi:.0f} eV) but the spectrum has no absorption edge (steepest rise "
                f"at {em[imax]:.1f} eV, {where}). The sample is out of the beam, or the images "
                "are empty or saturated: check the flats and the sample position."
            )
        raise ValueError(
            f"energy range missing the edge: no absorption edge found in {e[0]:.1f}-{e[-1]:.1f} eV "
            f"(steepest rise at {em[imax]:.1f} eV, {where}). Scan across the edge "
            "(Ni K: ~8300-8450 eV) or pass e0 explicitly."
        )


def _covers_ni_k_edge(e: np.ndarray, first: float, last: float) -> bool:
    """Whether energies ``e`` span the Ni K-edge rise with pre- and post-edge room.

    The scan starts at least ``-PRE_END_EV`` eV below the rise and ends at least
    ``POST_START_EV`` eV above it, and the rise lies between ``first`` and ``last``,
    the first and last derivative samples searched for the edge.
    """
    lo, hi = NI_K_EDGE_RISE_EV
    return bool(e[0] <= lo + PRE_END_EV and e[-1] >= hi + POST_START_EV and first < lo < hi < last)


@dataclass(frozen=True)
class EdgeFit:
    """Linear operators for the pre-edge line, post-edge polynomial and edge step.

    Attributes
    ----------
    energies : ndarray
        Energies (eV) of the stack.
    e0 : float
        Global edge energy used for the ranges and the edge-step evaluation.
    pre_range, post_range : tuple of float
        Inclusive energy ranges (eV) of the pre- and post-edge fits.
    nnorm : int
        Degree of the post-edge polynomial.
    x : ndarray
        Reduced energy ``(E - e0) / 50 eV`` used by the line coefficients.
    weights : ndarray of float32, shape (3, N)
        Rows giving, for ``mu`` of shape (N, P): the pre-edge line at e0
        (``p0``), its slope in reduced units (``p1``; pre_line = p0 + p1 * x),
        and the edge step.
    window : slice
        Energy indices of the edge window (per-pixel e0 and half step).
    """

    energies: np.ndarray
    e0: float
    pre_range: tuple[float, float]
    post_range: tuple[float, float]
    nnorm: int
    x: np.ndarray
    weights: np.ndarray
    window: slice


def _range_indices(e: np.ndarray, rng: tuple[float, float]) -> np.ndarray:
    return np.flatnonzero((e >= rng[0]) & (e <= rng[1]))


def _fit_ranges(
    e: np.ndarray,
    e0: float,
    pre: tuple[float, float] | None,
    post: tuple[float, float] | None,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The pre- and post-edge ranges (eV): the given ones, or the defaults around e0."""
    if not (e[0] < e0 < e[-1]):
        raise ValueError(
            f"energy range missing the edge: e0 = {e0:.1f} eV lies outside the scan "
            f"{e[0]:.1f}-{e[-1]:.1f} eV. Scan across the edge or pass e0 inside the range."
        )
    if pre is None and e0 + PRE_END_EV <= e[0]:
        raise ValueError(
            f"energy range missing the edge: the scan starts at {e[0]:.1f} eV, only "
            f"{e0 - e[0]:.1f} eV below e0 = {e0:.1f} eV, so there is no pre-edge region "
            f"(default pre-edge ends at e0{PRE_END_EV:+.0f} eV). Start the scan at least ~25 eV "
            "below the edge or pass pre=(low, high)."
        )
    if post is None and e0 + POST_START_EV >= e[-1]:
        raise ValueError(
            f"energy range missing the edge: the scan ends at {e[-1]:.1f} eV, only "
            f"{e[-1] - e0:.1f} eV above e0 = {e0:.1f} eV, so there is no post-edge region "
            f"(default post-edge starts at e0+{POST_START_EV:.0f} eV). Extend the scan at "
            "least ~35 eV above the edge or pass post=(low, high)."
        )
    pre_r = (float(e[0]), e0 + PRE_END_EV) if pre is None else (float(pre[0]), float(pre[1]))
    post_r = (
        (e0 + POST_START_EV, float(e[-1])) if post is None else (float(post[0]), float(post[1]))
    )
    for name, r in (("pre", pre_r), ("post", post_r)):
        if not r[0] < r[1]:
            raise ValueError(
                f"{name} range {r} is empty or reversed. Pass {name}=(low_eV, high_eV) "
                "with low < high."
            )
    return pre_r, post_r


def _check_enough_points(n: int, name: str, rng: tuple[float, float], e0: float) -> None:
    """Raise unless the ``name`` ("pre" or "post") range holds at least 2 energies."""
    if n >= 2:
        return
    fix = (
        "Start the scan at least ~25 eV below the edge or pass pre=(low, high)."
        if name == "pre"
        else "Extend the scan at least ~35 eV above the edge or pass post=(low, high)."
    )
    raise ValueError(
        f"energy range missing the edge: only {n} energies in the {name}-edge range "
        f"{rng[0]:.1f}-{rng[1]:.1f} eV (e0 = {e0:.1f} eV); at least 2 are needed. {fix}"
    )


def _post_degree(nnorm: int | None, post_r: tuple[float, float], n_post: int) -> int:
    """The post-edge polynomial degree: by the post-edge span when None, at most n_post - 1."""
    span = post_r[1] - post_r[0]
    if nnorm is None:
        nnorm = 2 if span > 300 else 1 if span > 30 else 0
    if not 0 <= int(nnorm) <= 3:
        raise ValueError(f"nnorm must be 0, 1, 2 or 3; got {nnorm}. Use nnorm=1 for XANES.")
    return min(int(nnorm), n_post - 1)


def _fit_weights(x: np.ndarray, ipre: np.ndarray, ipost: np.ndarray, nnorm: int) -> np.ndarray:
    """Rows (pre-edge line at e0, its slope, edge step) applied to ``mu`` (float32)."""
    n = x.size
    # pre-edge line: coefficients (p0, p1) = pinv(A) @ mu[ipre]
    a_pre = np.stack([np.ones(ipre.size), x[ipre]], axis=1)
    w_pre = np.zeros((2, n))
    w_pre[:, ipre] = np.linalg.pinv(a_pre)
    # post-edge polynomial fitted to mu - pre_line over ipost
    b_post = np.vander(x[ipost], nnorm + 1, increasing=True)
    sel = np.zeros((ipost.size, n))
    sel[np.arange(ipost.size), ipost] = 1.0
    resid_op = sel - np.stack([np.ones(ipost.size), x[ipost]], axis=1) @ w_pre
    w_post = np.linalg.pinv(b_post) @ resid_op
    # edge step = post(e0) - pre(e0) = constant coefficient (x = 0 at e0)
    return np.vstack([w_pre, w_post[:1]]).astype(np.float32)


def _edge_window_slice(e: np.ndarray, e0: float, edge_window: tuple[float, float]) -> slice:
    """Energy indices of ``e0 + edge_window``, one point wider each side (at least 4)."""
    n = e.size
    lo = max(0, int(np.searchsorted(e, e0 + edge_window[0], side="left")) - 1)
    hi = min(n, int(np.searchsorted(e, e0 + edge_window[1], side="right")) + 1)
    if hi - lo < 4:
        lo, hi = max(0, lo - 2), min(n, hi + 2)
    return slice(lo, hi)


def build_edge_fit(
    energies: np.ndarray,
    e0: float,
    *,
    pre: tuple[float, float] | None = None,
    post: tuple[float, float] | None = None,
    nnorm: int | None = None,
    edge_window: tuple[float, float] = EDGE_WINDOW_EV,
) -> EdgeFit:
    """Build the :class:`EdgeFit` operators for an energy axis and a global e0.

    Parameters
    ----------
    energies : ndarray
        Strictly increasing energies, eV.
    e0 : float
        Global edge energy, eV.
    pre, post : (float, float), optional
        Absolute energy ranges (eV, inclusive) of the fits; see the module
        docstring for the defaults.
    nnorm : int, optional
        Post-edge polynomial degree (0, 1, 2 or 3).
    edge_window : (float, float)
        Window relative to e0 (eV) searched for the per-pixel e0 / half step.

    Examples
    --------
    >>> e = np.arange(8300.0, 8450.0, 1.0)
    >>> fit = build_edge_fit(e, 8345.0)
    >>> fit.pre_range, fit.post_range, fit.nnorm
    ((8300.0, 8330.0), (8370.0, 8449.0), 1)
    >>> mu = np.where(e > 8345, 1.5, 0.5) + 0.001 * (e - 8300)
    >>> [round(float(v), 3) for v in fit.weights @ mu]
    [0.545, 0.05, 1.0]
    """
    e = check_energies(energies, min_points=5)
    e0 = float(e0)
    pre_r, post_r = _fit_ranges(e, e0, pre, post)
    ipre = _range_indices(e, pre_r)
    ipost = _range_indices(e, post_r)
    _check_enough_points(ipre.size, "pre", pre_r, e0)
    _check_enough_points(ipost.size, "post", post_r, e0)
    nnorm = _post_degree(nnorm, post_r, ipost.size)
    x = (e - e0) / X_SCALE_EV
    weights = _fit_weights(x, ipre, ipost, nnorm)
    window = _edge_window_slice(e, e0, edge_window)
    log.debug(
        "edge fit: e0=%.2f pre=%s (%d pts) post=%s (%d pts) nnorm=%d window=%d:%d",
        e0, pre_r, ipre.size, post_r, ipost.size, nnorm, window.start, window.stop,
    )  # fmt: skip
    return EdgeFit(e, e0, pre_r, post_r, nnorm, x, weights, window)
