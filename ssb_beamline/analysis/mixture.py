"""Gaussian-mixture decomposition of a map's histogram (small numpy EM, no sklearn)."""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np

__all__ = ["GaussianComponents", "histogram_components"]

log = logging.getLogger(__name__)


class GaussianComponents(NamedTuple):
    """Components of a 1-D Gaussian mixture, sorted by mean.

    Attributes
    ----------
    means, sigmas, weights : ndarray of float64, shape (K,)
        Component means, standard deviations and weights (sum to 1).
    log_likelihood : float
        Mean log-likelihood per value at convergence.
    n_iter : int
        EM iterations run.
    converged : bool
        Whether the log-likelihood change fell below ``tol``.
    """

    means: np.ndarray
    sigmas: np.ndarray
    weights: np.ndarray
    log_likelihood: float
    n_iter: int
    converged: bool


def histogram_components(  # noqa: PLR0915 -- one EM fit; its statements are the documented update equations
    values: np.ndarray,
    n_components: int = 2,
    *,
    mask: np.ndarray | None = None,
    bins: int = 2048,
    max_iter: int = 500,
    tol: float = 1e-8,
) -> GaussianComponents:
    """Fit ``n_components`` Gaussians to the distribution of the finite ``values``.

    Expectation-maximisation on a fine histogram (``bins`` bins, counts as
    weights), so a 2048 x 2048 map costs the same as a small one; sigmas are
    floored at ``bin_width / sqrt(12)`` (bin width = value range / ``bins``).
    Initialisation: means at evenly spaced quantiles, equal weights,
    sigma = overall std / K.

    Parameters
    ----------
    values : ndarray
        Map values (NaN are ignored), e.g. a SOC or edge-energy map.
    n_components : int
        Number of Gaussians (1-8).
    mask : ndarray of bool, optional
        Values to use.
    bins : int
        Histogram bins the expectation-maximisation runs on.
    max_iter : int
        Maximum iterations.
    tol : float
        Stop when the log-likelihood changes by less than this.

    Returns
    -------
    GaussianComponents

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> v = np.concatenate([rng.normal(0.2, 0.05, 3000), rng.normal(0.7, 0.05, 1000)])
    >>> g = histogram_components(v, 2)
    >>> np.round(g.means, 2).tolist(), np.round(g.weights, 2).tolist()
    ([0.2, 0.7], [0.75, 0.25])
    """
    k = int(n_components)
    if not 1 <= k <= 8:
        raise ValueError(f"n_components must be 1-8; got {n_components}. Use 2 or 3.")
    v = np.asarray(values, np.float64)
    if mask is not None:
        msk = np.asarray(mask, bool)
        if msk.shape != v.shape:
            raise ValueError(
                f"mask has shape {msk.shape} but values have shape {v.shape}. "
                "Pass a mask of the same shape."
            )
        v = v[msk]
    v = v[np.isfinite(v)].ravel()
    if v.size < 2 * k + 1:
        raise ValueError(
            f"too few points: {v.size} finite values for {k} components. "
            "Pass a larger map or fewer components."
        )
    lo, hi = float(v.min()), float(v.max())
    lo0 = lo
    if lo == hi:
        raise ValueError(
            "all values are equal; a mixture cannot be fitted. Check the map (e.g. the mask)."
        )
    # EM in units of the value range: the same fit for values of any scale (a range
    # of 1e-200 would otherwise underflow the variance floor to 0 and give NaN)
    span = hi - lo
    v = (v - lo) / span
    lo, hi = 0.0, 1.0
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    keep = counts > 0
    x = 0.5 * (edges[:-1] + edges[1:])[keep]
    w = counts[keep].astype(np.float64)
    n = w.sum()
    binw = (hi - lo) / bins
    means = np.quantile(v, (np.arange(k) + 0.5) / k)
    sig = np.full(k, max(v.std() / k, binw))
    wts = np.full(k, 1.0 / k)
    prev = -np.inf
    ll = prev
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - iteration count is returned
        # E step: responsibilities (bins x K), log-sum-exp for stability
        z = (x[:, None] - means[None]) / sig[None]
        logp = np.log(wts)[None] - np.log(sig)[None] - 0.5 * z * z - 0.5 * np.log(2 * np.pi)
        mx = logp.max(axis=1, keepdims=True)
        lse = mx[:, 0] + np.log(np.exp(logp - mx).sum(axis=1))
        resp = np.exp(logp - lse[:, None]) * w[:, None]
        ll = float((lse * w).sum() / n)
        # M step
        nk = resp.sum(axis=0) + 1e-300
        wts = nk / n
        means = (resp * x[:, None]).sum(axis=0) / nk
        var = (resp * (x[:, None] - means[None]) ** 2).sum(axis=0) / nk
        sig = np.sqrt(np.maximum(var, binw**2 / 12.0))
        if abs(ll - prev) < tol:
            converged = True
            break
        prev = ll
    order = np.argsort(means)
    ll -= np.log(span)  # density per unit of the original values
    log.debug("histogram_components: K=%d, %d iterations, ll=%.4f", k, it, ll)
    return GaussianComponents(
        means[order] * span + lo0, sig[order] * span, wts[order], ll, it, converged
    )
