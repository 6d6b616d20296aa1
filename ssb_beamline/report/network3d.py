"""The 3D conductive-network figure (paper Figs. 3-4): slices, (e-, Li+) histogram, bins.

One figure, three rows: orthogonal slices (XY, XZ, YZ through the centre, or a
given voxel) of the phase volume (categorical, with a legend) and of the Ni K-edge
energy (colour bar, eV), then the 2D histogram of (e-, Li+) diffusion distances
(um, colour bar: voxel count) and the edge energy per combined-impedance bin for
the combined and core-shell models with the paper's error bar (FWHM / 10).
Axes in um throughout.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.patches import Patch

from .pages import FigureSink

if TYPE_CHECKING:  # annotations only: pandas costs `show` ~0.5-1.6 s to import
    import pandas as pd

__all__ = [
    "PHASE_COLOURS",
    "is_network3d_result",
    "network3d_figure",
    "write_network3d_figure",
    "write_network3d_result_figures",
]

logger = logging.getLogger(__name__)

#: Pore, NMC, SSE, carbon.
PHASE_COLOURS = ("#202020", "#d62728", "#1f77b4", "#bcbd22")
PHASE_NAMES = ("pore", "NMC", "SSE", "carbon")
_PLANES = (("XY", 0, ("x", "y")), ("XZ", 1, ("x", "z")), ("YZ", 2, ("y", "z")))


def _slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    return np.take(volume, index, axis=axis)


def _extent(shape: Sequence[int], axis: int, vox: float) -> list[float]:
    dims = [d for i, d in enumerate(shape) if i != axis]  # (rows, cols)
    return [0.0, dims[1] * vox, dims[0] * vox, 0.0]


def _slices(axes, volume, centre, vox, *, phases: bool, label: str) -> None:
    cmap = ListedColormap(PHASE_COLOURS) if phases else "viridis"
    norm = BoundaryNorm(np.arange(-0.5, 4.5), 4) if phases else None
    finite = volume[np.isfinite(volume)] if not phases else None
    vmin, vmax = (np.percentile(finite, [1, 99]) if finite is not None and finite.size
                  else (None, None))  # fmt: skip
    for ax, (name, axis, (xl, yl)) in zip(axes, _PLANES, strict=True):
        opts = {} if phases else {"vmin": vmin, "vmax": vmax}
        opts["extent"] = _extent(volume.shape, axis, vox)
        image = _slice(volume, axis, centre[axis])
        im = ax.imshow(image, cmap=cmap, norm=norm, interpolation="nearest", **opts)
        ax.set_title(f"{label}, {name} slice {centre[axis]}")
        ax.set_xlabel(f"{xl} (µm)")
        ax.set_ylabel(f"{yl} (µm)")
        if not phases:
            plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="edge energy (eV)")
    if phases:
        handles = [Patch(color=c, label=n) for c, n in zip(PHASE_COLOURS, PHASE_NAMES, strict=True)]
        axes[-1].legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.8)


def _histogram(ax, e_um: np.ndarray, li_um: np.ndarray) -> None:
    ok = np.isfinite(e_um) & np.isfinite(li_um)
    if not ok.any():
        ax.text(0.5, 0.5, "no voxel with both distances", ha="center", transform=ax.transAxes)
        return
    h, xe, ye = np.histogram2d(e_um[ok], li_um[ok], bins=24)
    im = ax.pcolormesh(xe, ye, h.T, cmap="magma")
    plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="NMC voxels")
    ax.set_xlabel("e- diffusion distance (µm)")
    ax.set_ylabel("Li+ diffusion distance (µm)")
    ax.set_title("(e-, Li+) distances of NMC voxels")


def _joint_map(ax, e_um: np.ndarray, li_um: np.ndarray, edge: np.ndarray) -> None:
    """Mean edge energy over (e-, Li+) distance bins (paper Fig. 4f)."""
    ok = np.isfinite(e_um) & np.isfinite(li_um) & np.isfinite(edge)
    if not ok.any():
        ax.set_axis_off()
        return
    n, xe, ye = np.histogram2d(e_um[ok], li_um[ok], bins=12)
    s, _, _ = np.histogram2d(e_um[ok], li_um[ok], bins=(xe, ye), weights=edge[ok])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n >= 5, s / n, np.nan)
    im = ax.pcolormesh(xe, ye, mean.T, cmap="viridis")
    plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="mean edge energy (eV)")
    ax.set_xlabel("e- diffusion distance (µm)")
    ax.set_ylabel("Li+ diffusion distance (µm)")
    ax.set_title("edge energy over (e-, Li+) distances")


def _bins(ax, bins: pd.DataFrame) -> None:
    for model, marker, colour in (("combined", "o", "C3"), ("core_shell", "s", "C0")):
        b = bins[(bins["model"] == model) & (bins["count"] > 0)]
        x = 0.5 * (b["bin_lo"] + b["bin_hi"])
        ax.errorbar(x, b["edge_energy_mean"], yerr=b["error_bar"], marker=marker, color=colour,
                    capsize=3, label=model.replace("_", "-") + " model")  # fmt: skip
    ax.set_xlabel("impedance bin (normalised)")
    ax.set_ylabel("Ni K-edge energy (eV)")
    ax.set_title("edge energy per impedance bin (error: FWHM/10)")
    ax.legend(loc="best", fontsize="small")


def network3d_figure(
    phases: np.ndarray,
    edge_energy: np.ndarray,
    bins: pd.DataFrame,
    e_distance_um: np.ndarray,
    li_distance_um: np.ndarray,
    *,
    voxel_size_um: float,
    centre: Sequence[int] | None = None,
    edge_per_voxel: np.ndarray | None = None,
    title: str = "",
):
    """The network figure as an open matplotlib figure (see :func:`write_network3d_figure`)."""
    phases, edge = np.asarray(phases), np.asarray(edge_energy, dtype=float)
    centre = tuple(int(c) for c in (centre or [s // 2 for s in phases.shape]))
    fig, axes = plt.subplots(3, 3, figsize=(15, 14), layout="constrained")
    _slices(axes[0], phases, centre, voxel_size_um, phases=True, label="phases")
    _slices(axes[1], edge, centre, voxel_size_um, phases=False, label="edge energy")
    _histogram(axes[2, 0], np.ravel(e_distance_um), np.ravel(li_distance_um))
    _bins(axes[2, 1], bins)
    if edge_per_voxel is None:
        axes[2, 2].set_axis_off()
    else:
        _joint_map(axes[2, 2], np.ravel(e_distance_um), np.ravel(li_distance_um),
                   np.ravel(edge_per_voxel).astype(float))  # fmt: skip
    if title:
        fig.suptitle(title)
    return fig


def write_network3d_figure(
    path: str | Path,
    phases: np.ndarray,
    edge_energy: np.ndarray,
    bins: pd.DataFrame,
    e_distance_um: np.ndarray,
    li_distance_um: np.ndarray,
    *,
    voxel_size_um: float,
    centre: Sequence[int] | None = None,
    edge_per_voxel: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """Write the network figure (PNG / PDF by suffix) and return its path.

    Parameters
    ----------
    path : path of the file to write (parents are created)
    phases, edge_energy : (Z, Y, X) phase codes and edge energy (eV, NaN outside NMC)
    bins : the ``impedance_bins`` table (``NetworkModel3D.bins``)
    e_distance_um, li_distance_um : per-NMC-voxel distances (any shape; NaN ignored)
    voxel_size_um : voxel edge, um (axes)
    centre : voxel (z, y, x) the slices go through (default: the volume's centre)
    edge_per_voxel : edge energy of the same voxels as the distances; adds the
        mean-edge-energy map over (e-, Li+) bins (paper Fig. 4f)
    title : figure title
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig = network3d_figure(
        phases, edge_energy, bins, e_distance_um, li_distance_um, voxel_size_um=voxel_size_um,
        centre=centre, edge_per_voxel=edge_per_voxel, title=title,
    )  # fmt: skip
    fig.savefig(out, dpi=80)
    plt.close(fig)
    logger.info("wrote %s", out)
    return out


def is_network3d_result(metadata: Mapping[str, Any]) -> bool:
    """Whether a stored result's metadata are those of a 3D network model."""
    return metadata.get("kind") == "network3d"


def write_network3d_result_figures(
    folder: str | Path, result: Any, *, title: str = "", fmt: str = "png",
    sink: FigureSink | None = None,
) -> list[Path]:  # fmt: skip
    """The network figure of a stored result (``read_results`` of a network version).

    Parameters
    ----------
    folder : path
        Where ``network3d.<fmt>`` is written (unless ``sink`` is given).
    result : StoredResults
        A network result read from tiled: arrays ``phases``, ``network_*``
        distances (and ``network_edge_energy`` since it is stored), table
        ``impedance_bins``, metadata ``voxel_size_um``.
    title, fmt : str
        Figure title; file format ("png" or "pdf").
    sink : FigureSink, optional
        Hand the figure to this sink instead (pages of a PDF report).

    Returns
    -------
    list of Path
        The files written (none when the figure became a page of ``sink``'s PDF).

    Raises
    ------
    ValueError
        The result is not a 3D network model, or lacks what the figure needs.
    """
    arrays, md = result.arrays, result.metadata
    need = ("phases", "network_e_distance_um", "network_li_distance_um")
    missing = [k for k in need if k not in arrays] + [
        k for k in ("impedance_bins",) if k not in result.tables
    ]
    if not is_network3d_result(md) or missing or not md.get("voxel_size_um"):
        raise ValueError(
            f"result {getattr(result, 'version', '?')} is not a complete 3D network model "
            f"(kind {md.get('kind')!r}, missing {missing or 'voxel_size_um'}); pick the "
            "version written by the network analysis (`ssb-beamline runs` lists them) or "
            "replay the 3D XANES run with the network model"
        )
    phases = np.asarray(arrays["phases"])
    edge = arrays.get("network_edge_energy")
    edge = np.full(phases.shape, np.nan) if edge is None else np.asarray(edge, float)
    caption = "" if "network_edge_energy" in arrays else "edge energy not stored with this result"
    fig = network3d_figure(
        phases, edge, result.tables["impedance_bins"], np.asarray(arrays["network_e_distance_um"]),
        np.asarray(arrays["network_li_distance_um"]), voxel_size_um=float(md["voxel_size_um"]),
        edge_per_voxel=edge if "network_edge_energy" in arrays else None, title=title,
    )  # fmt: skip
    out = sink or FigureSink(folder, fmt)
    out.save(fig, "network3d", caption=caption)
    return out.written
