"""Register a STXM map to a TXM map of the same sample; per-particle correlation.

The STXM raster and the TXM image have different pixel sizes and fields of view.
The STXM map is resampled to the TXM pixel size (bilinear, `scipy.ndimage.zoom`),
then its offset in the TXM image is found by phase correlation
(`skimage.registration.phase_cross_correlation`, sub-pixel) of the two particle
masks: "where there is Ni" is the one feature both valence measures share (the
ratio and the SOC differ in scale and sign conventions, the masks do not).

Examples
--------
>>> import numpy as np
>>> txm = np.full((64, 64), np.nan); txm[20:30, 25:40] = 0.5
>>> stxm = txm[10:42:2, 16:48:2]          # 16 x 16 at twice the pixel size
>>> reg = register_to_txm(stxm, 0.2, txm, 0.1)
>>> [round(v) for v in reg.offset_px]
[10, 16]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage.registration import phase_cross_correlation

__all__ = ["Registration", "particle_correlation", "register_to_txm", "stxm_on_txm_grid"]


@dataclass(frozen=True)
class Registration:
    """Where the STXM map lies in the TXM image.

    Attributes
    ----------
    offset_px : tuple of float
        (row, col) in TXM pixels of the centre of STXM pixel (0, 0).
    scale : float
        STXM pixel size / TXM pixel size.
    error : float
        Phase-correlation error estimate (0 = perfect).
    """

    offset_px: tuple[float, float]
    scale: float
    error: float


def _resampled(stxm_map: np.ndarray, scale: float) -> np.ndarray:
    """STXM map at the TXM pixel size; NaN where any neighbour is NaN."""
    finite = np.isfinite(stxm_map)
    filled = np.where(finite, stxm_map, 0.0)
    out = ndimage.zoom(filled, scale, order=1, grid_mode=True, mode="nearest")
    ok = ndimage.zoom(finite.astype(np.float64), scale, order=1, grid_mode=True, mode="nearest")
    return np.where(ok > 0.5, out, np.nan)


def register_to_txm(stxm_map: np.ndarray, stxm_pixel_um: float, txm_map: np.ndarray,
                    txm_pixel_um: float, *, upsample: int = 20) -> Registration:  # fmt: skip
    """Find the STXM map's offset in the TXM image (phase correlation of particle masks).

    Parameters
    ----------
    stxm_map, txm_map : ndarray, (H, W)
        Maps that are finite on particles and NaN elsewhere (ratio map, SOC map).
    stxm_pixel_um, txm_pixel_um : float
        Pixel sizes, um.
    upsample : int
        Sub-pixel precision of the phase correlation (1 / upsample TXM pixel).
    """
    if stxm_pixel_um <= 0 or txm_pixel_um <= 0:
        raise ValueError("pixel sizes must be > 0 um")
    scale = stxm_pixel_um / txm_pixel_um
    res = _resampled(np.asarray(stxm_map, dtype=np.float64), scale)
    th, tw = np.shape(txm_map)
    if res.shape[0] > th or res.shape[1] > tw:
        raise ValueError(
            f"The STXM field ({res.shape} TXM pixels) is larger than the TXM image "
            f"{(th, tw)}: register the TXM map into the STXM map's field instead."
        )
    moving = np.zeros((th, tw))
    moving[: res.shape[0], : res.shape[1]] = np.isfinite(res)
    fixed = np.isfinite(np.asarray(txm_map, dtype=np.float64)).astype(np.float64)
    shift, error, _ = phase_cross_correlation(fixed, moving, upsample_factor=upsample,
                                              normalization=None)  # fmt: skip
    # zoom with grid_mode maps STXM pixel 0's centre to (scale - 1) / 2 resampled px
    centre = (scale - 1.0) / 2.0
    rows, cols = (float(s) for s in shift)
    rows, cols = rows % th, cols % tw  # the offset of a field inside the image is >= 0
    rows = rows - th if rows > th - res.shape[0] / 2 else rows
    cols = cols - tw if cols > tw - res.shape[1] / 2 else cols
    return Registration((rows + centre, cols + centre), scale, float(error))


def stxm_on_txm_grid(stxm_map: np.ndarray, registration: Registration,
                     txm_shape: tuple[int, int]) -> np.ndarray:  # fmt: skip
    """The STXM map sampled on the TXM grid (bilinear; NaN outside or next to NaN).

    Parameters
    ----------
    stxm_map : numpy.ndarray, shape (h, w)
        A map on the STXM raster grid; NaN pixels stay NaN and spoil their
        neighbours.
    registration : Registration
        Offset (TXM pixels) and scale (STXM pixel size / TXM pixel size) of the
        STXM map in the TXM image.
    txm_shape : tuple of int
        ``(H, W)`` of the TXM grid, pixels.

    Returns
    -------
    numpy.ndarray of float64, shape (H, W)
        The STXM map on the TXM grid; NaN outside the STXM field or next to a NaN.
    """
    rows, cols = np.mgrid[0 : txm_shape[0], 0 : txm_shape[1]].astype(np.float64)
    r0, c0 = registration.offset_px
    coords = np.stack([(rows - r0) / registration.scale, (cols - c0) / registration.scale])
    m = np.asarray(stxm_map, dtype=np.float64)
    finite = np.isfinite(m)
    val = ndimage.map_coordinates(np.where(finite, m, 0.0), coords, order=1, cval=0.0)
    ok = ndimage.map_coordinates(finite.astype(np.float64), coords, order=1, cval=0.0)
    return np.where(ok > 0.999, val, np.nan)


def particle_correlation(stxm_on_txm: np.ndarray, txm_map: np.ndarray, labels: np.ndarray,
                         *, min_pixels: int = 10) -> tuple[pd.DataFrame, float]:  # fmt: skip
    """Per-particle means of the two maps and their Pearson r.

    Particles (``labels`` on the TXM grid) with fewer than ``min_pixels`` pixels
    where both maps are finite are left out.

    Parameters
    ----------
    stxm_on_txm : numpy.ndarray, shape (H, W)
        The STXM map resampled on the TXM grid (:func:`stxm_on_txm_grid`); NaN
        outside the STXM field.
    txm_map : numpy.ndarray, shape (H, W)
        The TXM map of the same quantity (e.g. SOC fraction); NaN where it failed.
    labels : numpy.ndarray of int, shape (H, W)
        Particle labels on the TXM grid (0 is background).
    min_pixels : int, default 10
        Fewest pixels with both maps finite a particle needs to be kept (keyword
        only).

    Returns
    -------
    table : pandas.DataFrame
        ``label, n_pixels, stxm_mean, txm_mean``.
    r : float
        Pearson r of ``stxm_mean`` against ``txm_mean`` (NaN with < 3 particles).
    """
    lab = np.asarray(labels)
    both = np.isfinite(stxm_on_txm) & np.isfinite(txm_map) & (lab > 0)
    k = lab[both]
    n = np.bincount(k, minlength=int(lab.max()) + 1)
    s = np.bincount(k, stxm_on_txm[both], minlength=n.size)
    t = np.bincount(k, txm_map[both], minlength=n.size)
    keep = np.flatnonzero(n >= min_pixels)
    keep = keep[keep > 0]
    table = pd.DataFrame(
        {"label": keep, "n_pixels": n[keep], "stxm_mean": s[keep] / n[keep],
         "txm_mean": t[keep] / n[keep]}
    )  # fmt: skip
    if len(table) < 3:
        return table, float("nan")
    return table, float(np.corrcoef(table.stxm_mean, table.txm_mean)[0, 1])
