"""Masks and region-of-interest spectra."""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np

__all__ = [
    "EdgeJumpContrast",
    "RoiSpectra",
    "auto_edge_threshold",
    "edge_jump_contrast",
    "edge_jump_mask",
    "otsu_mask",
    "otsu_threshold",
    "roi_spectra",
]

log = logging.getLogger(__name__)

#: The automatic mask needs its pixels' mean edge step above this many noise sigmas.
#: Measured (mean step above Otsu's threshold / noise from the negative steps): noise
#: alone 0.8 (the simulated empty 16 x 16 demo field 0.57; at most 1.5 over 1000
#: Gaussian 16 x 16 maps, 3.0 over 1000 of 8 x 8); particle fields: the demo 54
#: (64 x 64) and 69 (128 x 128), the live-scan tests 48-94, the reconstructed 3D
#: XANES of the tomography test 6.9, the analysis tests' phantoms 28-1300.
EDGE_JUMP_SNR_MIN = 3.0
#: The noise is estimated only when at least this share of edge steps is negative.
NEGATIVE_SHARE_MIN = 0.1
#: At most this many edge steps (a regular subset) are read for the contrast.
_CONTRAST_SAMPLE = 1 << 20


def otsu_threshold(values: np.ndarray, *, nbins: int = 256) -> float:
    """Otsu threshold of the finite values (256-bin histogram, numpy).

    When the between-class variance is maximal over several thresholds (an
    empty gap between two well separated classes), the middle of that plateau
    is returned rather than its lower end, so the threshold sits in the middle
    of the gap instead of grazing the lower class.

    Parameters
    ----------
    values : ndarray
        Values to threshold (any shape; NaN and inf are ignored).
    nbins : int
        Histogram bins.

    Raises
    ------
    ValueError
        If there are no finite values.

    Examples
    --------
    >>> round(otsu_threshold(np.array([0.0, 0.1, 0.0, 1.0, 1.1, 0.9])), 2)
    0.5
    """
    v = np.asarray(values).ravel()
    lo = hi = float("nan")
    if v.size and np.issubdtype(v.dtype, np.floating):  # NaN-skipping, no copy of the map
        lo, hi = float(np.fmin.reduce(v)), float(np.fmax.reduce(v))
    if not (np.isfinite(lo) and np.isfinite(hi)):  # inf, integers or nothing: select
        v = v[np.isfinite(v)]
        if v.size:
            lo, hi = float(v.min()), float(v.max())
    # (the histogram over [lo, hi] leaves NaN out by itself)
    if v.size == 0:
        raise ValueError(
            "no finite values to threshold (all NaN/inf or empty). "
            "Check the input map, e.g. that the flats are not all zero."
        )
    ftype = v.dtype.type if np.issubdtype(v.dtype, np.floating) else np.float64
    if hi - lo <= 2 * nbins * float(np.spacing(ftype(max(abs(lo), abs(hi))))):
        # equal to the precision of the data (np.histogram cannot even bin them)
        return lo
    hist, edges = _histogram(v, nbins, (lo, hi))
    hist = hist.astype(np.float64)
    centers = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(hist)[:-1]
    s0 = np.cumsum(hist * centers)[:-1]
    total, stotal = hist.sum(), float(hist @ centers)
    w1 = total - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = w0 * w1 * (s0 / w0 - (stotal - s0) / w1) ** 2
    between = np.nan_to_num(between, nan=-1.0)
    best = between.max()
    first = int(np.argmax(between))
    last = first
    while last + 1 < between.size and between[last + 1] >= best * (1 - 1e-12):
        last += 1
    # threshold between bins i and i + 1 is edges[i + 1]
    return float(0.5 * (edges[first + 1] + edges[last + 1]))


