"""Paper-style figures of the particle statistics of a stored run (Deng et al. 2025).

Three files: ``particles_maps`` (SOC map with particle contours and polarisation
arrows; SOC histogram with its Gaussian-mixture components), ``particles_size``
(mean SOC against radius with Pearson r; small vs large distributions) and
``particles_network`` (edge energy per impedance bin, combined vs core-shell
model; the 2D map over (e-, Li+) distance). Input: the arrays, tables and metadata
of :func:`ssb_beamline.storage.read_results`.
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
import pandas as pd
from skimage.segmentation import find_boundaries

from ssb_beamline.analysis import histogram_components

__all__ = ["write_particle_figures"]

logger = logging.getLogger(__name__)

#: Polarisation arrows are drawn this many times longer than the offset.
ARROW_SCALE = 5.0


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_axis_off()


def _soc_map(ax, arrays: Mapping[str, np.ndarray], table: pd.DataFrame | None, px: float) -> None:
    labels = np.asarray(arrays["particle_labels"])
    soc = np.where(labels > 0, np.asarray(arrays.get("particle_soc", arrays["soc"]), float), np.nan)
    im = ax.imshow(soc, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="SOC")
    edges = np.ma.masked_where(~find_boundaries(labels, mode="inner"), np.ones(labels.shape))
    ax.imshow(edges, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    if table is not None and len(table):
        ok = np.isfinite(table["soc_centroid_x_um"]) & np.isfinite(table["soc_centroid_y_um"])
        t = table[ok]
        x, y = t["centroid_x_um"] / px, t["centroid_y_um"] / px
        dx = (t["soc_centroid_x_um"] - t["centroid_x_um"]) / px * ARROW_SCALE
        dy = (t["soc_centroid_y_um"] - t["centroid_y_um"]) / px * ARROW_SCALE
        ax.quiver(x, y, dx, dy, color="red", angles="xy", scale_units="xy", scale=1, width=0.004)
    ax.set_title(f"SOC, particle contours, polarisation (arrows x{ARROW_SCALE:g})")
    ax.set_axis_off()


def _histogram(ax, arrays: Mapping[str, np.ndarray]) -> None:
    labels = np.asarray(arrays["particle_labels"])
    soc = np.asarray(arrays.get("particle_soc", arrays["soc"]), float)[labels > 0]
    soc = soc[np.isfinite(soc)]
    if soc.size < 10:
        _note(ax, "too few SOC pixels for a histogram")
        return
    ax.hist(soc, bins=80, density=True, color="0.7", label="particle pixels")
    try:
        g = histogram_components(soc, 2)
    except ValueError as exc:
        ax.set_title(f"SOC histogram (no mixture: {exc})")
        return
    x = np.linspace(soc.min(), soc.max(), 400)
    total = np.zeros_like(x)
    for m, s, w in zip(g.means, g.sigmas, g.weights, strict=True):
        y = w * np.exp(-0.5 * ((x - m) / s) ** 2) / (s * np.sqrt(2 * np.pi))
        total += y
        ax.plot(x, y, lw=1.5, label=f"{m:.2f} +/- {s:.2f} ({w:.0%})")
    ax.plot(x, total, "k--", lw=1, label="sum")
    ax.set_xlabel("SOC")
    ax.set_ylabel("density")
    ax.set_title("SOC histogram with Gaussian components")
    ax.legend(fontsize=8)


def _size(axes, table: pd.DataFrame, stats: Mapping[str, Any]) -> None:
    ax = axes[0]
    colors = np.where(table["size_class"] == "small", "tab:orange", "tab:blue")
    ax.errorbar(table["radius_um"], table["soc_mean"], yerr=table["soc_std"], fmt="none",
                ecolor="0.7", lw=0.8)  # fmt: skip
    ax.scatter(table["radius_um"], table["soc_mean"], c=colors, s=18, zorder=3)
    corr = stats.get("correlations", {}).get("soc_mean_vs_radius", {})
    r = corr.get("r")
    ok = np.isfinite(table["soc_mean"]) & np.isfinite(table["radius_um"])
    if r is not None and ok.sum() >= 2:
        fit = np.polyfit(table["radius_um"][ok], table["soc_mean"][ok], 1)
        xs = np.linspace(table["radius_um"].min(), table["radius_um"].max(), 2)
        ax.plot(xs, np.polyval(fit, xs), "k-", lw=1)
    label = f"Pearson r = {r:.3f} (n = {corr.get('n')})" if r is not None else corr.get("reason")
    ax.set_title(f"Mean SOC vs radius: {label}")
    ax.set_xlabel("equivalent radius (um)")
    ax.set_ylabel("particle mean SOC (+/- std)")
    ax = axes[1]
    groups = [table.loc[table["size_class"] == g, "soc_mean"].dropna() for g in ("small", "large")]
    if any(len(g) for g in groups):
        data = [g.to_numpy() if len(g) else np.array([np.nan]) for g in groups]
        ax.boxplot(data, tick_labels=[f"small (n={len(groups[0])})", f"large (n={len(groups[1])})"])
        for i, g in enumerate(groups, start=1):
            ax.scatter(np.full(len(g), i) + np.linspace(-0.1, 0.1, len(g)), g, s=10, alpha=0.6)
    threshold = stats.get("size_threshold_um", 1.0)
    ax.set_title(f"Small vs large particles (radius threshold {threshold:g} um)")
    ax.set_ylabel("particle mean SOC")


def _network(axes, arrays: Mapping[str, np.ndarray], tables, diffusion: Mapping) -> None:
    ax = axes[0]
    bins = tables.get("impedance_bins")
    if bins is None or not len(bins):
        _note(ax, "no impedance bins stored")
    else:
        slopes = diffusion.get("trend_slope_ev") or {}
        for model, marker in (("combined", "o-"), ("core_shell", "s--")):
            rows = bins[bins["model"] == model]
            if not len(rows):
                continue
            centre = 0.5 * (rows["bin_lo"] + rows["bin_hi"])
            slope = slopes.get(model)
            label = model.replace("_", "-") + (f" (slope {slope:+.2f} eV)" if slope else "")
            ax.errorbar(centre, rows["edge_energy_mean"], yerr=rows["error_bar"], fmt=marker,
                        capsize=3, label=label)  # fmt: skip
        ax.set_xlabel("normalised impedance (bin centre)")
        ax.set_ylabel("mean Ni K-edge energy (eV)")
        ax.set_title("Edge energy per impedance bin (error bar FWHM/10)")
        ax.legend(fontsize=8)
    unavailable = diffusion.get("unavailable") or {}
    if "combined" in unavailable:
        ax.text(0.02, 0.02, "combined: " + unavailable["combined"], transform=ax.transAxes,
                fontsize=7, wrap=True)  # fmt: skip
    ax = axes[1]
    if "distance_map_2d" not in arrays:
        _note(ax, "2D (e-, Li+) map unavailable: " + str(diffusion.get("unavailable_2d", "")))
        return
    edges = diffusion.get("distance_map_2d", {})
    e_edges = np.asarray(edges.get("e_edges", np.linspace(0, 1, 6)), float)
    li_edges = np.asarray(edges.get("li_edges", np.linspace(0, 1, 6)), float)
    mesh = ax.pcolormesh(li_edges, e_edges, np.asarray(arrays["distance_map_2d"], float),
                         cmap="magma", shading="flat")  # fmt: skip
    plt.colorbar(mesh, ax=ax, label="mean edge energy (eV)")
    ax.set_xlabel("normalised Li+ diffusion distance")
    ax.set_ylabel("normalised e- diffusion distance")
    ax.set_title("Edge energy over (e-, Li+) distance")


def write_particle_figures(
    out_dir: str | Path,
    arrays: Mapping[str, np.ndarray],
    tables: Mapping[str, pd.DataFrame],
    metadata: Mapping[str, Any],
    *,
    title: str = "",
    fmt: str = "png",
) -> list[Path]:
    """Write the particle-statistics figures of one stored result; the files written.

    Raises
    ------
    KeyError
        If the result holds no particle statistics (``particle_labels`` array).
    """
    if "particle_labels" not in arrays or "soc" not in arrays:
        raise KeyError(
            "this result has no particle statistics (no 'particle_labels' array); it was "
            "stored without the ParticleStatistics post-processor - replay the run with it"
        )
    md = metadata.get("particles", {})
    px = float(md.get("pixel_size_um") or 1.0)
    table = tables.get("particles")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(fig, name: str) -> None:
        fig.suptitle(f"{title} - {md.get('n_particles', 0)} particles".strip(" -"))
        written.append(out / f"{name}.{fmt}")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), constrained_layout=True)
    _soc_map(axes[0], arrays, table, px)
    _histogram(axes[1], arrays)
    save(fig, "particles_maps")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    if table is None or not len(table):
        for ax in axes:
            _note(ax, md.get("reason", "no particle table stored"))
    else:
        _size(axes, table, md.get("statistics", {}))
    save(fig, "particles_size")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    _network(axes, arrays, tables, md.get("diffusion", {}))
    save(fig, "particles_network")
    for path in written:
        logger.info("wrote %s", path)
    return written
