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

Slices have µm axes and say where they cut the volume; colour ranges are the
1st-99th percentiles of the sample's voxels (the particles, or the reconstructed
mask), so that reconstruction streaks in empty space do not stretch them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np

if TYPE_CHECKING:  # pandas only names the tables' type here
    import pandas as pd

from .axes import UM, colour_note, distinct_label_cmap, robust_range
from .pages import FigureSink

__all__ = ["is_tomography_result", "write_tomo_figures"]

logger = logging.getLogger(__name__)

#: Plans whose stored results this module draws.
TOMO_PLAN_NAMES = ("tomo_scan", "xanes_tomo_scan", "holotomo_scan")
#: (plane, axis cut at its middle); a plane's name is (horizontal, vertical) axis.
_VIEWS = (("xy", 0), ("xz", 1), ("yz", 2))


def is_tomography_result(arrays: Mapping[str, Any], metadata: Mapping[str, Any]) -> bool:
    """Whether a stored result is a tomography / holotomography one."""
    plan = metadata.get("plan_name")
    return plan in TOMO_PLAN_NAMES or "attenuation" in arrays or "electron_density" in arrays


def _cut(volume: np.ndarray, axis: int) -> np.ndarray:
    return np.take(volume, volume.shape[axis] // 2, axis=axis)


def _slices_row(axes, volume, label: str, px: float, cmap="viridis", vmin=None, vmax=None,
                sample: np.ndarray | None = None, note: str | None = None):  # fmt: skip
    """One row of orthogonal slices (in µm) with a shared colour scale.

    Without ``vmin``/``vmax`` the scale is the robust range of the voxels in
    ``sample`` (all finite voxels without it).
    """
    if vmin is None or vmax is None:
        inside = volume[sample] if sample is not None and sample.any() else volume
        vmin, vmax = robust_range(inside)
        note = note or colour_note() + (" in the sample" if sample is not None else "")
    for ax, (name, axis) in zip(axes, _VIEWS, strict=True):
        image = _cut(volume, axis)
        h, w = image.shape
        im = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, origin="lower",
                       extent=(0, w * px, 0, h * px), interpolation="nearest")  # fmt: skip
        at = (volume.shape[axis] // 2 + 0.5) * px
        what = label.split(" (", maxsplit=1)[0]
        ax.set_title(f"{what}: {name} slice at {'zyx'[axis]} = {at:.2f} {UM}", fontsize=9)
        ax.set_xlabel(f"{name[0]} ({UM})")
        ax.set_ylabel(f"{name[1]} ({UM})")
    text = f"{label}\n({note})" if note else label
    plt.colorbar(im, ax=axes[-1], fraction=0.046, pad=0.04, label=text)


def _tomo_figures(arrays, metadata, px: float, save) -> None:
    stack = np.asarray(arrays["attenuation"], float)
    energies = np.asarray(arrays.get("energies", [np.nan] * len(stack)), float)
    volume = stack[-1] if stack.ndim == 4 else stack
    mask = np.asarray(arrays["mask"], bool) if "mask" in arrays else None
    rows = [(volume, f"attenuation at {energies[-1]:.1f} eV (1/{UM})", "gray")]
    for key, label, cmap in (("edge_energy", "edge energy (eV)", "plasma"),
                             ("soc", "SOC (Ni³⁺ fraction)", "viridis")):  # fmt: skip
        if key in arrays:
            values = np.asarray(arrays[key], float)
            values = np.where(mask, values, np.nan) if mask is not None else values
            rows.append((values, label, cmap))
    fig, axes = plt.subplots(len(rows), 3, figsize=(13, 3.8 * len(rows)), squeeze=False,
                             constrained_layout=True)  # fmt: skip
    for row, (values, label, cmap) in zip(axes, rows, strict=True):
        _slices_row(row, values, label, px, cmap, sample=mask)
    centre = metadata.get("rotation_center_px")
    note = f"{len(stack) if stack.ndim == 4 else 1} energies"
    note += f", rotation centre {centre:.2f} px" if centre is not None else ""
    caption = "" if len(rows) > 1 else "One energy: no edge-energy or SOC volumes (3D XANES only)."
    save(fig, "tomo_slices", note, caption)


def _holo_slices(arrays, px: float, save) -> None:
    density = np.asarray(arrays["electron_density"], float)
    labels = np.asarray(arrays.get("particle_labels", np.zeros(density.shape, int)))
    n = int(labels.max())
    rows = 2 if n else 1
    fig, axes = plt.subplots(rows, 3, figsize=(13, 3.9 * rows), squeeze=False,
                             constrained_layout=True)  # fmt: skip
    # constrained layout left the first 'y' label 2 px past the left edge on some
    # shapes (e.g. 16 x 48 x 48): a wider edge pad keeps every label inside
    fig.get_layout_engine().set(w_pad=0.1)
    _slices_row(axes[0], density, "electron density (e/nm³)", px, "magma",
                sample=labels > 0 if n else None)  # fmt: skip
    if n:
        _slices_row(axes[1], labels.astype(float), "particle label", px, distinct_label_cmap(n),
                    -0.5, n + 0.5, note=f"{n} particles, one colour each")  # fmt: skip
    save(fig, "holo_slices", f"{n} particles", "" if n else "No particles labelled.")


def _holo_particles(arrays, px: float, save) -> None:
    labels = np.asarray(arrays.get("particle_labels", []))
    if labels.ndim != 3 or labels.max() == 0:
        logger.info("no labelled particles: holo_particles left out")
        return
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), constrained_layout=True)
    n = int(labels.max())
    for ax, (name, axis) in zip(axes, _VIEWS, strict=True):
        mip = labels.max(axis=axis)
        h, w = mip.shape
        im = ax.imshow(mip, cmap=distinct_label_cmap(n), vmin=-0.5, vmax=n + 0.5, origin="lower",
                       extent=(0, w * px, 0, h * px), interpolation="nearest")  # fmt: skip
        ax.set_title(f"labels, maximum projection along {'zyx'[axis]}", fontsize=9)
        ax.set_xlabel(f"{name[0]} ({UM})")
        ax.set_ylabel(f"{name[1]} ({UM})")
    plt.colorbar(im, ax=axes[-1], fraction=0.046, pad=0.04,
                 label=f"particle label\n({n} particles, one colour each)")  # fmt: skip
    save(fig, "holo_particles", "labelled NMC particles", "")


