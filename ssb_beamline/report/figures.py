"""PNG/PDF figures of XANES maps: SOC, edge energy, ROI spectra, truth comparison.

Every map has axes in µm and a colour scale from the 1st-99th percentiles of the
particle pixels (stated on its colour bar); the truth comparison shares one scale
between truth and result. The spectra figure marks its regions of interest on
the SOC map, in the colours of their ROI-averaged spectra (mean +/- std over the
region, not single noisy pixels).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from .axes import UM, map_panel, robust_range
from .pages import FigureSink

__all__ = ["pick_rois", "write_xanes_figures"]

logger = logging.getLogger(__name__)

#: Regions of interest of the spectra figure, and their half width (pixels).
N_ROIS, ROI_HALF = 4, 2
_ROI_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def pick_rois(mask: np.ndarray, soc: np.ndarray, n: int = N_ROIS, half: int = ROI_HALF):
    """``n`` square regions ``(y0, y1, x0, x1)`` inside the mask, spread over the SOC range.

    A region is centred on a pixel whose whole square lies in the mask (if there
    is none, on any mask pixel, the square then cut at the image's border);
    centres are picked at quantiles of the SOC averaged over the square (not of
    single noisy pixels).  An empty mask gives no region.

    Examples
    --------
    >>> m = np.zeros((20, 20), bool); m[2:18, 2:18] = True
    >>> soc = np.tile(np.linspace(0, 1, 20), (20, 1))
    >>> pick_rois(m, soc, 2)
    [(2, 7, 2, 7), (13, 18, 13, 18)]
    >>> pick_rois(np.eye(3, dtype=bool), np.ones((3, 3)), 1)  # no whole square: cut
    [(0, 3, 0, 3)]
    """
    from scipy.ndimage import binary_erosion, uniform_filter

    valid = mask & np.isfinite(soc)
    size = 2 * half + 1
    core = binary_erosion(valid, np.ones((size, size), bool))
    ys, xs = np.nonzero(core if core.any() else valid)
    if ys.size == 0:
        return []
    total = uniform_filter(np.where(valid, soc, 0.0), size, mode="constant")
    count = uniform_filter(valid.astype(float), size, mode="constant")
    local = total / np.maximum(count, 1e-9)
    order = np.argsort(local[ys, xs], kind="stable")
    picks = order[np.linspace(0, order.size - 1, n).round().astype(int)]
    h, w = valid.shape
    return [(max(int(ys[i]) - half, 0), min(int(ys[i]) + half + 1, h),
             max(int(xs[i]) - half, 0), min(int(xs[i]) + half + 1, w))
            for i in dict.fromkeys(picks)]  # fmt: skip


def _quiet_nan(stat, values: np.ndarray, **kwargs) -> np.ndarray:
    """``stat(values, **kwargs)`` (``np.nanmean``, ``np.nanstd``): NaN for no value, quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice"
        return stat(values, **kwargs)


def _maps(sink, soc, edge, mask, px, title) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), constrained_layout=True)
    map_panel(axes[0], np.where(mask, soc, np.nan), px, cmap="viridis",
              label="SOC (Ni³⁺ fraction)", title="State of charge")  # fmt: skip
    map_panel(axes[1], np.where(mask, edge, np.nan), px, cmap="magma",
              label="edge energy (eV)", title="Ni K-edge energy (half step)")  # fmt: skip
    fig.suptitle(title)
    sink.save(fig, "maps", caption="Grey: outside the NMC mask (no value).")


