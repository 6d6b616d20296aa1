"""Particle statistics and the conductive-network model of one XANES field of view.

From the maps of a run (``edge_step``, ``soc``, ``edge_energy``, ``mask``) and its
absorbance stack, :func:`particle_statistics`

1. segments the NMC particles on the edge-step map (the Ni K-edge jump, i.e. the
   projected Ni thickness; ``threshold="triangle"`` by default, which keeps the
   thin rims of projected spheres that Otsu cuts off);
2. re-analyses particle pixels outside the XANES edge-jump mask with the run's
   own references (``fill_particles``), so every particle has a SOC;
3. builds the per-particle table (size, SOC mean/std, edge energy, charge
   polarisation, size class, depth from ``separator_y_um``) and the size
   statistics (Pearson r, small vs large);
4. builds the phase map (NMC = the particles; SSE from the below-edge absorbance,
   see :mod:`.phase_map`) or takes a given one, then the diffusion-distance maps,
   the impedance bins (combined and core-shell models) and the 2D (e-, Li+) map.

Everything it cannot compute is reported in the metadata with the reason (e.g.
``"e": "phase map has no CARBON pixels"``), never as inf or a crash.  The live
adapter is :class:`ssb_beamline.callbacks.particles_live.ParticleStatistics`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from skimage.segmentation import expand_labels

from .diffusion import DiffusionMaps, diffusion_distance_maps, distance_map_2d, impedance_bins
from .particles import particle_table, segment_particles, size_statistics
from .phase_map import BelowEdgeImage, phases_from_absorbance
from .phases import Phase
from .pipeline import analyse_xanes_stack

__all__ = ["FORMULAS", "UNITS", "ParticleOptions", "ParticleResult", "particle_statistics"]

logger = logging.getLogger(__name__)

#: Units of the arrays this post-processor publishes.
UNITS = {
    "particle_labels": "label (0 = background)",
    "particle_soc": "fraction Ni3+ (state of charge), particle pixels",
    "particle_edge_energy": "eV, particle pixels",
    "phases": "Phase code (0 void, 1 NMC, 2 SSE, 3 carbon)",
    "li_distance_um": "um",
    "e_distance_um": "um",
    "combined_impedance": "normalised (0-1)",
    "core_shell": "normalised (0 surface - 1 core)",
    "distance_map_2d": "eV (mean edge energy; rows e- bins, columns Li+ bins)",
}

#: How the published quantities are defined (stored with every result).
FORMULAS = {
    "radius_um": "sqrt(area_um2 / pi) (equivalent circle)",
    "polarization_um": "|SOC-weighted centroid - geometric centroid| over the particle's "
    "valid pixels",
    "polarization_rel": "polarization_um / radius_um",
    "size_class": "small if radius_um < size_threshold_um else large",
    "depth_um": "|centroid_y_um - separator_y_um|",
    "li_distance_um": "distance inside the particle to the nearest NMC-SSE contact pixel",
    "e_distance_um": "distance inside the particle to the nearest NMC-carbon contact pixel",
    "combined_impedance": "li/max_particle(li) + e/max_particle(e), min-max rescaled to "
    "[0, 1] per particle",
    "core_shell": "distance to the particle surface / its per-particle max",
    "error_bar": "FWHM / 10 of the edge energies in a bin (FWHM = 2.355 std)",
    "trend_slope_ev": "least-squares slope of the bin mean edge energy against the bin "
    "centre (eV per unit impedance)",
}


@dataclass(frozen=True)
class ParticleOptions:
    """Options of :func:`particle_statistics`.

    Parameters
    ----------
    threshold : float or {"triangle", "otsu", "li"}
        Foreground threshold of the edge-step map (see
        :func:`~ssb_beamline.analysis.segment_particles`).
    min_radius_um : float
        Smallest particle kept (debris below it is dropped).
    size_threshold_um : float
        Radius separating small from large particles.
    carbon_from_absorbance : bool
        Try to find carbon in the below-edge absorbance too (only meaningful when
        carbon is thick enough to be resolved; see :mod:`.phase_map`).
    fill_particles : bool
        Analyse the particle pixels outside the XANES edge-jump mask (thin rims,
        small particles) so that every particle gets SOC statistics.
    """

    threshold: float | str = "triangle"
    min_radius_um: float = 0.3
    size_threshold_um: float = 1.0
    carbon_from_absorbance: bool = False
    fill_particles: bool = True


@dataclass
class ParticleResult:
    """Arrays (with their units), tables and metadata of :func:`particle_statistics`.

    Attributes
    ----------
    arrays : dict of str to numpy.ndarray
        Per-pixel maps by key (labels, distances, ...); empty by default.
    units : dict of str to str
        Unit of each array of ``arrays`` (from :data:`UNITS`), e.g. ``"um"``.
    tables : dict of str to pandas.DataFrame
        Per-particle tables (one row per particle).
    metadata : dict
        Settings and summary numbers of the run (JSON-safe).
    """

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def add(self, key: str, array: np.ndarray) -> None:
        """Keep ``array`` under ``key`` with its unit from :data:`UNITS`."""
        self.arrays[key] = array
        self.units[key] = UNITS[key]


def _trend_slope(bins: pd.DataFrame, model: str) -> float | None:
    rows = bins[(bins["model"] == model) & (bins["count"] > 0)]
    if len(rows) < 2:
        return None
    centre = 0.5 * (rows["bin_lo"] + rows["bin_hi"]).to_numpy(float)
    return float(np.polyfit(centre, rows["edge_energy_mean"].to_numpy(float), 1)[0])


def _check_grids(maps: Mapping[str, np.ndarray], absorbance: np.ndarray) -> tuple[int, ...]:
    shape = np.shape(maps["edge_step"])
    for key in ("soc", "edge_energy", "mask"):
        if key in maps and np.shape(maps[key]) != shape:
            raise ValueError(
                f"map {key!r} has shape {np.shape(maps[key])} but edge_step has {shape}; "
                "all maps of a run must share the pixel grid"
            )
    if absorbance.shape[-2:] != shape:
        raise ValueError(
            f"absorbance frames have shape {absorbance.shape[-2:]} but the maps "
            f"have {shape}; pass the stack the maps were computed from"
        )
    return shape


def _segment(edge_step, mask, px: float, opts: ParticleOptions, md: dict) -> np.ndarray:
    finite = np.isfinite(edge_step)
    if not finite.any() or np.ptp(edge_step[finite]) == 0:
        md["reason"] = "the edge-step map has no finite, non-constant pixels (empty run?)"
        return np.zeros(edge_step.shape, np.int32)
    if not mask.any():
        md["reason"] = "the edge-jump mask is empty: no Ni-bearing pixel in the field"
        return np.zeros(edge_step.shape, np.int32)
    return segment_particles(
        np.where(finite, edge_step, np.nan),
        pixel_size_um=px,
        threshold=opts.threshold,
        min_radius_um=opts.min_radius_um,
    )


def fill_rims(
    soc: np.ndarray,
    edge: np.ndarray,
    labels: np.ndarray,
    absorbance: np.ndarray,
    energies: np.ndarray,
    references: object = None,
    md: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """SOC and edge energy of particle pixels outside the XANES edge-jump mask.

    The XANES mask (Otsu on the edge step) drops thin rims and whole small
    particles; their pixels are analysed here with the same pipeline
    (:func:`~ssb_beamline.analysis.analyse_xanes_stack` with ``mask=`` the
    particles and the references the run was analysed with; None: the shipped
    ones), so every particle has a SOC.
    """
    md = {} if md is None else md
    missing = (labels > 0) & ~(np.isfinite(soc) & np.isfinite(edge))
    md["pixels_reanalysed"] = int(missing.sum())
    if not missing.any():
        return soc, edge
    sub = np.asarray(absorbance)[:, missing][:, None, :]
    try:
        maps = analyse_xanes_stack(sub, energies, references, mask=np.ones(sub.shape[1:], bool))
    except ValueError as exc:
        md["reanalysis_failed"] = str(exc)
        logger.warning("particle pixels outside the XANES mask not re-analysed: %s", exc)
        return soc, edge
    soc, edge = soc.copy(), edge.copy()
    soc[missing] = maps.soc[0]
    edge[missing] = maps.edge_energy[0]
    return soc, edge


def _grow_phases(phases: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The particles are the NMC: labels grown over the phase map's NMC, and that map.

    Grows the labels over the NMC pixels of the phase map (rims below the
    segmentation threshold) so contacts sit on the labels; unlabelled NMC
    (debris) becomes void. Without NMC outside the labels (always so for a phase map
    from the absorbance, whose NMC is the labels) the grown labels are the labels,
    and their distance transform over the whole field (~17 ms at 512 x 512) is skipped.
    """
    nmc = (phases == Phase.NMC) | (labels > 0)
    if (nmc & (labels == 0)).any():
        grown = np.where(nmc, expand_labels(labels, distance=3), 0).astype(np.int32)
    else:  # expand_labels keeps every labelled pixel's label
        grown = labels.astype(np.int32)
    phases = phases.copy()
    phases[grown > 0] = Phase.NMC
    phases[(phases == Phase.NMC) & (grown == 0)] = Phase.VOID
    return phases, grown


