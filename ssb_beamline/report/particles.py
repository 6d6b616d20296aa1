"""Paper-style figures of the particle statistics of a stored run (Deng et al. 2025).

Three files: ``particles_maps`` (SOC map with particle contours and polarisation
arrows; SOC histogram with its Gaussian-mixture components), ``particles_size``
(mean SOC against radius with Pearson r; small vs large distributions) and
``particles_network`` (edge energy per impedance bin, combined vs core-shell
model; the 2D map over (e-, Li+) distance). Input: the arrays, tables and metadata
of :func:`ssb_beamline.storage.read_results`.

Maps have µm axes and robust colour ranges (stated). Small and large particles
have one colour each in every panel (with a legend). The histogram and its
Gaussian mixture leave out pixels whose SOC was clipped to exactly 0 or 1 (the
counts are stated). Panels with nothing to draw are left out and a caption line
says why.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch
from skimage.segmentation import find_boundaries

from ssb_beamline.analysis import histogram_components

from .axes import UM, map_panel, robust_range
from .pages import FigureSink

__all__ = ["write_particle_figures"]

logger = logging.getLogger(__name__)

#: Colours of the size classes, the same in every panel.
SIZE_COLOURS = {"small": "tab:orange", "large": "tab:blue"}
#: The median polarisation arrow is drawn this fraction of the field width long.
ARROW_FRACTION = 0.06


def _particle_soc(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    labels = np.asarray(arrays["particle_labels"])
    return np.where(
        labels > 0, np.asarray(arrays.get("particle_soc", arrays["soc"]), float), np.nan
    )


def _soc_map(ax, arrays: Mapping[str, np.ndarray], table: pd.DataFrame | None, px: float) -> None:
    labels = np.asarray(arrays["particle_labels"])
    soc = _particle_soc(arrays)
    map_panel(ax, soc, px, cmap="viridis", label="SOC")
    h, w = labels.shape
    edges = np.ma.masked_where(~find_boundaries(labels, mode="inner"), np.ones(labels.shape))
    ax.imshow(edges, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest",
              extent=(0, w * px, h * px, 0))  # fmt: skip
    title = "SOC with particle contours"
    if table is not None and len(table):
        ok = np.isfinite(table["soc_centroid_x_um"]) & np.isfinite(table["soc_centroid_y_um"])
        t = table[ok]
        dx = t["soc_centroid_x_um"] - t["centroid_x_um"]
        dy = t["soc_centroid_y_um"] - t["centroid_y_um"]
        length = float(np.nanmedian(np.hypot(dx, dy))) if len(t) else 0.0
        if length > 0:
            scale = ARROW_FRACTION * w * px / length
            ax.quiver(t["centroid_x_um"], t["centroid_y_um"], dx * scale, dy * scale,
                      color="red", angles="xy", scale_units="xy", scale=1, width=0.006,
                      headwidth=4)  # fmt: skip
            title += f"; polarisation arrows (x{scale:.0f})"
    ax.set_title(title, fontsize=10)


def _histogram(ax, arrays: Mapping[str, np.ndarray]) -> str:
    """Histogram of particle SOC without clipped pixels; returns the caption about them."""
    soc = _particle_soc(arrays)
    soc = soc[np.isfinite(soc)]
    at0, at1 = int(np.sum(soc <= 0.0)), int(np.sum(soc >= 1.0))
    soc = soc[(soc > 0.0) & (soc < 1.0)]
    clipped = f"{at0} pixels clipped at SOC 0 and {at1} at 1 left out of histogram and fit."
    if soc.size < 10:
        ax.set_axis_off()
        return "Too few SOC pixels for a histogram. " + clipped
    ax.hist(soc, bins=80, density=True, color="0.7", label=f"particle pixels (n={soc.size})")
    ax.set_xlabel("SOC (Ni³⁺ fraction)")
    ax.set_ylabel("probability density (1/SOC)")
    try:
        g = histogram_components(soc, 2)
    except ValueError as exc:
        ax.set_title(f"SOC histogram (no mixture: {exc})", fontsize=10)
        ax.legend(fontsize=8)
        return clipped
    x = np.linspace(soc.min(), soc.max(), 400)
    total = np.zeros_like(x)
    for m, s, w in zip(g.means, g.sigmas, g.weights, strict=True):
        y = w * np.exp(-0.5 * ((x - m) / s) ** 2) / (s * np.sqrt(2 * np.pi))
        total += y
        ax.plot(x, y, lw=1.5, label=f"{m:.2f} +/- {s:.2f} ({w:.0%})")
    ax.plot(x, total, "k--", lw=1, label="sum of components")
    ax.set_title("SOC histogram with Gaussian components", fontsize=10)
    ax.legend(fontsize=8)
    return clipped


def _size(axes, table: pd.DataFrame, stats: Mapping[str, Any]) -> None:
    ax = axes[0]
    colours = table["size_class"].map(SIZE_COLOURS).fillna("0.5")
    ax.errorbar(table["radius_um"], table["soc_mean"], yerr=table["soc_std"], fmt="none",
                ecolor="0.7", lw=0.8)  # fmt: skip
    ax.scatter(table["radius_um"], table["soc_mean"], c=list(colours), s=18, zorder=3)
    corr = stats.get("correlations", {}).get("soc_mean_vs_radius", {})
    r = corr.get("r")
    ok = np.isfinite(table["soc_mean"]) & np.isfinite(table["radius_um"])
    if r is not None and ok.sum() >= 2:
        fit = np.polyfit(table["radius_um"][ok], table["soc_mean"][ok], 1)
        xs = np.linspace(table["radius_um"].min(), table["radius_um"].max(), 2)
        ax.plot(xs, np.polyval(fit, xs), "k-", lw=1, label="linear fit")
    label = f"Pearson r = {r:.3f} (n = {corr.get('n')})" if r is not None else corr.get("reason")
    ax.set_title(f"Mean SOC vs radius: {label}", fontsize=10)
    ax.set_xlabel(f"equivalent radius ({UM})")
    ax.set_ylabel("particle mean SOC (+/- std)")
    threshold = stats.get("size_threshold_um", 1.0)
    handles = [Patch(color=c, label=f"{k} (radius {'<' if k == 'small' else '>='} "
                     f"{threshold:g} {UM})") for k, c in SIZE_COLOURS.items()]  # fmt: skip
    ax.legend(handles=handles, fontsize=8)
    ax = axes[1]
    groups = [table.loc[table["size_class"] == g, "soc_mean"].dropna() for g in SIZE_COLOURS]
    data = [g.to_numpy() if len(g) else np.array([np.nan]) for g in groups]
    boxes = ax.boxplot(data, patch_artist=True, medianprops={"color": "black"}, tick_labels=[
        f"{k} (n={len(g)})" for k, g in zip(SIZE_COLOURS, groups, strict=True)])  # fmt: skip
    for box, colour in zip(boxes["boxes"], SIZE_COLOURS.values(), strict=True):
        box.set_facecolor(colour)
        box.set_alpha(0.35)
    for i, (g, colour) in enumerate(zip(groups, SIZE_COLOURS.values(), strict=True), start=1):
        ax.scatter(np.full(len(g), i) + np.linspace(-0.1, 0.1, len(g)), g, s=10, color=colour)
    ax.set_title(f"Small vs large particles (radius threshold {threshold:g} {UM})", fontsize=10)
    ax.set_ylabel("particle mean SOC")
    ax.legend(handles=handles, fontsize=8)


def _bins_panel(ax, bins: pd.DataFrame, slopes: Mapping[str, float]) -> None:
    for model, marker in (("combined", "o-"), ("core_shell", "s--")):
        rows = bins[bins["model"] == model]
        if not len(rows):
            continue
        centre = 0.5 * (rows["bin_lo"] + rows["bin_hi"])
        slope = slopes.get(model)
        label = model.replace("_", "-") + (f" (slope {slope:+.2f} eV)" if slope else "")
        ax.errorbar(centre, rows["edge_energy_mean"], yerr=rows["error_bar"], fmt=marker,
                    capsize=3, label=label)  # fmt: skip
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xlabel("normalised impedance (bin centre, 0-1)")
    ax.set_ylabel("mean Ni K-edge energy (eV)")
    ax.set_title("Edge energy per impedance bin", fontsize=10)
    ax.legend(fontsize=8, title="model")


def _map2d_panel(ax, arrays, diffusion: Mapping) -> None:
    edges = diffusion.get("distance_map_2d", {})
    e_edges = np.asarray(edges.get("e_edges", np.linspace(0, 1, 6)), float)
    li_edges = np.asarray(edges.get("li_edges", np.linspace(0, 1, 6)), float)
    values = np.asarray(arrays["distance_map_2d"], float)
    lo, hi = robust_range(values, 2, 98)
    mesh = ax.pcolormesh(li_edges, e_edges, values, cmap="magma", shading="flat", vmin=lo,
                         vmax=hi)  # fmt: skip
    ax.figure.colorbar(mesh, ax=ax, label="mean edge energy (eV)\n(colours: 2nd-98th percentile)")
    ax.set_xlabel("normalised Li+ diffusion distance (0-1)")
    ax.set_ylabel("normalised e- diffusion distance (0-1)")
    ax.set_title("Edge energy over (e-, Li+) distance", fontsize=10)


def _readable(reason: str) -> str:
    return re.sub(r"\s*\(code \d+\)", "", reason)


def _network(arrays, tables, diffusion: Mapping, title: str):
    """``(figure, caption)`` with the panels that have data; ``(None, why)`` if none has."""
    bins = tables.get("impedance_bins")
    panels = []
    if bins is not None and len(bins):
        panels.append("bins")
    if "distance_map_2d" in arrays:
        panels.append("map2d")
    unavailable = {k: _readable(str(v)) for k, v in (diffusion.get("unavailable") or {}).items()}
    why = "; ".join(f"{k}: {v}" for k, v in unavailable.items())
    if not panels:
        reason = why or _readable(str(diffusion.get("unavailable_2d") or "no network analysis"))
        return None, f"Network figure left out: {reason}."
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.8), squeeze=False,
                             constrained_layout=True)  # fmt: skip
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel == "bins":
            _bins_panel(ax, bins, diffusion.get("trend_slope_ev") or {})
        else:
            _map2d_panel(ax, arrays, diffusion)
    notes = ["Error bars: FWHM/10 of the bin's edge energies (the paper's convention)."]
    if "map2d" not in panels:
        why_2d = _readable(str(diffusion.get("unavailable_2d", "not computed")))
        notes.append(f"2D (e-, Li+) map left out: {why_2d}.")
    if why:
        notes.append(f"Not available: {why}.")
    fig.suptitle(title)
    return fig, " ".join(notes)


def write_particle_figures(
    out_dir: str | Path,
    arrays: Mapping[str, np.ndarray],
    tables: Mapping[str, pd.DataFrame],
    metadata: Mapping[str, Any],
    *,
    title: str = "",
    fmt: str = "png",
    sink: FigureSink | None = None,
    pixel_size_um: float | None = None,
) -> list[Path]:
    """Write the particle-statistics figures of one stored result; the files written.

    ``sink`` (e.g. pages of one PDF) replaces ``out_dir`` / ``fmt``.

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
    px = float(md.get("pixel_size_um") or pixel_size_um or 1.0)
    table = tables.get("particles")
    sink = sink or FigureSink(out_dir, fmt)
    before = len(sink.written)
    heading = f"{title} - {md.get('n_particles', 0)} particles".strip(" -")

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), constrained_layout=True)
    _soc_map(axes[0], arrays, table, px)
    clipped = _histogram(axes[1], arrays)
    network, network_note = _network(arrays, tables, md.get("diffusion", {}), heading)
    fig.suptitle(heading)
    left_out = network_note if network is None else ""
    sink.save(fig, "particles_maps", caption=" ".join(s for s in (clipped, left_out) if s))

    if table is None or not len(table):
        logger.info("no particle table: particles_size left out (%s)", md.get("reason"))
    else:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
        _size(axes, table, md.get("statistics", {}))
        fig.suptitle(heading)
        sink.save(fig, "particles_size")
    if network is not None:
        sink.save(network, "particles_network", caption=network_note)
    return sink.written[before:]
