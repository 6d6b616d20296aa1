"""Score recovered maps against a known truth (simulations, validation)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MapScore", "score_map"]


@dataclass(frozen=True)
class MapScore:
    """Errors of a recovered map against the truth over the scored pixels.

    Attributes
    ----------
    n_pixels : int
        Number of masked pixels where both maps are finite (the pixels scored).
    median_abs_error : float
        Median of ``|recovered - truth|``, in the map's unit (eV for an edge-energy
        map, fraction for SOC).
    rmse : float
        Root-mean-square error, in the map's unit.
    bias : float
        Mean of ``recovered - truth``, in the map's unit (positive: too high).
    """

    n_pixels: int
    median_abs_error: float
    rmse: float
    bias: float

    def as_dict(self) -> dict[str, float]:
        """The scores as a plain dict (for tables and JSON)."""
        return {
            "n_pixels": self.n_pixels,
            "median_abs_error": self.median_abs_error,
            "rmse": self.rmse,
            "bias": self.bias,
        }


def score_map(recovered: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> MapScore:
    """Median absolute error, RMSE and bias of ``recovered`` within ``mask``.

    Pixels where either map is not finite are left out of the score but counted
    against it: a map that is NaN over most of the mask cannot score well, because
    the score raises when fewer than half of the masked pixels are finite.

    Parameters
    ----------
    recovered : numpy.ndarray
        The map the analysis produced (e.g. edge energy, eV); NaN where it failed.
    truth : numpy.ndarray
        The known map (a phantom's truth), same shape and unit.
    mask : numpy.ndarray of bool
        Pixels to score, same shape; empty raises ``ValueError``.

    Returns
    -------
    MapScore
        Number of pixels scored, median absolute error, RMSE and bias.

    Raises
    ------
    ValueError
        If the shapes differ, the mask is empty, or fewer than half of the masked
        pixels have a finite recovered value.

    Examples
    --------
    >>> truth = np.zeros((4, 4)); rec = truth + 0.1
    >>> round(score_map(rec, truth, np.ones((4, 4), bool)).rmse, 6)
    0.1
    """
    recovered = np.asarray(recovered, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if not recovered.shape == truth.shape == mask.shape:
        raise ValueError(
            f"Shapes differ: recovered {recovered.shape}, truth {truth.shape}, mask "
            f"{mask.shape}. Score maps of the same field of view."
        )
    n_mask = int(mask.sum())
    if n_mask == 0:
        raise ValueError("The scoring mask is empty: there are no pixels to score.")
    good = mask & np.isfinite(recovered) & np.isfinite(truth)
    n = int(good.sum())
    if n < n_mask / 2:
        raise ValueError(
            f"Only {n} of {n_mask} masked pixels have a finite recovered value; the map "
            "failed over most of the region being scored."
        )
    err = recovered[good] - truth[good]
    return MapScore(
        n_pixels=n,
        median_abs_error=float(np.median(np.abs(err))),
        rmse=float(np.sqrt(np.mean(err**2))),
        bias=float(np.mean(err)),
    )