def _spectra(sink, arrays, soc, mask, px, references, title) -> None:
    norm = np.asarray(arrays["normalized"], float)
    energies = np.asarray(arrays["energies"], float)
    rois = pick_rois(mask, soc)
    fig, (ax_map, ax) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True,
                                     gridspec_kw={"width_ratios": [1, 1.3]})  # fmt: skip
    map_panel(ax_map, np.where(mask, soc, np.nan), px, cmap="viridis", label="SOC",
              title="Regions of the spectra")  # fmt: skip
    scale = px or 1.0
    for ref in references or ():
        ax.plot(ref.energy_ev, ref.mu_norm, lw=2.5, alpha=0.4, label=f"reference {ref.name}")
    for k, (y0, y1, x0, x1) in enumerate(rois):
        colour = _ROI_COLOURS[k % len(_ROI_COLOURS)]
        ax_map.add_patch(Rectangle((x0 * scale, y0 * scale), (x1 - x0) * scale,
                                   (y1 - y0) * scale, fill=False, ec=colour, lw=2))  # fmt: skip
        ax_map.annotate(
            f"R{k + 1}",
            (x1 * scale, y0 * scale),
            color=colour,
            weight="bold",
            bbox={"boxstyle": "round,pad=0.1", "fc": "white", "alpha": 0.8, "lw": 0},
        )
        region = norm[:, y0:y1, x0:x1].reshape(len(energies), -1)
        inside = mask[y0:y1, x0:x1].ravel()
        mean = _quiet_nan(np.nanmean, region[:, inside], axis=1)
        std = _quiet_nan(np.nanstd, region[:, inside], axis=1)
        roi_soc = _quiet_nan(np.nanmean, soc[y0:y1, x0:x1][mask[y0:y1, x0:x1]])
        ax.fill_between(energies, mean - std, mean + std, color=colour, alpha=0.2, lw=0)
        ax.plot(energies, mean, "o-", ms=3, lw=1, color=colour,
                label=f"R{k + 1}: {inside.sum()} px, SOC {roi_soc:.2f}")  # fmt: skip
    ax.set_xlim(energies[0], energies[-1])
    ax.set_xlabel("Energy (eV)")
    ax.set_ylabel("Normalised absorbance (edge step = 1)")
    ax.set_title("ROI-averaged spectra (band: +/- 1 std over the region)", fontsize=10)
    if not rois:
        ax.text(0.5, 0.5, "no pixel in the NMC mask", transform=ax.transAxes, ha="center")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.suptitle(title)
    side = (2 * ROI_HALF + 1) * scale
    n = 2 * ROI_HALF + 1
    unit = UM if px else "px"
    caption = f"Regions R1-R{len(rois)}: {n} x {n} px ({side:.2g} {unit} square) at SOC quantiles."
    sink.save(fig, "spectra", caption=caption)


def _truth(sink, truth, soc, edge, mask, px, title) -> None:
    t_soc = np.asarray(truth["soc"], float)
    t_edge = np.asarray(truth["edge_energy"], float)
    soc_shown, edge_shown = np.where(mask, soc, np.nan), np.where(mask, edge, np.nan)
    s_lo, s_hi = robust_range([t_soc, soc_shown])  # one scale: truth never saturates
    e_lo, e_hi = robust_range([t_edge, edge_shown])
    # 12 in wide: at 11 the edge-energy colour bars (ticks like 8343.8) pushed the y labels out
    fig, axes = plt.subplots(2, 2, figsize=(12, 9), constrained_layout=True)
    for ax, image, what in ((axes[0, 0], t_soc, "Truth"), (axes[0, 1], soc_shown, "Recovered")):
        map_panel(ax, image, px, cmap="viridis", label="SOC", vmin=s_lo, vmax=s_hi,
                  title=f"{what}: SOC", note="colours: 1st-99th pct of both")  # fmt: skip
    for ax, image, what in ((axes[1, 0], t_edge, "Truth"), (axes[1, 1], edge_shown, "Recovered")):
        map_panel(ax, image, px, cmap="magma", label="edge energy (eV)", vmin=e_lo, vmax=e_hi,
                  title=f"{what}: edge energy", note="colours: 1st-99th pct of both")  # fmt: skip
    fig.suptitle(title or "Recovered maps against the phantom's truth")
    sink.save(fig, "truth_vs_result")


def write_xanes_figures(
    out_dir: str | Path,
    arrays: Mapping[str, np.ndarray],
    *,
    references: Sequence | None = None,
    truth: Mapping[str, np.ndarray] | None = None,
    title: str = "",
    fmt: str = "png",
    pixel_size_um: float | None = None,
    sink: FigureSink | None = None,
) -> list[Path]:
    """Write the figures of one XANES result; returns the files written.

    ``arrays`` holds at least ``soc``, ``edge_energy`` and ``mask``; with
    ``normalized`` and ``energies`` a figure of ROI spectra is drawn too (with
    ``references``, objects with ``name``, ``energy_ev``, ``mu_norm``). With
    ``truth`` (``soc``, ``edge_energy``), the truth is drawn beside the result.
    ``pixel_size_um`` gives the maps µm axes (pixels without it); ``sink`` (e.g.
    pages of one PDF) replaces ``out_dir`` / ``fmt``.
    """
    sink = sink or FigureSink(out_dir, fmt)
    before = len(sink.written)
    soc = np.asarray(arrays["soc"], dtype=float)
    edge = np.asarray(arrays["edge_energy"], dtype=float)
    mask = np.asarray(arrays["mask"], dtype=bool)
    _maps(sink, soc, edge, mask, pixel_size_um, title)
    if "normalized" in arrays and "energies" in arrays:
        _spectra(sink, arrays, soc, mask, pixel_size_um, references, title)
    if truth is not None:
        _truth(sink, truth, soc, edge, mask, pixel_size_um, title)
    return sink.written[before:]