def _histogram(
    v: np.ndarray, nbins: int, rng: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of a map, over pixel chunks for large maps.

    ``np.histogram(v, nbins, range=rng)``, over pixel chunks on the worker threads
    for large maps (counts are additive; the bins are fixed by ``rng``).
    """
    from ._parallel import default_workers, run_chunks

    workers = default_workers()
    if v.size < (1 << 20) or workers == 1:
        return np.histogram(v, bins=nbins, range=rng)
    chunk = -(-v.size // workers)
    parts: dict[int, np.ndarray] = {}
    edges: list[np.ndarray] = []

    def work(s: slice) -> None:
        h, e = np.histogram(v[s], bins=nbins, range=rng)
        parts[s.start] = h
        edges.append(e)

    run_chunks(work, v.size, chunk, workers, limit_blas=False)
    return sum(parts.values()), edges[0]


def otsu_mask(image: np.ndarray) -> np.ndarray:
    """``image > otsu_threshold(image)``; NaN pixels are False.

    Parameters
    ----------
    image : ndarray
        Map to threshold, e.g. an edge-step map.

    Examples
    --------
    >>> otsu_mask(np.array([[0.0, 0.1], [1.0, 1.1]])).tolist()
    [[False, False], [True, True]]
    """
    img = np.asarray(image)
    t = otsu_threshold(img)
    with np.errstate(invalid="ignore"):
        return np.asarray(img > t)


def edge_jump_mask(
    edge_step: np.ndarray,
    threshold: float | str | None = None,
    *,
    fraction: float | None = None,
) -> np.ndarray:
    """Pixels with a real absorption edge: ``edge_step > threshold``.

    Parameters
    ----------
    edge_step : ndarray
        Edge-step map (absorbance units).
    threshold : float or "otsu", optional
        Absolute threshold.  Default (None or "otsu"): Otsu's threshold of the
        finite edge steps, which separates particles from the background for
        bimodal maps; an empty mask when the steps above it are not clearly
        above the noise (:func:`auto_edge_threshold`: a field without particles).
    fraction : float, optional
        Instead of Otsu: ``threshold = fraction * 99th percentile`` of the edge
        step (use for images almost entirely covered by sample, where Otsu
        would split the sample itself).

    Returns
    -------
    ndarray of bool
        NaN edge steps are False.

    Examples
    --------
    >>> step = np.array([[0.01, 0.02], [0.5, 0.6]])
    >>> edge_jump_mask(step).tolist()
    [[False, False], [True, True]]
    >>> edge_jump_mask(step, 0.55).tolist()
    [[False, False], [False, True]]
    >>> noise = np.random.default_rng(0).normal(0.0, 0.01, (16, 16))
    >>> int(edge_jump_mask(noise).sum())  # no particle: not half the noise
    0
    """
    s = np.asarray(edge_step)
    if fraction is not None:
        if not 0 < fraction < 1:
            raise ValueError(f"fraction must be in (0, 1); got {fraction}. Try fraction=0.1.")
        finite = s[np.isfinite(s)]
        if finite.size == 0:
            raise ValueError("edge_step has no finite values. Check the normalisation input.")
        t = float(fraction * np.percentile(finite, 99))
    elif threshold is None or (isinstance(threshold, str) and threshold == "otsu"):
        t = auto_edge_threshold(s)
    elif isinstance(threshold, str):
        raise ValueError(f"threshold must be a number or 'otsu'; got {threshold!r}.")
    else:
        t = float(threshold)
    log.debug("edge_jump_mask threshold %.4g", t)
    with np.errstate(invalid="ignore"):
        return np.asarray(s > t)


class EdgeJumpContrast(NamedTuple):
    """How far the pixels of Otsu's upper class stand above the edge-step noise.

    Attributes
    ----------
    threshold : float
        Otsu's threshold of the finite edge steps (absorbance).
    upper_mean : float
        Mean edge step above it (NaN when no step is above it).
    max_step : float
        Largest finite edge step.
    noise : float
        Robust standard deviation of the edge-step noise, from the negative steps
        (NaN when fewer than ``NEGATIVE_SHARE_MIN`` of the steps are negative).
    """

    threshold: float
    upper_mean: float
    max_step: float
    noise: float

    @property
    def snr(self) -> float:
        """``upper_mean / noise`` (NaN when the noise is unknown)."""
        if not (self.noise > 0):
            return float("nan")
        return self.upper_mean / self.noise

    @property
    def has_particles(self) -> bool:
        """False only when the noise is known and ``snr < EDGE_JUMP_SNR_MIN``."""
        return not (self.snr < EDGE_JUMP_SNR_MIN)


def edge_jump_contrast(edge_step: np.ndarray) -> EdgeJumpContrast:
    """Otsu's threshold of an edge-step map and how far its upper class is above the noise.

    Ni adds a positive edge step; a pixel without Ni has a step of 0 plus noise, so
    the negative steps are noise alone: ``1.4826 * median(-step[step < 0])`` is the
    standard deviation of a zero-centred noise (half-normal), unaffected by the
    particles.  In a map of noise alone Otsu's threshold splits the noise in two and
    the upper class averages ~0.8 sigma; over particles it averages tens of sigma.
    When fewer than ``NEGATIVE_SHARE_MIN`` of the steps are negative (a field
    covered by Ni) the noise is not estimated (NaN) and the field counts as holding
    particles.

    Parameters
    ----------
    edge_step : ndarray
        Edge-step map (absorbance units, any shape; NaN ignored).  Large maps are
        read on a regular subset of at most 2**20 steps (for the mean and noise).

    Raises
    ------
    ValueError
        If there are no finite values.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> noise = rng.normal(0.0, 0.01, (32, 32))
    >>> edge_jump_contrast(noise).has_particles
    False
    >>> step = noise + np.where(np.arange(32) < 12, 0.4, 0.0)
    >>> c = edge_jump_contrast(step)
    >>> c.has_particles, bool(c.snr > 30)
    (True, True)
    """
    s = np.asarray(edge_step)
    t = otsu_threshold(s)
    v = s.reshape(-1)
    v = v[:: -(-v.size // _CONTRAST_SAMPLE)]
    v = v[np.isfinite(v)].astype(np.float64)
    upper = v[v > t]
    neg = v[v < 0]
    noise = float("nan")
    if neg.size and neg.size >= NEGATIVE_SHARE_MIN * v.size:
        noise = float(1.4826 * np.median(-neg))
    hi = float(np.fmax.reduce(s, axis=None)) if s.dtype.kind == "f" else float("nan")
    return EdgeJumpContrast(
        threshold=t,
        upper_mean=float(upper.mean()) if upper.size else float("nan"),
        max_step=hi if np.isfinite(hi) or not v.size else float(v.max()),
        noise=noise,
    )


def auto_edge_threshold(edge_step: np.ndarray) -> float:
    """Otsu's threshold of the edge steps, or +inf when no step population is above the noise.

    See :func:`edge_jump_contrast`: a field without particles (sample out of the
    beam, an empty field of view) gives an empty mask, not half of its noise.

    Parameters
    ----------
    edge_step : ndarray
        Edge-step map (absorbance units; NaN ignored).

    Examples
    --------
    >>> auto_edge_threshold(np.random.default_rng(1).normal(0.0, 0.01, (16, 16)))
    inf
    """
    c = edge_jump_contrast(edge_step)
    if c.has_particles:
        return c.threshold
    log.info(
        "no edge-step population above the noise (Otsu class mean %.3g, max %.3g, noise "
        "%.3g: %.1f sigma < %.0f): empty mask",
        c.upper_mean, c.max_step, c.noise, c.snr, EDGE_JUMP_SNR_MIN,
    )  # fmt: skip
    return float("inf")


class RoiSpectra(NamedTuple):
    """Mean spectra of regions.

    Attributes
    ----------
    labels : ndarray of int, shape (R,)
        Region labels (1 for a boolean mask).
    spectra : ndarray of float64, shape (R, N)
        Mean spectrum of each region.
    counts : ndarray of int, shape (R,)
        Pixels per region.
    """

    labels: np.ndarray
    spectra: np.ndarray
    counts: np.ndarray


def roi_spectra(stack: np.ndarray, labels_or_mask: np.ndarray) -> RoiSpectra:
    """Mean spectrum of every region (label > 0, or True pixels of a mask).

    Vectorised with ``np.bincount`` (one call per energy); NaN pixels are
    ignored per energy.

    Parameters
    ----------
    stack : ndarray
        ``(N, H, W)`` stack, e.g. normalised absorbance.
    labels_or_mask : ndarray of int or bool
        ``(H, W)`` region labels (0 = none) or a mask (one region).

    Examples
    --------
    >>> stack = np.arange(8.0).reshape(2, 2, 2)
    >>> r = roi_spectra(stack, np.array([[1, 1], [0, 2]]))
    >>> r.labels.tolist(), r.spectra.tolist(), r.counts.tolist()
    ([1, 2], [[0.5, 4.5], [3.0, 7.0]], [2, 1])
    """
    st = np.asarray(stack)
    lab = np.asarray(labels_or_mask)
    if st.ndim < 2 or lab.shape != st.shape[1:]:
        raise ValueError(
            f"labels_or_mask has shape {lab.shape} but the stack frames have shape "
            f"{st.shape[1:]}. Pass one label per pixel of a (N, H, W) stack."
        )
    if lab.dtype == bool:
        lab = lab.astype(np.intp)
    elif not np.issubdtype(lab.dtype, np.integer):
        raise TypeError(
            f"labels_or_mask must be boolean or integer labels; got {lab.dtype}. "
            "Label regions with skimage.measure.label."
        )
    flat = lab.reshape(-1).astype(np.intp)
    flat = np.where(flat > 0, flat, 0)
    nlab = int(flat.max()) + 1 if flat.size else 1
    st2 = st.reshape(st.shape[0], -1)
    sums = np.empty((st.shape[0], nlab))
    counts_e = np.empty((st.shape[0], nlab))
    any_nan = not np.issubdtype(st.dtype, np.integer) and bool(np.isnan(st2).any())
    base_counts = np.bincount(flat, minlength=nlab).astype(float)
    for i in range(st.shape[0]):
        row = st2[i]
        if any_nan:
            ok = ~np.isnan(row)
            sums[i] = np.bincount(flat[ok], weights=row[ok], minlength=nlab)
            counts_e[i] = np.bincount(flat[ok], minlength=nlab)
        else:
            sums[i] = np.bincount(flat, weights=row, minlength=nlab)
            counts_e[i] = base_counts
    present = np.flatnonzero(base_counts > 0)
    present = present[present > 0]
    if present.size == 0:
        raise ValueError(
            "labels_or_mask selects no pixel (no label > 0 / no True value). "
            "Pass a mask with at least one True pixel."
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        spectra = (sums[:, present] / counts_e[:, present]).T
    return RoiSpectra(present, spectra, base_counts[present].astype(np.intp))
