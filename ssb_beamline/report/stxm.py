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

from .axes import map_panel
from .pages import FigureSink

__all__ = ["is_stxm_result", "write_stxm_figures"]

logger = logging.getLogger(__name__)


def is_stxm_result(metadata: Mapping[str, Any]) -> bool:
    """True for results of the STXM analysis."""
    return metadata.get("analysis") == "stxm"


def _image(ax, image: np.ndarray, title: str, label: str, pixel_size_um: float | None,
           labels: np.ndarray | None = None, **kwargs: Any) -> None:  # fmt: skip
    """A map with µm axes and a labelled colour bar; particle outlines over it if given."""
    im = map_panel(ax, image, pixel_size_um, label=label, title=title, note="", **kwargs)
    if labels is not None:
        # here, not at import: `show` imports this module for every run (skimage: ~1 s)
        from skimage.segmentation import find_boundaries

        edges = np.ma.masked_where(~find_boundaries(labels, mode="inner"), np.ones(labels.shape))
        ax.imshow(edges, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest",
                  extent=im.get_extent())  # fmt: skip


def _pixel_size_um(metadata: Mapping[str, Any]) -> float | None:
    """The raster step (µm) of an STXM result: its metadata, else its ``x_um`` grid."""
    if metadata.get("pixel_size_um"):
        return float(metadata["pixel_size_um"])
    x = np.asarray(metadata.get("x_um") or [], float)
    return float(abs(x[1] - x[0])) if x.size > 1 else None


def write_stxm_figures(
    out_dir: str | Path,
    arrays: Mapping[str, np.ndarray],
    tables: Mapping[str, Any],
    metadata: Mapping[str, Any],
    *,
    title: str = "",
    fmt: str = "png",
    sink: FigureSink | None = None,
) -> list[Path]:
    """Write the STXM figures of one stored result; the files written.

    Parameters
    ----------
    out_dir : str or Path
        Folder of the figure files (created if needed).
    arrays, tables, metadata : mapping
        The stored result (:func:`ssb_beamline.storage.read_results`): ``od``
        (energy, y, x), ``ratio``, optionally ``ni3_fraction``, ``labels``,
        ``energies`` (eV) and ``spectra``; the ``particles`` table; the metadata with
        ``ratio_energies_ev`` and the raster step (``pixel_size_um`` or ``x_um``).
    title : str, optional
        Title over each figure.
    fmt : {"png", "pdf"}
        File format.
    sink : FigureSink, optional
        Where the figures go instead (a PDF report, or kept open for tests).

    Returns
    -------
    list of Path
        The files written.

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
    out = sink or FigureSink(out_dir, fmt)
    energies = np.asarray(arrays.get("energies", []), float)
    ratio = np.asarray(arrays["ratio"], float)
    finite = ratio[np.isfinite(ratio)]
    fig = _maps_figure(arrays, metadata, energies, ratio, finite)
    fig.suptitle(title)
    out.save(fig, "stxm_maps")
    fig = _particles_figure(arrays, tables, energies, finite)
    fig.suptitle(title)
    out.save(fig, "stxm_particles")
    for path in out.written:
        logger.info("wrote %s", path)
    return out.written


def _maps_figure(arrays, metadata, energies, ratio, finite):
    """OD at E1, the valence-ratio map and (if calibrated) the Ni3+ fraction, in µm."""
    e1, e2 = metadata.get("ratio_energies_ev", [None, None])
    labels = np.asarray(arrays.get("labels")) if "labels" in arrays else None
    step = _pixel_size_um(metadata)
    fraction = arrays.get("ni3_fraction")
    fig, axes = plt.subplots(1, 3 if fraction is not None else 2, figsize=(15, 4.8),
                             constrained_layout=True)  # fmt: skip
    k1 = int(np.argmin(np.abs(energies - e1))) if energies.size and e1 is not None else 0
    e_k1 = f"{energies[k1]:g} eV" if energies.size else "E1"
    _image(axes[0], np.asarray(arrays["od"])[k1], f"OD at {e_k1}", "optical density (1)",
           step, cmap="gray")  # fmt: skip
    lo, hi = np.percentile(finite, [1, 99]) if finite.size else (0, 1)
    _image(axes[1], ratio, f"valence ratio I({e2:g})/I({e1:g})", "I2/I1 ratio (1)", step,
           labels, cmap="viridis", vmin=lo, vmax=hi)  # fmt: skip
    if fraction is not None:
        _image(axes[2], np.asarray(fraction, float), "Ni3+ fraction (calibrated)",
               "Ni3+ fraction (1)", step, labels, cmap="viridis", vmin=0, vmax=1)  # fmt: skip
    return fig


def _particles_figure(arrays, tables, energies, finite):
    """Ratio histogram, mean ratio per particle, and the particles' L3 spectra."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), constrained_layout=True)
    if finite.size:
        axes[0].hist(finite, bins=60, color="0.5")
    axes[0].set_xlabel("I2/I1 ratio (1)")
    axes[0].set_ylabel("Ni pixels (count)")
    axes[0].set_title("ratio histogram (Ni pixels)")
    table = tables.get("particles")
    if table is not None and len(table):
        axes[1].errorbar(table["label"], table["ratio_mean"], yerr=table["ratio_std"], fmt="o",
                         label="mean ± std within the particle")  # fmt: skip
        axes[1].set_xlabel("particle (label)")
        axes[1].set_ylabel("I2/I1 ratio (1)")
        axes[1].set_title(f"{len(table)} particles")
        axes[1].legend(fontsize=8)
    else:
        axes[1].set_axis_off()
    spectra = arrays.get("spectra")
    if spectra is not None and energies.size:
        for k, spectrum in enumerate(np.asarray(spectra)[:8], start=1):
            axes[2].plot(energies, spectrum, label=f"particle {k}")
        axes[2].set_xlabel("energy (eV)")
        axes[2].set_ylabel("optical density (1)")
        axes[2].legend(fontsize=7)
        axes[2].set_title("Ni L3 spectra per particle")
    else:
        axes[2].set_axis_off()
    return fig