#: Colours of the size classes, the same in every panel (as in the 2-D particle report).
SIZE_COLOURS = {"small": "tab:orange", "large": "tab:blue"}


def _size_legend(ax, small_radius: float) -> None:
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=SIZE_COLOURS["small"], label=f"small (< {small_radius:g} {UM})"),
                       Patch(color=SIZE_COLOURS["large"], label="large")],
              fontsize=8)  # fmt: skip


def _scatter_fit(ax, x, y, corr: Mapping[str, Any] | None, xlabel: str, ylabel: str, what: str,
                 colours=None):  # fmt: skip
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    c = np.asarray(colours)[ok] if colours is not None else "tab:blue"
    ax.scatter(x[ok], y[ok], s=16, c=c, alpha=0.8)
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
        plt.close(fig)
        logger.info("no particle table: holo_statistics left out")
        return
    density, radius = table["electron_density_mean"], table["radius_um"]
    small = radius < small_radius
    colours = np.where(small, SIZE_COLOURS["small"], SIZE_COLOURS["large"])
    _scatter_fit(axes[0], radius, density, corr.get("density_vs_radius"),
                 f"equivalent radius ({UM})", "mean electron density (e/nm³)",
                 "E-density vs size", colours)  # fmt: skip
    groups = [density[small].dropna().to_numpy(), density[~small].dropna().to_numpy()]
    data = [g if g.size else np.array([np.nan]) for g in groups]
    boxes = axes[1].boxplot(data, patch_artist=True, medianprops={"color": "black"},
                            tick_labels=[f"small < {small_radius:g} {UM} (n={groups[0].size})",
                                         f"large (n={groups[1].size})"])  # fmt: skip
    for i, (g, colour) in enumerate(zip(groups, SIZE_COLOURS.values(), strict=True), start=1):
        boxes["boxes"][i - 1].set(facecolor=colour, alpha=0.35)
        axes[1].scatter(np.full(g.size, i) + np.linspace(-0.1, 0.1, g.size), g, s=10,
                        color=colour)  # fmt: skip
    welch = stats.get("small_vs_large", {})
    p = welch.get("p")
    axes[1].set_title("Small vs large" + (f" (Welch p = {p:.3g})" if p is not None else ""),
                      fontsize=9)  # fmt: skip
    axes[1].set_ylabel("mean electron density (e/nm³)")
    _scatter_fit(axes[2], radius, table["electron_density_std"], corr.get("std_vs_radius"),
                 f"equivalent radius ({UM})", "E-density std within particle (e/nm³)",
                 "spread vs size", colours)  # fmt: skip
    _scatter_fit(axes[3], table["depth_um"], density, corr.get("density_vs_depth"),
                 f"depth from the separator ({UM})", "mean electron density (e/nm³)",
                 "E-density vs depth", colours)  # fmt: skip
    for ax in axes:
        _size_legend(ax, small_radius)
    save(
        fig,
        "holo_statistics",
        f"{stats.get('n_particles', len(table))} particles",
        "Lines: least-squares fits; r: Pearson correlation of the particles shown.",
    )


def write_tomo_figures(
    out_dir: str | Path,
    arrays: Mapping[str, np.ndarray],
    tables: Mapping[str, pd.DataFrame],
    metadata: Mapping[str, Any],
    *,
    title: str = "",
    fmt: str = "png",
    sink: FigureSink | None = None,
    only: tuple[str, ...] | None = None,
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
    sink : FigureSink, optional
        Where the figures go instead (e.g. pages of one PDF).
    only : tuple of str, optional
        Draw only these figures (e.g. ``("holo_slices", "holo_particles")``).

    Raises
    ------
    KeyError
        If the result holds neither ``attenuation`` nor ``electron_density``.
    """
    px = float(metadata.get("pixel_size_um") or 1.0)
    sink = sink or FigureSink(out_dir, fmt)
    before = len(sink.written)

    def save(fig, name: str, note: str, caption: str = "") -> None:
        if only is not None and name not in only:
            plt.close(fig)
            return
        fig.suptitle(" - ".join(s for s in (title, note) if s))
        sink.save(fig, name, caption=caption)

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
    return sink.written[before:]
