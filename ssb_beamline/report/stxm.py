"""Figures of a stored STXM result (Deng et al. 2025, Figure 2a-e style).

Two files, ``stxm_maps`` (OD at E1, valence ratio ``I2/I1`` with particle contours,
Ni3+ fraction when calibrated) and ``stxm_particles`` (ratio histogram; per-particle
mean and standard deviation of the ratio; particle spectra of a stack scan). Input:
the arrays, tables and metadata of :func:`ssb_beamline.storage.read_results`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np

__all__ = ["is_stxm_result", "write_stxm_figures"]

logger = logging.getLogger(__name__)


def is_stxm_result(metadata: Mapping[str, Any]) -> bool:
    """True for results of the STXM analysis."""
    return metadata.get("analysis") == "stxm"


def _image(ax, image: np.ndarray, title: str, label: str, labels: np.ndarray | None = None,
           **kwargs: Any) -> None:  # fmt: skip
    im = ax.imshow(image, interpolation="nearest", **kwargs)
    plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=label)
    if labels is not None:
        # here, not at import: `show` imports this module for every run (skimage: ~1 s)
        from skimage.segmentation import find_boundaries

        edges = np.ma.masked_where(~find_boundaries(labels, mode="inner"), np.ones(labels.shape))
        ax.imshow(edges, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title)
    ax.set_axis_off()


def write_stxm_figures(
    out_dir: str | Path,
    arrays: Mapping[str, np.ndarray],
    tables: Mapping[str, Any],
    metadata: Mapping[str, Any],
    *,
    title: str = "",
    fmt: str = "png",
) -> list[Path]:
    """Write the STXM figures of one stored result; the files written.

    Raises
    ------
    KeyError
        If the result is not an STXM result (no ``ratio`` array).
    """
    if "ratio" not in arrays or "od" not in arrays:
        raise KeyError(
            "this result has no STXM maps ('ratio', 'od'); it is not from stxm_ratio_scan "
            "or stxm_stack_scan - use `show` / `report` on an STXM run"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    e1, e2 = metadata.get("ratio_energies_ev", [None, None])
    energies = np.asarray(arrays.get("energies", []), float)
    labels = np.asarray(arrays.get("labels")) if "labels" in arrays else None
    ratio = np.asarray(arrays["ratio"], float)
    written: list[Path] = []

    def save(fig, name: str) -> None:
        fig.suptitle(title)
        written.append(out / f"{name}.{fmt}")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

    fraction = arrays.get("ni3_fraction")
    fig, axes = plt.subplots(1, 3 if fraction is not None else 2, figsize=(15, 4.8),
                             constrained_layout=True)  # fmt: skip
    k1 = int(np.argmin(np.abs(energies - e1))) if energies.size and e1 is not None else 0
    _image(axes[0], np.asarray(arrays["od"])[k1], f"OD at {energies[k1]:g} eV", "OD",
           cmap="gray")  # fmt: skip
    finite = ratio[np.isfinite(ratio)]
    lo, hi = np.percentile(finite, [1, 99]) if finite.size else (0, 1)
    _image(axes[1], ratio, f"valence ratio I({e2:g})/I({e1:g})", "ratio", labels, cmap="viridis",
           vmin=lo, vmax=hi)  # fmt: skip
    if fraction is not None:
        _image(axes[2], np.asarray(fraction, float), "Ni3+ fraction (calibrated)", "fraction",
               labels, cmap="viridis", vmin=0, vmax=1)  # fmt: skip
    save(fig, "stxm_maps")

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), constrained_layout=True)
    if finite.size:
        axes[0].hist(finite, bins=60, color="0.5")
    axes[0].set_xlabel("I2/I1")
    axes[0].set_ylabel("pixels")
    axes[0].set_title("ratio histogram (Ni pixels)")
    table = tables.get("particles")
    if table is not None and len(table):
        axes[1].errorbar(table["label"], table["ratio_mean"], yerr=table["ratio_std"], fmt="o")
        axes[1].set_xlabel("particle")
        axes[1].set_ylabel("I2/I1 mean +/- std")
        axes[1].set_title(f"{len(table)} particles")
    else:
        axes[1].set_axis_off()
    spectra = arrays.get("spectra")
    if spectra is not None and energies.size:
        for k, spectrum in enumerate(np.asarray(spectra)[:8], start=1):
            axes[2].plot(energies, spectrum, label=f"particle {k}")
        axes[2].set_xlabel("energy (eV)")
        axes[2].set_ylabel("OD")
        axes[2].legend(fontsize=7)
        axes[2].set_title("Ni L3 spectra per particle")
    else:
        axes[2].set_axis_off()
    save(fig, "stxm_particles")
    for path in written:
        logger.info("wrote %s", path)
    return written
