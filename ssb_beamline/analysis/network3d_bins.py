"""Edge energy per impedance bin of the 3D network model, and the trend across bins.

Split from :mod:`ssb_beamline.analysis.network3d` (one concept per module): the
per-voxel model is there, the binning of its edge energies (count, mean, FWHM and
the paper's FWHM/10 error bar) and the straight-line trend through the bins are here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .impedance import DEFAULT_BINS, FWHM_PER_SIGMA

__all__ = ["bin_statistics", "trend_slope"]


def bin_statistics(
    model: NDArray, edge_energy: NDArray, *, bins=DEFAULT_BINS, name: str = "combined"
) -> pd.DataFrame:
    """Edge energy per impedance bin: count, mean, std, FWHM (2.355 std) and error bar (FWHM/10).

    Bins are [lo, hi) except the last, [lo, hi]; NaN entries are ignored.

    Parameters
    ----------
    model : array_like of float
        Impedance value of each voxel or pixel (e.g. the combined impedance,
        dimensionless, 0-1); values outside ``[bins[0], bins[-1]]`` are dropped.
    edge_energy : array_like of float
        Edge energy of the same voxels, eV, same shape as ``model``.
    bins : sequence of float, optional
        Increasing bin edges (default: the paper's five bins of 0.2 over [0, 1]).
        Unsorted edges give meaningless bins; an empty bin has count 0 and NaN
        statistics.
    name : str, optional
        Value of the ``"model"`` column, to stack the tables of several models.

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``model, bin_lo, bin_hi, count, edge_energy_mean`` (eV),
        ``edge_energy_std, fwhm, error_bar`` (eV).

    Examples
    --------
    >>> c = np.linspace(0, 1, 100)
    >>> bin_statistics(c, 8340 + 2 * c)["edge_energy_mean"].round(1).tolist()
    [8340.2, 8340.6, 8341.0, 8341.4, 8341.8]
    """
    edges = np.asarray(bins, np.float64)
    z, e = np.asarray(model, np.float64), np.asarray(edge_energy, np.float64)
    ok = np.isfinite(z) & np.isfinite(e)
    z, e = z[ok], e[ok]
    k = np.clip(np.searchsorted(edges, z, side="right") - 1, 0, edges.size - 2)
    inside = (z >= edges[0]) & (z <= edges[-1])
    k, e = k[inside], e[inside]
    nb = edges.size - 1
    n = np.bincount(k, minlength=nb)
    ref = float(np.median(e)) if e.size else 0.0  # subtract: float64 sums of ~8340 eV
    s1 = np.bincount(k, e - ref, minlength=nb)
    s2 = np.bincount(k, (e - ref) ** 2, minlength=nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        std = np.sqrt(np.maximum(s2 / n - mean**2, 0.0))
    fwhm = FWHM_PER_SIGMA * std
    return pd.DataFrame({
        "model": name, "bin_lo": edges[:-1], "bin_hi": edges[1:], "count": n,
        "edge_energy_mean": mean + ref, "edge_energy_std": std, "fwhm": fwhm,
        "error_bar": fwhm / 10.0,
    })  # fmt: skip


def trend_slope(bins: pd.DataFrame, column: str = "edge_energy_mean") -> float:
    """Least-squares slope of the bin means against the bin centres (eV per unit impedance).

    Parameters
    ----------
    bins : pandas.DataFrame
        One model's rows of :func:`bin_statistics` (``bin_lo``, ``bin_hi``, ``count``);
        empty bins (count 0) are skipped, and fewer than two filled bins give NaN.
    column : str
        The per-bin edge energy to fit: ``"edge_energy_mean"`` (mean of the voxels'
        edge energies) or ``"edge_energy_spectrum"`` (edge of the bin's mean
        spectrum, :func:`bin_spectrum_edges`).  Bins where it is NaN are skipped.

    Examples
    --------
    >>> c = np.linspace(0, 1, 100)
    >>> round(trend_slope(bin_statistics(c, 8340 + 2 * c)), 2)
    2.02
    """
    ok = bins["count"].to_numpy() > 0
    x = 0.5 * (bins["bin_lo"].to_numpy() + bins["bin_hi"].to_numpy())[ok]
    y = bins[column].to_numpy()[ok]
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2:
        return float("nan")
    return float(np.polyfit(x, y, 1)[0])