def _network(result: ParticleResult, phases, info, labels, edge_v, px) -> dict[str, Any]:
    """Diffusion-distance maps, impedance bins and the 2D map; their metadata."""
    phases, grown = _grow_phases(phases, labels)
    result.add("phases", phases)
    counts = np.bincount(phases.ravel(), minlength=4)[:4] / phases.size
    info["fractions"] = {p.name.lower(): float(counts[p]) for p in Phase}
    maps = diffusion_distance_maps(phases, pixel_size_um=px, labels=grown)
    out: dict[str, Any] = {
        "phases": info,
        "unavailable": dict(maps.unavailable),
        "metric": maps.metric,
        "normalize": maps.normalize,
        "no_li_contact": maps.no_li_contact,
        "no_e_contact": maps.no_e_contact,
    }
    for key, array in (
        ("li_distance_um", maps.li_distance_um),
        ("e_distance_um", maps.e_distance_um),
        ("combined_impedance", maps.combined),
        ("core_shell", maps.core_shell),
    ):
        if array is not None:
            result.add(key, array)
    out.update(_bins(result, maps, edge_v))
    return out


def _bins(result: ParticleResult, maps: DiffusionMaps, edge: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if maps.combined is not None:
        bins = impedance_bins(maps.combined, edge, core_shell=maps.core_shell)
    else:  # the core-shell model needs no contacts
        bins = impedance_bins(maps.core_shell, edge).assign(model="core_shell")
    result.tables["impedance_bins"] = bins
    out["trend_slope_ev"] = {m: _trend_slope(bins, m) for m in ("combined", "core_shell")}
    if maps.li_norm is None or maps.e_norm is None:
        out["unavailable_2d"] = "needs both the Li+ and the e- distance maps"
        return out
    try:
        d2 = distance_map_2d(maps.e_norm, maps.li_norm, edge)
    except ValueError as exc:
        out["unavailable_2d"] = str(exc)
    else:
        result.add("distance_map_2d", d2.mean)
        out["distance_map_2d"] = {"e_edges": d2.e_edges, "li_edges": d2.li_edges, "count": d2.count}
    return out


def particle_statistics(
    maps: Mapping[str, np.ndarray],
    absorbance: np.ndarray,
    energies: np.ndarray,
    *,
    pixel_size_um: float,
    separator_y_um: float | None = None,
    references: object = None,
    phase_source: Callable[[], np.ndarray | None] | None = None,
    options: ParticleOptions | None = None,
    below_edge: BelowEdgeImage | None = None,
) -> ParticleResult:
    """Particle table, size statistics and diffusion-distance model of one field.

    Parameters
    ----------
    maps : mapping of str to ndarray
        ``edge_step``, ``soc``, ``edge_energy`` and optionally ``mask`` (H, W).
    absorbance : ndarray, (N, H, W)
        The absorbance frames the maps were computed from.
    energies : ndarray, (N,)
        Their energies, eV.
    pixel_size_um : float
        Pixel size, um.
    separator_y_um : float, optional
        Row position of the separator, for the particles' depth.
    references : optional
        The references the maps were analysed with (re-used for the rims).
    phase_source : callable, optional
        ``phase_source() -> phase map or None`` (Phase codes, same grid); default
        (or None returned): segmented from the absorbance.
    options : ParticleOptions, optional
        Segmentation and statistics options.
    below_edge : BelowEdgeImage, optional
        :func:`~ssb_beamline.analysis.phase_map.below_edge_image` of ``absorbance``,
        made beforehand (e.g. while the scan ran): the same results, sooner.

    Returns
    -------
    ParticleResult
        ``metadata`` is not yet JSON-safe (numpy values).
    """
    opts = options or ParticleOptions()
    absorbance = np.asarray(absorbance)
    shape = _check_grids(maps, absorbance)
    edge_step, soc, edge = (np.asarray(maps[k], float) for k in ("edge_step", "soc", "edge_energy"))
    mask = np.asarray(maps.get("mask", np.ones(shape, bool)), bool)
    px = float(pixel_size_um)
    result = ParticleResult()
    md = result.metadata
    md.update(pixel_size_um=px, formulas=FORMULAS, segmentation={
        "image": "edge_step", "threshold": opts.threshold, "min_radius_um": opts.min_radius_um,
    })  # fmt: skip
    labels = _segment(edge_step, mask, px, opts, md)
    result.add("particle_labels", labels)
    md["n_particles"] = int(labels.max())
    if md["n_particles"] == 0:
        md["reason"] = md.get("reason") or "no particle found in the edge-step map"
        return result
    if opts.fill_particles:
        soc, edge = fill_rims(soc, edge, labels, absorbance, energies, references, md)
    else:
        md["pixels_reanalysed"] = int(
            ((labels > 0) & ~(np.isfinite(soc) & np.isfinite(edge))).sum()
        )
    inside = labels > 0
    result.add("particle_soc", np.where(inside, soc, np.nan).astype(np.float32))
    result.add("particle_edge_energy", np.where(inside, edge, np.nan).astype(np.float32))
    valid = np.isfinite(soc) & np.isfinite(edge)
    table = particle_table(
        labels, np.where(valid, soc, np.nan), pixel_size_um=px,
        edge_energy=np.where(valid, edge, np.nan), separator_y_um=separator_y_um,
        size_threshold_um=opts.size_threshold_um,
    )  # fmt: skip
    result.tables["particles"] = table
    md["statistics"] = size_statistics(table)
    md["statistics"]["size_threshold_um"] = opts.size_threshold_um
    phases, info = _phase_map(labels, absorbance, energies, phase_source, opts, below_edge)
    if phases is None:
        md["diffusion"] = {
            "phases": info,
            "unavailable": {"all": info.get("reason", "no phase map")},
        }
    else:
        md["diffusion"] = _network(result, phases, info, labels, np.where(valid, edge, np.nan), px)
    return result


def _phase_map(labels, absorbance, energies, phase_source, opts: ParticleOptions, below_edge):
    """Phase map with NMC where the particles are, and how it was made."""
    if phase_source is not None:
        phases = phase_source()
        if phases is not None:
            phases = np.asarray(phases)
            if phases.shape != labels.shape:
                raise ValueError(
                    f"phase_source gave shape {phases.shape}, the maps have {labels.shape}"
                )
            return phases.astype(np.uint8), {"source": "phase_source",
                                             **getattr(phase_source, "info", {})}  # fmt: skip
    return phases_from_absorbance(
        absorbance, energies, labels, carbon=opts.carbon_from_absorbance, below_edge=below_edge
    )
