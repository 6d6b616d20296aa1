"""Figures of stored tomography, 3D XANES and holotomography results.

Tomography / 3D XANES (``attenuation``, optional ``edge_energy`` / ``soc`` / ``mask``):
``tomo_slices`` - orthogonal slices (xy, xz, yz through the volume centre) of each
volume. Holotomography (``electron_density``, ``particle_labels``, the ``particles``
table and ``holotomo_statistics`` metadata): ``holo_slices`` (orthogonal slices of
the electron density and of the labels), ``holo_particles`` (maximum-intensity
projections of the labels along z, y and x, coloured by label) and
``holo_statistics`` (the paper's Figure 5: electron density vs radius with Pearson
r, small vs large particles, within-particle spread vs radius, density vs depth from
the separator). Input: the arrays, tables and metadata of
:func:`ssb_beamline.storage.read_results`.
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
from matplotlib.colors import ListedColormap

__all__ = ["is_tomography_result", "write_tomo_figures"]

logger = logging.getLogger(__name__)

#: Plans whose stored results this module draws.
TOMO_PLAN_NAMES = ("tomo_scan", "xanes_tomo_scan", "holotomo_scan")
_VIEWS = (("xy", 0), ("xz", 1), ("yz", 2))  # (name, axis cut at its middle)


def is_tomography_result(arrays: Mapping[str, Any], metadata: Mapping[str, Any]) -> bool:
    """Whether a stored result is a tomography / holotomography one."""
    plan = metadata.get("plan_name")
    return plan in TOMO_PLAN_NAMES or "attenuation" in arrays or "electron_density" in arrays


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_axis_off()


def _cut(volume: np.ndarray, axis: int) -> np.ndarray:
    return np.take(volume, volume.shape[axis] // 2, axis=axis)


def _slices_row(axes, volume, label: str, px: float, cmap="viridis", vmin=None, vmax=None):
    """One row of orthogonal slices (in um) with a shared colour scale."""
    finite = volume[np.isfinite(volume)]
    if finite.size and vmin is None:
        vmin, vmax = np.percentile(finite, [1, 99])
    if vmin is not None and vmax is not None and vmax <= vmin:  # a uniform volume
        vmin, vmax = vmin - 0.5, vmax + 0.5
    for ax, (name, axis) in zip(axes, _VIEWS, strict=True):
        image = _cut(volume, axis)
        h, w = image.shape
        im = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, origin="lower",
                       extent=(0, w * px, 0, h * px), interpolation="nearest")  # fmt: skip
        ax.set_title(f"{label}: {name} slice", fontsize=9)
        ax.set_xlabel(f"{name[0]} (um)")
        ax.set_ylabel(f"{'z' if name != 'xy' else 'y'} (um)")
    plt.colorbar(im, ax=axes[-1], fraction=0.046, pad=0.04, label=label)


def _label_cmap(n: int) -> ListedColormap:
    colors = plt.get_cmap("tab20")(np.arange(max(n, 1)) % 20)
    return ListedColormap(np.vstack([[0, 0, 0, 1], colors]))


def _tomo_figures(arrays, metadata, px: float, save) -> None:
    stack = np.asarray(arrays["attenuation"], float)
    energies = np.asarray(arrays.get("energies", [np.nan] * len(stack)), float)
    volume = stack[-1] if stack.ndim == 4 else stack
    mask = np.asarray(arrays["mask"], bool) if "mask" in arrays else None
    rows = [(volume, f"attenuation at {energies[-1]:.1f} eV (1/um)", "gray", None, None)]
    for key, label, cmap, lims in (("edge_energy", "edge energy (eV)", "plasma", None),
                                   ("soc", "SOC", "viridis", (0.0, 1.0))):  # fmt: skip
        if key in arrays:
            values = np.asarray(arrays[key], float)
            values = np.where(mask, values, np.nan) if mask is not None else values
            rows.append((values, label, cmap, *(lims or (None, None))))
    fig, axes = plt.subplots(len(rows), 3, figsize=(13, 3.8 * len(rows)), squeeze=False,
                             constrained_layout=True)  # fmt: skip
    for row, (values, label, cmap, vmin, vmax) in zip(axes, rows, strict=True):
        _slices_row(row, values, label, px, cmap, vmin, vmax)
    centre = metadata.get("rotation_center_px")
    note = f"{len(stack) if stack.ndim == 4 else 1} energies"
    note += f", rotation centre {centre:.2f} px" if centre is not None else ""
    save(fig, "tomo_slices", note)


def _holo_slices(arrays, px: float, save) -> None:
    density = np.asarray(arrays["electron_density"], float)
    labels = np.asarray(arrays.get("particle_labels", np.zeros(density.shape, int)))
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5), constrained_layout=True)
    _slices_row(axes[0], density, "electron density (e/nm^3)", px, "magma")
    n = int(labels.max())
    _slices_row(axes[1], labels.astype(float), "particle label", px, _label_cmap(n), 0, n)
    save(fig, "holo_slices", f"{n} particles")


def _holo_particles(arrays, px: float, save) -> None:
    labels = np.asarray(arrays.get("particle_labels", []))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), constrained_layout=True)
    if labels.ndim != 3 or labels.max() == 0:
        for ax in axes:
            _note(ax, "no labelled particles stored")
    else:
        n = int(labels.max())
        for ax, (name, axis) in zip(axes, (("xy", 0), ("xz", 1), ("yz", 2)), strict=True):
            mip = labels.max(axis=axis)
            h, w = mip.shape
            ax.imshow(mip, cmap=_label_cmap(n), vmin=0, vmax=n, origin="lower",
                      extent=(0, w * px, 0, h * px), interpolation="nearest")  # fmt: skip
            ax.set_title(f"labels, maximum projection along {'zyx'[axis]}", fontsize=9)
            ax.set_xlabel(f"{name[0]} (um)")
            ax.set_ylabel(f"{name[1]} (um)")
    save(fig, "holo_particles", "labelled NMC particles")


def _scatter_fit(ax, x, y, corr: Mapping[str, Any] | None, xlabel: str, ylabel: str, what: str):
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    ax.scatter(x[ok], y[ok], s=16, c="tab:blue", alpha=0.8)
    corr = corr or {}
    r = corr.get("r")
    if r is not None and ok.sum() >= 2:
        fit = np.polyfit(x[ok], y[ok], 1)
        xs = np.linspace(x[ok].min(), x[ok].max(), 2)
        ax.plot(xs, np.polyval(fit, xs), "k-", lw=1)
    label = f"Pearson r = {r:.3f} (n = {corr.get('n')})" if r is not None else corr.get("reason")
    ax.set_title(f"{what}: {label}", fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def _holo_statistics(tables, metadata, small_radius: float, save) -> None:
    table = tables.get("particles")
    stats = metadata.get("holotomo_statistics") or {}
    corr = stats.get("correlations", {})
    fig, axes = plt.subplots(2, 2, figsize=(12, 9), constrained_layout=True)
    axes = axes.ravel()
    if table is None or not len(table):
        for ax in axes:
            _note(ax, "no particle table stored")
        save(fig, "holo_statistics", "no particles")
        return
    density, radius = table["electron_density_mean"], table["radius_um"]
    _scatter_fit(axes[0], radius, density, corr.get("density_vs_radius"), "equivalent radius (um)",
                 "mean electron density (e/nm^3)", "E-density vs size")  # fmt: skip
    small = radius < small_radius
    groups = [density[small].dropna().to_numpy(), density[~small].dropna().to_numpy()]
    data = [g if g.size else np.array([np.nan]) for g in groups]
    axes[1].boxplot(data, tick_labels=[f"small < {small_radius:g} um (n={groups[0].size})",
                                       f"large (n={groups[1].size})"])  # fmt: skip
    for i, g in enumerate(groups, start=1):
        axes[1].scatter(np.full(g.size, i) + np.linspace(-0.1, 0.1, g.size), g, s=10, alpha=0.6)
    welch = stats.get("small_vs_large", {})
    p = welch.get("p")
    axes[1].set_title("Small vs large" + (f" (Welch p = {p:.3g})" if p is not None else ""),
                      fontsize=9)  # fmt: skip
    axes[1].set_ylabel("mean electron density (e/nm^3)")
    _scatter_fit(axes[2], radius, table["electron_density_std"], corr.get("std_vs_radius"),
                 "equivalent radius (um)", "E-density std within particle (e/nm^3)",
                 "spread vs size")  # fmt: skip
    _scatter_fit(axes[3], table["depth_um"], density, corr.get("density_vs_depth"),
                 "depth from the separator (um)", "mean electron density (e/nm^3)",
                 "E-density vs depth")  # fmt: skip
    save(fig, "holo_statistics", f"{stats.get('n_particles', len(table))} particles")


def write_tomo_figures(
    out_dir: str | Path,
    arrays: Mapping[str, np.ndarray],
    tables: Mapping[str, pd.DataFrame],
    metadata: Mapping[str, Any],
    *,
    title: str = "",
    fmt: str = "png",
) -> list[Path]:
    """Write the figures of a stored tomography / holotomography result; the files written.

    Parameters
    ----------
    out_dir : path
        Folder (created if needed).
    arrays, tables, metadata : mapping
        As :func:`ssb_beamline.storage.read_results` returns them.
    title : str
        Figure title prefix (e.g. the run uid and version).
    fmt : {"png", "pdf"}
        File format.

    Raises
    ------
    KeyError
        If the result holds neither ``attenuation`` nor ``electron_density``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    px = float(metadata.get("pixel_size_um") or 1.0)
    written: list[Path] = []

    def save(fig, name: str, note: str) -> None:
        fig.suptitle(" - ".join(s for s in (title, note) if s))
        written.append(out / f"{name}.{fmt}")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

    if "electron_density" in arrays:
        stats = metadata.get("holotomo_statistics") or {}
        small = float(stats.get("small_radius_um") or metadata.get("small_radius_um") or 1.0)
        _holo_slices(arrays, px, save)
        _holo_particles(arrays, px, save)
        _holo_statistics(tables, metadata, small, save)
    elif "attenuation" in arrays:
        _tomo_figures(arrays, metadata, px, save)
    else:
        raise KeyError(
            "this result holds no reconstructed volume ('attenuation' or 'electron_density'); "
            "it is not a tomography result - use `ssb-beamline show` for XANES maps"
        )
    logger.info("wrote %d tomography figures to %s", len(written), out)
    return written
