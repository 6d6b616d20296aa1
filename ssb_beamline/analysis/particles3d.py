"""3-D particles: segmentation of volumes and holotomography statistics (paper Fig. 5).

The 2-D functions handle 3-D input where their contract allows it:

* :func:`~ssb_beamline.analysis.particles.particle_table` takes ``(nz, ny, nx)``
  labels and values (columns ``volume_um3``, equivalent-sphere ``radius_um``,
  ``centroid_z_um`` / ``soc_centroid_z_um``, 3-D ``polarization_um``);
* :func:`~ssb_beamline.analysis.particle_correlations.size_statistics` works on such tables;
* :func:`~ssb_beamline.analysis.diffusion.diffusion_distance_maps` takes 3-D
  phase volumes (contacts and distances in 3-D).

``segment_particles`` keeps rejecting 3-D input (a volume passed by mistake
should fail loudly), so volumes go through :func:`segment_particles_3d`, which
runs the same threshold / distance-transform / watershed core in 3-D.

Holotomography (ESRF ID16A in the paper) gives an electron-density volume; with
``particle_table(labels, density, ...)`` the per-particle mean / std land in the
``soc_mean`` / ``soc_std`` columns (the table names its value column ``soc``), and
:func:`holotomo_statistics` computes the paper's Figure 5 numbers: Pearson r of
density vs radius (0.6651 in the paper), small (< 1 um) vs large groups, Pearson
r of the within-particle std vs radius, and of density vs depth from the
separator (no trend in the paper).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from .particle_correlations import _pearson, _summary
from .particles import _segment
from .phases import _as_array, _check_pixel_size

__all__ = ["holotomo_statistics", "segment_particles_3d"]

logger = logging.getLogger(__name__)


def segment_particles_3d(
    volume: ArrayLike,
    *,
    voxel_size_um: float,
    threshold: float | Literal["otsu", "triangle", "li"] | None = None,
    min_radius_um: float = 0.3,
    min_volume_um3: float | None = None,
    mask: ArrayLike | None = None,
    fill_holes: bool = True,
    require_particles: bool = False,
) -> NDArray[np.int32]:
    """Label particles in a reconstructed volume (3-D :func:`segment_particles`).

    Foreground ``volume > threshold`` (Otsu by default), holes filled, touching
    particles split by a watershed of the 3-D distance transform seeded at its
    maxima (at least ``min_radius_um`` apart); components smaller than
    ``min_volume_um3`` (default: a ball of ``min_radius_um``) are removed.

    Parameters
    ----------
    volume : array_like, shape (nz, ny, nx)
        Reconstructed volume (e.g. electron density or attenuation); particles bright.
    voxel_size_um : float
        Cubic voxel size in micrometres.
    threshold, min_radius_um, mask, fill_holes, require_particles
        As for :func:`~ssb_beamline.analysis.particles.segment_particles`.
    min_volume_um3 : float, optional
        Debris volume threshold (default ``4/3 pi min_radius_um**3``).

    Returns
    -------
    numpy.ndarray of int32, shape (nz, ny, nx)
        Labels ``1..n`` (sequential), 0 = background.

    Examples
    --------
    >>> zz, yy, xx = np.mgrid[:32, :32, :48]
    >>> vol = ((zz - 16) ** 2 + (yy - 16) ** 2 + (xx - 12) ** 2 < 81) | (
    ...     (zz - 16) ** 2 + (yy - 16) ** 2 + (xx - 34) ** 2 < 81)
    >>> int(segment_particles_3d(vol.astype(float), voxel_size_um=0.1).max())
    2
    """
    if np.ndim(volume) != 3:
        raise ValueError(
            f"volume must be 3-D (nz, ny, nx), got shape {np.shape(volume)}; for an image "
            "use segment_particles"
        )
    vol = _as_array(volume, "volume", (3,))
    opts = (threshold, min_radius_um, min_volume_um3, mask, fill_holes, require_particles)
    return _segment(vol, voxel_size_um, opts)


def _welch(a: NDArray, b: NDArray) -> dict[str, Any]:
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:
        return {"t": None, "p": None, "reason": "need >= 2 particles in each group"}
    t, p = stats.ttest_ind(a, b, equal_var=False)
    return {"t": float(t), "p": float(p), "reason": None}


def holotomo_statistics(
    table: pd.DataFrame,
    density_column: str,
    *,
    small_radius_um: float = 1.0,
    separator_axis: int = 0,
    voxel_size_um: float,
    separator_index: float = 0.0,
    std_column: str | None = None,
    min_particles: int = 3,
) -> dict[str, Any]:
    """Electron density vs particle size and depth (Deng et al. 2025, Figure 5).

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`~ssb_beamline.analysis.particles.particle_table` on 3-D
        (or 2-D) labels, with the per-particle density in ``density_column``.
    density_column : str
        Per-particle mean density, e.g. ``"soc_mean"`` when the density volume
        was passed as ``soc``.
    small_radius_um : float, default 1.0
        Particles with ``radius_um < small_radius_um`` form the small group.
    separator_axis : int, default 0
        Volume axis normal to the separator (0 = z, 1 = y, 2 = x; 2-D: 0 = y, 1 = x).
    voxel_size_um : float
        Voxel size in micrometres (converts ``separator_index``; also used to warn
        when the small group is under-resolved, radius < 2 voxels).
    separator_index : float, default 0.0
        Position of the separator plane along ``separator_axis``, in voxels.
    std_column : str, optional
        Within-particle std column (default: ``density_column`` with ``_mean`` ->
        ``_std``, e.g. ``"soc_std"``).
    min_particles : int, default 3
        Fewest particles for a correlation.

    Returns
    -------
    dict
        ``n_particles``; ``correlations`` with ``density_vs_radius``,
        ``std_vs_radius`` and ``density_vs_depth`` (each ``{"r", "p", "n",
        "reason"}``, Pearson; None with a reason when unavailable); ``groups``
        ``small`` / ``large`` with ``density`` and ``within_std`` summaries
        (``{"n", "mean", "std" (ddof=1), "median", "reason"}``);
        ``small_vs_large`` (Welch t-test ``{"t", "p", "reason"}``);
        ``depth_um`` (per particle, numpy array).

    Examples
    --------
    >>> t = pd.DataFrame({"radius_um": [0.5, 0.8, 1.5, 2.0], "centroid_z_um": [1, 5, 2, 4],
    ...                   "centroid_y_um": 0.0, "centroid_x_um": 0.0,
    ...                   "soc_mean": [1.0, 1.1, 1.3, 1.4], "soc_std": [.1, .1, .2, .2]})
    >>> s = holotomo_statistics(t, "soc_mean", voxel_size_um=0.1)
    >>> round(s["correlations"]["density_vs_radius"]["r"], 3), s["groups"]["small"]["density"]["n"]
    (0.996, 2)
    """
    if not isinstance(table, pd.DataFrame):
        raise ValueError(
            f"table must be a pandas.DataFrame, got {type(table).__name__}; pass the "
            "output of particle_table"
        )
    vox = _check_pixel_size(voxel_size_um)
    axes = ("z", "y", "x") if "centroid_z_um" in table.columns else ("y", "x")
    if separator_axis not in range(len(axes)):
        raise ValueError(
            f"separator_axis={separator_axis} is not an axis of a {len(axes)}-D table; use "
            f"0..{len(axes) - 1} ({', '.join(axes)})"
        )
    depth_col = f"centroid_{axes[separator_axis]}_um"
    if std_column is None and density_column.endswith("_mean"):
        std_column = density_column[: -len("_mean")] + "_std"
    missing = [c for c in ("radius_um", density_column, depth_col) if c not in table.columns]
    if missing:
        raise ValueError(
            f"table is missing column(s) {missing}; pass the output of particle_table and "
            "the name of its density column (e.g. 'soc_mean')"
        )
    if not np.isfinite(small_radius_um) or small_radius_um <= 0:
        raise ValueError(f"small_radius_um={small_radius_um} must be > 0 (um), e.g. 1.0")
    if small_radius_um < 2 * vox:
        logger.warning(
            "small_radius_um=%.3g um is under 2 voxels (%.3g um): the small group is "
            "barely resolved, its densities suffer from partial-volume effects",
            small_radius_um,
            vox,
        )
    density = table[density_column]
    depth = pd.Series(np.abs(table[depth_col].to_numpy(float) - separator_index * vox))
    depth.index = table.index
    no_std = f"no within-particle std column {std_column!r}; pass std_column="
    corr = {
        "density_vs_radius": _pearson(density, table["radius_um"], min_particles),
        "std_vs_radius": (
            _pearson(table[std_column], table["radius_um"], min_particles)
            if std_column in table.columns
            else {"r": None, "p": None, "n": 0, "reason": no_std}
        ),
        "density_vs_depth": _pearson(density, depth, min_particles),
    }
    small = table["radius_um"].to_numpy(float) < small_radius_um
    groups: dict[str, Any] = {}
    for name, sel in (("small", small), ("large", ~small)):
        groups[name] = {"density": _summary(density.to_numpy(float)[sel])}
        if std_column in table.columns:
            groups[name]["within_std"] = _summary(table[std_column].to_numpy(float)[sel])
    d = density.to_numpy(float)
    r = corr["density_vs_radius"]["r"]
    logger.info(
        "holotomo_statistics: %d particles, %d small / %d large, Pearson r(density, radius)=%s",
        len(table),
        int(small.sum()),
        int((~small).sum()),
        "n/a" if r is None else f"{r:.4f}",
    )
    return {
        "n_particles": len(table),
        "correlations": corr,
        "groups": groups,
        "small_vs_large": _welch(d[small], d[~small]),
        "depth_um": depth.to_numpy(),
    }
