"""Binning of edge energy against the diffusion-distance model (Deng et al. 2025, Fig. 4c,f).

:func:`impedance_bins` averages the Ni K-edge energy over the combined-impedance
bins [0-0.2] ... [0.8-1.0] (and over the same bins of the core-shell model) with
the paper's error bar, one tenth of the FWHM of the edge-energy distribution in
the bin.  :func:`distance_map_2d` is the joint map of edge energy against the
(e-, Li+) diffusion distances.  Both are re-exported by
:mod:`ssb_beamline.analysis.diffusion`, which computes the maps they take.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from .phases import _as_array, _as_mask, _check_same_shape

__all__ = ["DEFAULT_BINS", "DistanceMap2D", "distance_map_2d", "impedance_bins"]

DEFAULT_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))  # 2.3548


@dataclass
class DistanceMap2D:
    """Mean edge energy over (e- distance, Li+ distance) bins (rows = e-).

    Attributes
    ----------
    mean : ndarray
        Mean edge energy per (e-, Li+) bin, eV (NaN for empty bins).
    count : ndarray of int
        Pixels per bin.
    e_edges, li_edges : ndarray
        Bin edges of the normalised e- and Li+ distances.
    """

    mean: NDArray[np.float64]
    count: NDArray[np.int64]
    e_edges: NDArray[np.float64]
    li_edges: NDArray[np.float64]


def _valid(arrays: Sequence[NDArray], mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    ok = mask.copy()
    for a in arrays:
        ok &= np.isfinite(a)
    return ok


def _bin_index(v: NDArray, edges: NDArray) -> NDArray[np.intp]:
    """Bin of each value; bins are [lo, hi) except the last, which is [lo, hi]."""
    k = np.searchsorted(edges, v, side="right") - 1
    k[v == edges[-1]] = edges.size - 2
    k[(v < edges[0]) | (v > edges[-1])] = -1
    return k


def _check_edges(bins: Sequence[float], name: str = "bins") -> NDArray[np.float64]:
    e = np.asarray(bins, dtype=np.float64).ravel()
    if e.size < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
        raise ValueError(
            f"{name}={list(bins)} must be >= 2 finite strictly increasing edges; "
            "e.g. (0, 0.2, 0.4, 0.6, 0.8, 1.0)"
        )
    return e


def _fwhm_hist(v: NDArray) -> float:
    """FWHM from a histogram (Freedman-Diaconis bins, linear half-max crossings)."""
    if v.size < 3 or np.ptp(v) == 0:
        return 0.0
    h, e = np.histogram(v, bins="fd")
    c = 0.5 * (e[1:] + e[:-1])
    half = h.max() / 2.0
    above = np.flatnonzero(h >= half)
    i0, i1 = above[0], above[-1]
    left = c[i0] if i0 == 0 else np.interp(half, [h[i0 - 1], h[i0]], [c[i0 - 1], c[i0]])
    right = c[i1] if i1 == h.size - 1 else np.interp(half, [h[i1 + 1], h[i1]], [c[i1 + 1], c[i1]])
    return float(max(right - left, e[1] - e[0]))


def impedance_bins(
    combined: ArrayLike,
    edge_energy: ArrayLike,
    *,
    core_shell: ArrayLike | None = None,
    mask: ArrayLike | None = None,
    bins: Sequence[float] = DEFAULT_BINS,
    fwhm_method: Literal["gaussian", "histogram"] = "gaussian",
) -> pd.DataFrame:
    """Mean edge energy per impedance bin (paper Figure 4c).

    Parameters
    ----------
    combined : array_like
        Combined-impedance map (``DiffusionMaps.combined``), NaN outside NMC.
    edge_energy : array_like
        Edge-energy map (eV), same shape.  NaN pixels are ignored.
    core_shell : array_like, optional
        Normalised core-shell map (``DiffusionMaps.core_shell``) for comparison.
    mask : array_like of bool, optional
        Pixels to use (e.g. one particle: ``maps.labels == 3``).
    bins : sequence of float
        Bin edges; bins are [lo, hi) except the last, [lo, hi].
    fwhm_method : {"gaussian", "histogram"}, default "gaussian"
        FWHM of the edge energies in a bin: ``2.355 * std`` (robust for small
        counts) or from a histogram's half-maximum crossings.

    Returns
    -------
    pandas.DataFrame
        Long format, one row per (model, bin): ``model`` ("combined" /
        "core_shell"), ``bin_lo, bin_hi, count, edge_energy_mean,
        edge_energy_std`` (ddof=0), ``fwhm, error_bar`` (``fwhm / 10``, as in
        the paper).
        Empty bins have count 0 and NaN statistics.

    Examples
    --------
    >>> c = np.linspace(0, 1, 100).reshape(10, 10)
    >>> df = impedance_bins(c, 8340 + 2 * c)
    >>> df["edge_energy_mean"].round(1).tolist()
    [8340.2, 8340.6, 8341.0, 8341.4, 8341.8]
    """
    c = _as_array(combined, "combined", (2, 3)).astype(np.float64, copy=False)
    e = _as_array(edge_energy, "edge_energy", (2, 3)).astype(np.float64, copy=False)
    _check_same_shape(c, "combined", e, "edge_energy")
    m = _as_mask(mask, c, "combined")
    edges = _check_edges(bins)
    if fwhm_method not in ("gaussian", "histogram"):
        raise ValueError(f"fwhm_method={fwhm_method!r}; use 'gaussian' or 'histogram'")
    models = {"combined": c}
    if core_shell is not None:
        cs = _as_array(core_shell, "core_shell", (2, 3)).astype(np.float64, copy=False)
        _check_same_shape(c, "combined", cs, "core_shell")
        models["core_shell"] = cs
    rows = []
    for name, z in models.items():
        ok = _valid([z, e], m)
        if not ok.any():
            raise ValueError(
                f"no pixel has finite {name} and edge_energy inside the mask; check "
                "that both maps cover the same NMC particle(s) and the mask"
            )
        k = _bin_index(z[ok], edges)
        ev = e[ok]
        for b in range(edges.size - 1):
            v = ev[k == b]
            std = float(v.std()) if v.size else np.nan
            if fwhm_method == "gaussian" or not v.size:
                fwhm = FWHM_PER_SIGMA * std
            else:
                fwhm = _fwhm_hist(v)
            rows.append(
                {
                    "model": name,
                    "bin_lo": edges[b],
                    "bin_hi": edges[b + 1],
                    "count": int(v.size),
                    "edge_energy_mean": float(v.mean()) if v.size else np.nan,
                    "edge_energy_std": std,
                    "fwhm": fwhm,
                    "error_bar": fwhm / 10.0,
                }
            )
    return pd.DataFrame(rows)


def distance_map_2d(
    e_dist: ArrayLike,
    li_dist: ArrayLike,
    edge_energy: ArrayLike,
    *,
    bins: Sequence[float] | tuple[Sequence[float], Sequence[float]] = DEFAULT_BINS,
    mask: ArrayLike | None = None,
) -> DistanceMap2D:
    """Mean edge energy over (e- distance, Li+ distance) bins (paper Figure 4f).

    Parameters
    ----------
    e_dist, li_dist : array_like
        Normalised e- and Li+ distance maps (``DiffusionMaps.e_norm`` /
        ``li_norm``), NaN outside NMC.
    edge_energy : array_like
        Edge-energy map, same shape.
    bins : sequence of float, or pair of sequences
        Edges for both axes, or ``(e_edges, li_edges)``.
    mask : array_like of bool, optional
        Pixels to use.

    Returns
    -------
    DistanceMap2D
        ``mean[i, j]`` is the mean edge energy of pixels in e- bin ``i`` and
        Li+ bin ``j`` (NaN where empty), ``count[i, j]`` their number.

    Examples
    --------
    >>> e = np.array([[0.1, 0.9], [0.1, 0.9]])
    >>> li = np.array([[0.1, 0.1], [0.9, 0.9]])
    >>> r = distance_map_2d(e, li, 8340 + e + li, bins=(0, 0.5, 1))
    >>> (r.mean - 8340).round(1).tolist()
    [[0.2, 1.0], [1.0, 1.8]]
    """
    ed = _as_array(e_dist, "e_dist", (2, 3)).astype(np.float64, copy=False)
    ld = _as_array(li_dist, "li_dist", (2, 3)).astype(np.float64, copy=False)
    en = _as_array(edge_energy, "edge_energy", (2, 3)).astype(np.float64, copy=False)
    _check_same_shape(ed, "e_dist", ld, "li_dist")
    _check_same_shape(ed, "e_dist", en, "edge_energy")
    m = _as_mask(mask, ed, "e_dist")
    if len(bins) == 2 and np.ndim(bins[0]) == 1:
        e_edges, li_edges = _check_edges(bins[0], "e bins"), _check_edges(bins[1], "li bins")
    else:
        e_edges = li_edges = _check_edges(bins)  # type: ignore[arg-type]
    ok = _valid([ed, ld, en], m)
    if not ok.any():
        raise ValueError(
            "no pixel has finite e_dist, li_dist and edge_energy inside the mask; "
            "check that the diffusion maps are available (not None) and cover the mask"
        )
    ke, kl = _bin_index(ed[ok], e_edges), _bin_index(ld[ok], li_edges)
    inside = (ke >= 0) & (kl >= 0)
    shape = (e_edges.size - 1, li_edges.size - 1)
    flat = ke[inside] * shape[1] + kl[inside]
    count = np.bincount(flat, minlength=shape[0] * shape[1]).reshape(shape)
    total = np.bincount(flat, en[ok][inside], minlength=count.size).reshape(shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return DistanceMap2D(
        mean=mean, count=count.astype(np.int64), e_edges=e_edges, li_edges=li_edges
    )
