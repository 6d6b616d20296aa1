"""The paper's conductive-network model on 3D volumes, memory-aware (Deng et al. 2025, Fig. 4).

Same definitions as :func:`~ssb_beamline.analysis.diffusion.diffusion_distance_maps`
(contacts: NMC voxels face-adjacent to SSE / carbon of the *same* particle; per
particle ``li_norm = li / max``, ``e_norm = e / max``; combined impedance =
``li_norm + e_norm`` min-max rescaled to [0, 1]; core-shell = distance to the
particle surface over its max), but built for large volumes: results are kept
only for the NMC voxels (compact 1-D arrays indexed by ``index``, the flat voxel
index), and the work runs per particle on its bounding box (one Euclidean
distance transform per contact kind).  Straight-line distances stay inside the
particle for convex particles (NMC secondary particles nearly are);
``metric="geodesic"`` uses shortest paths inside the particle
(``skimage.graph.MCP_Geometric``, 26-connected) for concave or cracked ones.

Written here rather than by calling ``diffusion_distance_maps``, which returns
seven full float32 volumes (7x the edge-energy volume); this keeps the peak at
about 2x (``benchmarks/bench_network3d.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage as ndi
from skimage.graph import MCP_Geometric

from .impedance import DEFAULT_BINS
from .network3d_bins import bin_statistics, trend_slope
from .network3d_spectra import bin_mean_spectra, bin_spectrum_edges, spectrum_edges
from .network3d_weights import (
    PRIMARY_READING,
    WEIGHTED_READINGS,
    bin_edge_errors_by_method,
    weighted_trend,
)
from .phases import Phase

__all__ = [
    "NetworkModel3D",
    "bin_spectrum_edges",
    "bin_statistics",
    "network_model_3d",
    "trend_slope",
]

logger = logging.getLogger(__name__)

#: Per-voxel arrays of :class:`NetworkModel3D` and their units.
VOXEL_UNITS = {
    "li_distance_um": "um",
    "e_distance_um": "um",
    "core_shell_um": "um",
    "combined": "1 (combined impedance, 0-1 per particle)",
    "core_shell": "1 (0 surface, 1 core)",
    "edge_energy": "eV (Ni K-edge, the NMC voxels the model used)",
}


@dataclass
class NetworkModel3D:
    """Network model of the NMC voxels (compact: one entry per NMC voxel).

    Attributes
    ----------
    shape : tuple of int
        Volume shape; ``index`` are flat indices into it (int64).
    voxel_size_um : float
        Voxel edge of the volume, µm (the distances' unit).
    index : ndarray of int64
        Flat index into ``shape`` of each NMC voxel (one entry each, ascending).
    labels : ndarray of int32
        Particle label of each entry.
    li_distance_um, e_distance_um, core_shell_um, combined, core_shell : ndarray of float32
        Per entry (NaN where the particle has no contact of that kind).
    edge_energy : ndarray of float32
        Edge energy of each entry, eV.
    bins : pandas.DataFrame
        :func:`bin_statistics` of the combined and core-shell models.
    particles : pandas.DataFrame
        Per-particle summaries indexed by label.
    metric : {"euclidean", "geodesic"}
        How the distances were measured (see the module docstring).
    slopes : dict of str to float
        Trend slopes of the ``"combined"`` and ``"core_shell"`` bins, eV per unit
        impedance (NaN when fewer than two bins hold voxels): :func:`trend_slope`,
        or with the attenuation stack the weighted line of
        :func:`~ssb_beamline.analysis.network3d_weights.weighted_trend`
        (see :func:`network_model_3d`).
    """

    shape: tuple[int, ...]
    voxel_size_um: float
    index: NDArray[np.int64]
    labels: NDArray[np.int32]
    li_distance_um: NDArray[np.float32]
    e_distance_um: NDArray[np.float32]
    core_shell_um: NDArray[np.float32]
    combined: NDArray[np.float32]
    core_shell: NDArray[np.float32]
    edge_energy: NDArray[np.float32]
    bins: pd.DataFrame
    particles: pd.DataFrame
    metric: str = "euclidean"
    slopes: dict[str, float] = field(default_factory=dict)

    def volume(self, name: str, fill: float = np.nan) -> NDArray[np.float32]:
        """A per-voxel array as a full float32 volume (``fill`` outside NMC)."""
        out = np.full(int(np.prod(self.shape)), fill, np.float32)
        out[self.index] = getattr(self, name)
        return out.reshape(self.shape)


def _pad_box(sl: tuple[slice, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(
        slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(sl, shape, strict=True)
    )


def _face_adjacent(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    out = np.zeros(mask.shape, bool)
    for ax in range(mask.ndim):
        lo = [slice(None)] * mask.ndim
        hi = [slice(None)] * mask.ndim
        lo[ax], hi[ax] = slice(0, -1), slice(1, None)
        out[tuple(lo)] |= mask[tuple(hi)]
        out[tuple(hi)] |= mask[tuple(lo)]
    return out


def _distance(target: NDArray[np.bool_], part: NDArray[np.bool_], px: float, metric: str):
    """Distance (um) from the ``part`` voxels to the nearest ``target`` voxel."""
    if metric == "euclidean":
        return ndi.distance_transform_edt(~target, sampling=px)[part]
    mcp = MCP_Geometric(np.where(part, 1.0, np.inf), fully_connected=True, sampling=(px,) * 3)
    return mcp.find_costs(np.argwhere(target))[0][part]


def _norm(d: NDArray) -> NDArray:
    """``d / max(d)``; all zeros for a constant 0 map, all NaN (no contact) kept."""
    m = d.max() if d.size else 0.0
    return d / m if m > 0 else np.where(np.isfinite(d), 0.0, np.nan)


def _particle(ph_box, lab_box, lbl, px, metric, part_slices):
    """Per-voxel li, e, cs, combined, core-shell of one particle (its padded box)."""
    part = lab_box == lbl
    out = {}
    for key, target in (("li", _face_adjacent(ph_box == Phase.SSE) & part),
                        ("e", _face_adjacent(ph_box == Phase.CARBON) & part),
                        ("cs", _face_adjacent(lab_box != lbl) & part)):  # fmt: skip
        if key == "cs":  # the volume border is no surface
            target = target & part_slices  # noqa: PLW2901
        out[key] = (_distance(target, part, px, metric) if target.any()
                    else np.full(int(part.sum()), np.nan))  # fmt: skip
    c = _norm(out["li"]) + _norm(out["e"])
    lo, hi = (np.min(c), np.max(c)) if np.isfinite(c).any() else (0.0, 0.0)
    out["combined"] = (c - lo) / (hi - lo) if hi > lo else np.where(np.isfinite(c), 0.0, np.nan)
    out["core_shell"] = _norm(out["cs"]) if np.isfinite(out["cs"]).all() else out["cs"]
    return part, out


def _check_inputs(ph: NDArray, edge: NDArray, phase_vox: float | None, vox: float) -> None:
    if ph.ndim != 3 or edge.shape != ph.shape:
        raise ValueError(
            f"phase volume has shape {ph.shape} but the edge-energy volume {edge.shape}; "
            "take the phases from a tomography run of the same field of view and grid "
            "(or resample / crop it to the XANES volume) first"
        )
    if not np.isfinite(vox) or vox <= 0:
        raise ValueError(f"voxel_size_um={vox}; pass the voxel edge in um (> 0)")
    if phase_vox is not None and not np.isclose(phase_vox, vox, rtol=1e-3):
        raise ValueError(
            f"phase volume voxel size {phase_vox} um differs from the XANES volume's "
            f"{vox} um; resample the phase volume to the XANES grid first"
        )
    if not np.issubdtype(ph.dtype, np.integer) or ph.min() < 0 or ph.max() > 3:
        raise ValueError("phases must be integer Phase codes (VOID 0, NMC 1, SSE 2, CARBON 3)")
    counts = np.bincount(ph.ravel(), minlength=4)
    for phase, why in ((Phase.NMC, "there is no particle to analyse"),
                       (Phase.SSE, "Li+ distances need NMC-SSE contacts"),
                       (Phase.CARBON, "e- distances need NMC-carbon contacts")):  # fmt: skip
        if counts[phase] == 0:
            raise ValueError(
                f"the phase volume has no {phase.name} voxel: {why}; check the segmentation "
                "(for carbon use the electron density of a holotomography run) or image a "
                "region that holds NMC, SSE and carbon"
            )


def _per_particle(ph: NDArray, lab: NDArray, px: float, metric: str) -> dict[str, NDArray]:
    """Compact per-NMC-voxel arrays, one padded bounding box per particle."""
    keys = ("li", "e", "cs", "combined", "core_shell")
    parts: dict[str, list] = {k: [] for k in (*keys, "index", "label")}
    for i, sl in enumerate(ndi.find_objects(lab)):
        if sl is None:
            continue
        box = _pad_box(sl, ph.shape)
        inner = np.zeros([s.stop - s.start for s in box], bool)  # voxels off the border
        inner[tuple(slice(1 if b.start == 0 else 0, None if b.stop < n else -1)
                    for b, n in zip(box, ph.shape, strict=True))] = True  # fmt: skip
        part, vals = _particle(ph[box], lab[box], i + 1, px, metric, inner)
        local = np.nonzero(part)
        flat = np.ravel_multi_index(tuple(ix + b.start for ix, b in zip(local, box, strict=True)),
                                    ph.shape)  # fmt: skip
        parts["index"].append(flat)
        parts["label"].append(np.full(flat.size, i + 1, np.int32))
        for k in keys:
            parts[k].append(vals[k].astype(np.float32))
    return {k: np.concatenate(v) for k, v in parts.items()}


def network_model_3d(
    phases: ArrayLike,
    edge_energy: ArrayLike,
    *,
    voxel_size_um: float,
    phase_voxel_size_um: float | None = None,
    labels: ArrayLike | None = None,
    metric: Literal["euclidean", "geodesic"] = "euclidean",
    bins=DEFAULT_BINS,
    attenuation: ArrayLike | None = None,
    energies: ArrayLike | None = None,
    resolution_kernel: ArrayLike | None = None,
) -> NetworkModel3D:
    """Li+ / e- distances, combined impedance, bins and core-shell model of a 3D volume.

    Parameters
    ----------
    phases : array_like of int, (Z, Y, X)
        ``Phase`` codes (e.g. :func:`~ssb_beamline.analysis.segmentation3d.segment_phases_3d`).
    edge_energy : array_like, (Z, Y, X)
        Ni K-edge energy per voxel (3D XANES), eV; NaN ignored in the statistics.
    voxel_size_um : float
        Voxel edge of the XANES volume, um.
    phase_voxel_size_um : float, optional
        Voxel edge of the phase volume, checked against ``voxel_size_um``.
    labels : array_like of int, optional
        Particle labels (e.g. ``segment_particles_3d``, to split touching
        particles); default: face-connected components of NMC.
    metric : {"euclidean", "geodesic"}
        See the module docstring.
    bins : sequence of float
        Impedance bin edges (the paper's five bins by default).
    attenuation, energies : array_like, (N, Z, Y, X) and (N,), optional
        The 3D XANES stack: each bin then also gets the edge energy of its mean
        spectrum (``edge_energy_spectrum``: half-step of its fitted reference
        mixture on a background line per bin; ``edge_energy_spectrum_shared``: the
        same with one background slope shared by the bins;
        ``edge_energy_spectrum_half_step``: its sampled crossing; see
        :func:`bin_spectrum_edges`) and their jackknife standard errors from their
        own voxels (``edge_energy_spectrum_se``, ``edge_energy_spectrum_shared_se``,
        eV, the readings without ``resolution_kernel``).  Without
        ``resolution_kernel`` the primary ``slopes["<model>"]`` is the ``1 / se^2``-weighted
        line of the reading ``network3d_weights.PRIMARY_READING`` (``"lcf_shared"``:
        ``slopes["<model>_shared_weighted"]``; ``slopes["<model>_weighted"]``: the
        per-bin-background one; :mod:`~ssb_beamline.analysis.network3d_weights`);
        compare it with a truth's bins weighted alike (``weighted_trend`` with
        ``sigma=`` that reading's error column).  Plain lines:
        ``["<model>_unweighted"]``, ``["<model>_shared_background"]``,
        ``["<model>_half_step"]``, ``["<model>_voxel_mean"]`` (voxels' edges).
    resolution_kernel : array_like, (k, k), optional
        In-slice point response of the reconstruction of ``attenuation``
        (:func:`~ssb_beamline.analysis.network3d_pvc.fbp_point_response`): the bins'
        mean spectra are corrected for the blur between bins and phases before
        their edges are read (:mod:`~ssb_beamline.analysis.network3d_pvc`);
        ``edge_energy_spectrum_uncorrected`` and ``slopes["<model>_uncorrected"]``
        keep the reading without the correction.

    Raises
    ------
    ValueError
        Shapes or voxel sizes differ, no NMC / SSE / carbon voxel, bad codes.

    Examples
    --------
    >>> ph = np.full((3, 3, 8), Phase.NMC, np.uint8)
    >>> ph[..., 0] = Phase.SSE; ph[..., -1] = Phase.CARBON
    >>> e = np.where(ph == Phase.NMC, 8340.0, np.nan)
    >>> m = network_model_3d(ph, e, voxel_size_um=1.0)
    >>> m.volume("li_distance_um")[1, 1, 1:7].tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    """
    ph = np.asarray(phases)
    edge = np.asarray(edge_energy)
    _check_inputs(ph, edge, phase_voxel_size_um, float(voxel_size_um))
    if metric not in ("euclidean", "geodesic"):
        raise ValueError(f"metric={metric!r}; use 'euclidean' or 'geodesic'")
    nmc = ph == Phase.NMC
    if labels is None:
        lab = ndi.label(nmc)[0]
    else:
        lab = np.asarray(labels)
        if lab.shape != ph.shape:
            raise ValueError(f"labels have shape {lab.shape}, phases {ph.shape}; pass one grid")
        lab = np.where(nmc, lab, 0)
    del nmc
    px = float(voxel_size_um)
    cat = _per_particle(ph, lab, px, metric)
    del lab  # (the full-volume labels; the results are compact)
    e_vox = edge.ravel()[cat["index"]].astype(np.float32)
    bins_df = pd.concat([
        bin_statistics(cat["combined"], e_vox, bins=bins, name="combined"),
        bin_statistics(cat["core_shell"], e_vox, bins=bins, name="core_shell"),
    ], ignore_index=True)  # fmt: skip
    slopes = {m: trend_slope(bins_df[bins_df["model"] == m]) for m in ("combined", "core_shell")}
    if resolution_kernel is not None and attenuation is None:
        raise ValueError(
            "resolution_kernel corrects the bins' mean spectra for the reconstruction's blur; "
            "pass the attenuation stack and its energies too (or drop resolution_kernel)"
        )
    if attenuation is not None:
        if energies is None:
            raise ValueError("attenuation needs its energies (eV), one per volume")
        att = np.asarray(attenuation)
        if att.ndim != 4 or att.shape[1:] != ph.shape:
            raise ValueError(
                f"attenuation has shape {att.shape}; pass the (energies, *{ph.shape}) stack "
                "the edge energies came from"
            )
        _spectrum_columns(bins_df, cat, att, energies, bins, ph, resolution_kernel)
        for m in ("combined", "core_shell"):
            sub = bins_df[bins_df["model"] == m]
            if resolution_kernel is not None:
                slopes[f"{m}_uncorrected"] = trend_slope(sub, "edge_energy_spectrum_uncorrected")
            slopes[f"{m}_voxel_mean"] = slopes[m]
            slopes[f"{m}_half_step"] = trend_slope(sub, "edge_energy_spectrum_half_step")
            slopes[f"{m}_shared_background"] = trend_slope(sub, "edge_energy_spectrum_shared")
            slopes[f"{m}_unweighted"] = trend_slope(sub, "edge_energy_spectrum")
            plain = "edge_energy_spectrum_uncorrected" if resolution_kernel is not None else (
                "edge_energy_spectrum")  # fmt: skip
            slopes[f"{m}_weighted"] = weighted_trend(sub, plain)
            col, se, _ = WEIGHTED_READINGS["lcf_shared"]
            slopes[f"{m}_shared_weighted"] = weighted_trend(sub, col, sub[se])
            primary = WEIGHTED_READINGS[PRIMARY_READING][2]
            slopes[m] = slopes[f"{m}_unweighted" if resolution_kernel is not None else
                               f"{m}_{primary}"]  # fmt: skip
    model = NetworkModel3D(
        ph.shape, px, cat["index"], cat["label"], cat["li"], cat["e"], cat["cs"],
        cat["combined"], cat["core_shell"], e_vox, bins_df,
        _particle_table(cat, e_vox, px), metric, slopes,
    )  # fmt: skip
    logger.info("3D network model: %d particles, slopes %s eV", len(model.particles), slopes)
    return model


def _spectrum_columns(bins_df, cat, att, energies, bins, ph, kernel) -> None:
    """The bins' mean-spectrum edge columns (corrected by ``kernel`` if given, and not)."""
    cols = {"edge_energy_spectrum": [], "edge_energy_spectrum_shared": [],
            "edge_energy_spectrum_half_step": []}  # fmt: skip
    if kernel is not None:
        cols["edge_energy_spectrum_uncorrected"] = []
    errs = [bin_edge_errors_by_method(cat[m], cat["index"], att, energies, bins=bins)
            for m in ("combined", "core_shell")]  # fmt: skip
    cols["edge_energy_spectrum_se"] = [e["lcf"] for e in errs]
    cols["edge_energy_spectrum_shared_se"] = [e["lcf_shared"] for e in errs]
    for m in ("combined", "core_shell"):
        spectra = bin_mean_spectra(cat[m], cat["index"], att, bins=bins, phases=ph, kernel=kernel)
        for col, method in zip(cols, ("lcf", "lcf_shared", "half_step"), strict=False):
            cols[col].append(spectrum_edges(*spectra, energies, method))
        if kernel is not None:
            plain = bin_mean_spectra(cat[m], cat["index"], att, bins=bins)
            cols["edge_energy_spectrum_uncorrected"].append(spectrum_edges(*plain, energies))
    for col, parts in cols.items():
        bins_df[col] = np.concatenate(parts)


def _particle_table(cat: dict[str, NDArray], e_vox: NDArray, px: float) -> pd.DataFrame:
    """Per-particle summaries (vectorised with bincount)."""
    lab = cat["label"]
    n_lab = int(lab.max()) + 1 if lab.size else 1
    count = np.bincount(lab, minlength=n_lab)
    present = np.flatnonzero(count)
    cols: dict[str, NDArray] = {"n_voxels": count[present]}
    cols["volume_um3"] = count[present] * px**3
    cols["radius_um"] = (3 * cols["volume_um3"] / (4 * np.pi)) ** (1 / 3)

    def mean_of(v: NDArray) -> NDArray:
        ok = np.isfinite(v)
        s = np.bincount(lab[ok], v[ok].astype(np.float64), minlength=n_lab)
        c = np.bincount(lab[ok], minlength=n_lab)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (s / c)[present]

    for name, v in (("li_distance_um", cat["li"]), ("e_distance_um", cat["e"]),
                    ("combined", cat["combined"]), ("edge_energy", e_vox)):  # fmt: skip
        cols[f"{name}_mean"] = mean_of(v)
    ref = np.nanmedian(e_vox) if np.isfinite(e_vox).any() else 0.0
    cols["edge_energy_std"] = np.sqrt(np.maximum(
        mean_of((e_vox - ref) ** 2) - (cols["edge_energy_mean"] - ref) ** 2, 0))  # fmt: skip
    cols["has_li_contact"] = np.isfinite(cols["li_distance_um_mean"])
    cols["has_e_contact"] = np.isfinite(cols["e_distance_um_mean"])
    return pd.DataFrame(cols, index=pd.Index(present, name="label"))
