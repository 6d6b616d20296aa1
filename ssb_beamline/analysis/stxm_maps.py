"""Final STXM maps of a run: valence ratio, Ni3+ fraction, particles, spectra (pure numpy).

:func:`stxm_maps` turns the per-energy OD maps of a ratio or stack scan into the
arrays and the per-particle table that are stored with the run. The particles are
segmented in the OD map at E1 (:func:`~.particles.segment_particles`) and their
statistics are those of :func:`~.particles.particle_table` applied to the ratio map
(its ``soc_*`` columns then hold ratio statistics; ``fraction_*`` columns are added
when the fraction is calibrated).

Examples
--------
>>> import numpy as np
>>> od = np.zeros((2, 32, 32), np.float32); od[:, 8:20, 8:20] = [[[0.8]], [[0.4]]]
>>> out = stxm_maps(od, [853.0, 855.5], (853.0, 855.5), pixel_size_um=0.2)
>>> round(float(np.nanmedian(out.arrays["ratio"])), 3), len(out.particles)
(0.5, 1)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .particles import particle_table, segment_particles
from .ratio import frame_at
from .stxm import ni3_fraction, ni_mask, valence_ratio

__all__ = ["STXMMaps", "stxm_maps"]

log = logging.getLogger(__name__)

#: Units of the stored STXM arrays.
STXM_UNITS = {
    "od": "optical density",
    "energies": "eV",
    "ratio": "OD(E2) / OD(E1)",
    "ni3_fraction": "fraction Ni3+",
    "mask": "bool",
    "labels": "particle label",
    "spectra": "optical density",
}


@dataclass
class STXMMaps:
    """Arrays (with units) and tables of one STXM run.

    Attributes
    ----------
    arrays : dict of str to numpy.ndarray
        The maps of the run by key (optical density, ratio, SOC, masks, ...), on the
        STXM raster grid (rows, columns).
    units : dict of str to str
        Unit of each array of ``arrays`` (``"eV"``, ``"um"``, ``"fraction"``, ...).
    particles : pandas.DataFrame
        One row per particle found in the raster.
    metadata : dict
        Energies, estimator and settings of the run (JSON-safe); empty by default.
    """

    arrays: dict[str, np.ndarray]
    units: dict[str, str]
    particles: pd.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)


def stxm_maps(
    od: np.ndarray,
    energies: Sequence[float],
    ratio_energies: Sequence[float],
    *,
    pixel_size_um: float,
    pre_edge_ev: float | None = None,
    reference_ratios: Sequence[float] | None = None,
    reference_e1_ratio: float = 1.0,
    min_radius_um: float | None = None,
) -> STXMMaps:
    """Valence ratio, Ni3+ fraction, particle labels, statistics and spectra.

    Parameters
    ----------
    od : ndarray, (N, H, W)
        OD map per energy.
    energies : sequence of float
        The N energies, eV, increasing.
    ratio_energies : (E1, E2)
        Ratio ``OD(E2) / OD(E1)``; interpolated between scanned energies.
    pixel_size_um : float
        Raster step, um.
    pre_edge_ev : float, optional
        Energy whose OD is subtracted from both before the ratio.
    reference_ratios : (R2, R3), optional
        Ratios of pure Ni2+ / Ni3+ references: adds ``ni3_fraction``.
    reference_e1_ratio : float
        ``OD_Ni3(E1) / OD_Ni2(E1)`` of the references (see `~.stxm.ni3_fraction`).
    min_radius_um : float, optional
        Smallest particle kept by the segmentation (and the seed spacing of its
        watershed); default ``max(0.3, 2.5 * pixel_size_um)`` (a raster resolves no
        finer particle).
    """
    stack = np.asarray(od, dtype=np.float32)
    if min_radius_um is None:
        min_radius_um = max(0.3, 2.5 * pixel_size_um)
    e = np.asarray(energies, dtype=np.float64)
    e1, e2 = (float(v) for v in ratio_energies)
    od1, od2 = frame_at(stack, e, e1), frame_at(stack, e, e2)
    pre = frame_at(stack, e, float(pre_edge_ev)) if pre_edge_ev is not None else None
    mask = ni_mask(od1 if pre is None else od1 - pre)
    ratio = valence_ratio(od1, od2, pre_edge=pre, mask=mask)
    arrays: dict[str, np.ndarray] = {"od": stack, "energies": e, "ratio": ratio, "mask": mask}
    metadata: dict[str, Any] = {"ratio_energies_ev": [e1, e2], "pre_edge_ev": pre_edge_ev,
                                "mask_pixels": int(mask.sum())}  # fmt: skip
    fraction = None
    if reference_ratios is not None:
        r2, r3 = (float(v) for v in reference_ratios)
        fraction = ni3_fraction(ratio, r2, r3, reference_e1_ratio)
        arrays["ni3_fraction"] = fraction
        metadata["calibration"] = {"reference_ratios": [r2, r3],
                                   "reference_e1_ratio": float(reference_e1_ratio)}  # fmt: skip
    labels = segment_particles(np.where(mask, od1, np.nan), pixel_size_um=pixel_size_um,
                               threshold=0.5 * float(np.nanmin(od1[mask])) if mask.any() else None,
                               min_radius_um=min_radius_um)  # fmt: skip
    arrays["labels"] = labels
    if labels.max() > 0:
        table = particle_table(labels, np.where(np.isfinite(ratio), ratio, np.nan),
                               pixel_size_um=pixel_size_um)  # fmt: skip
    else:  # a raster too coarse (or a field too empty) for particles: maps, no statistics
        table = pd.DataFrame(columns=["label", "n_pixels", "soc_mean", "soc_std"])
        metadata["particles_reason"] = (
            f"no particle of radius >= {min_radius_um:.3g} um in the Ni mask"
        )
    table = table.rename(columns={"soc_mean": "ratio_mean", "soc_std": "ratio_std"})
    if fraction is not None and len(table):
        idx = table["label"].to_numpy()
        ok = np.isfinite(fraction) & (labels > 0)
        n = np.bincount(labels[ok], minlength=labels.max() + 1)
        s = np.bincount(labels[ok], fraction[ok], minlength=n.size)
        s2 = np.bincount(labels[ok], fraction[ok].astype(np.float64) ** 2, minlength=n.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s / n
            table["fraction_mean"] = mean[idx]
            table["fraction_std"] = np.sqrt(np.maximum(s2 / n - mean**2, 0.0))[idx]
    if stack.shape[0] > 2 and labels.max() > 0:
        n = np.bincount(labels.ravel(), minlength=labels.max() + 1)[1:]
        sums = np.stack([np.bincount(labels.ravel(), np.nan_to_num(f).ravel(),
                                     minlength=labels.max() + 1)[1:] for f in stack])  # fmt: skip
        arrays["spectra"] = (sums / np.maximum(n, 1)).T.astype(np.float32)  # (particle, E)
    log.info("STXM maps: %d Ni pixels, %d particles", int(mask.sum()), int(labels.max()))
    units = {k: STXM_UNITS[k] for k in arrays}
    return STXMMaps(arrays, units, table, metadata)
