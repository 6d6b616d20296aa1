"""PNG/PDF figures of XANES maps: SOC, edge energy, pixel spectra, truth comparison."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np

logger = logging.getLogger(__name__)


def _imshow(ax, image, title, cmap, label, vmin=None, vmax=None):
    im = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_title(title)
    ax.set_axis_off()
    plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=label)


def _pick_pixels(mask: np.ndarray, soc: np.ndarray, n: int) -> list[tuple[int, int]]:
    """Pixels inside the mask spread over the SOC range (low, middle, high)."""
    ys, xs = np.nonzero(mask & np.isfinite(soc))
    if ys.size == 0:
        return []
    order = np.argsort(soc[ys, xs])
    picks = order[np.linspace(0, order.size - 1, n).round().astype(int)]
    return [(int(ys[i]), int(xs[i])) for i in picks]


def write_xanes_figures(
    out_dir: str | Path,
    arrays: Mapping[str, np.ndarray],
    *,
    references: Sequence | None = None,
    truth: Mapping[str, np.ndarray] | None = None,
    title: str = "",
    fmt: str = "png",
) -> list[Path]:
    """Write the figures of one XANES result; returns the files written.

    ``arrays`` holds at least ``soc``, ``edge_energy`` and ``mask``; with
    ``normalized`` and ``energies`` a figure of pixel spectra is drawn too (with
    ``references``, objects with ``name``, ``energy_ev``, ``mu_norm``). With
    ``truth`` (``soc``, ``edge_energy``), the truth is drawn beside the result.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    soc = np.asarray(arrays["soc"], dtype=float)
    edge = np.asarray(arrays["edge_energy"], dtype=float)
    mask = np.asarray(arrays["mask"], dtype=bool)
    soc_shown = np.where(mask, soc, np.nan)
    edge_shown = np.where(mask, edge, np.nan)
    finite_edge = edge_shown[np.isfinite(edge_shown)]
    e_lo, e_hi = np.percentile(finite_edge, [1, 99]) if finite_edge.size else (None, None)
    written: list[Path] = []

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), constrained_layout=True)
    _imshow(axes[0], soc_shown, "State of charge (Ni3+ fraction)", "viridis", "SOC", 0, 1)
    _imshow(axes[1], edge_shown, "Ni K-edge energy (half step)", "magma", "eV", e_lo, e_hi)
    fig.suptitle(title)
    written.append(out / f"maps.{fmt}")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    if "normalized" in arrays and "energies" in arrays:
        norm = np.asarray(arrays["normalized"])
        energies = np.asarray(arrays["energies"])
        fig, ax = plt.subplots(figsize=(7, 4.8), constrained_layout=True)
        for ref in references or ():
            ax.plot(ref.energy_ev, ref.mu_norm, lw=2.5, alpha=0.5, label=f"reference {ref.name}")
        for y, x in _pick_pixels(mask, soc_shown, 4):
            ax.plot(energies, norm[:, y, x], "o-", ms=3, lw=1,
                    label=f"pixel ({y},{x}) SOC {soc_shown[y, x]:.2f}")  # fmt: skip
        ax.set_xlim(energies[0], energies[-1])
        ax.set_xlabel("Energy (eV)")
        ax.set_ylabel("Normalised absorbance")
        ax.set_title("Pixel spectra and Ni reference spectra")
        ax.legend(fontsize=8)
        written.append(out / f"spectra.{fmt}")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

    if truth is not None:
        fig, axes = plt.subplots(2, 2, figsize=(11, 9), constrained_layout=True)
        t_soc = np.asarray(truth["soc"], dtype=float)
        t_edge = np.asarray(truth["edge_energy"], dtype=float)
        _imshow(axes[0, 0], t_soc, "Truth: SOC", "viridis", "SOC", 0, 1)
        _imshow(axes[0, 1], soc_shown, "Recovered: SOC", "viridis", "SOC", 0, 1)
        _imshow(axes[1, 0], t_edge, "Truth: edge energy", "magma", "eV", e_lo, e_hi)
        _imshow(axes[1, 1], edge_shown, "Recovered: edge energy", "magma", "eV", e_lo, e_hi)
        fig.suptitle(title or "Recovered maps against the phantom's truth")
        written.append(out / f"truth_vs_result.{fmt}")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    for path in written:
        logger.info("wrote %s", path)
    return written
