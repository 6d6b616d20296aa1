"""Particle statistics and the conductive-network model, live at the end of a XANES run.

:class:`ParticleStatistics` is a post-processor of
:class:`~ssb_beamline.callbacks.xanes_live.XanesLiveAnalysis`: from the maps of a
run (``edge_step``, ``soc``, ``edge_energy``, ``mask``) and its absorbance stack it

1. segments the NMC particles on the edge-step map (the Ni K-edge jump, i.e. the
   projected Ni thickness; ``threshold="triangle"`` by default, which keeps the
   thin rims of projected spheres that Otsu cuts off);
2. builds the per-particle table (size, SOC mean/std, edge energy, charge
   polarisation, size class, depth from ``separator_y_um`` when the start
   document gives it) and the size statistics (Pearson r, small vs large);
3. builds the phase map (NMC = the particles; SSE from the below-edge absorbance,
   see :mod:`.phase_map`) or takes one from ``phase_source`` (e.g. a co-registered
   nano-tomography segmentation), then the diffusion-distance maps, the
   impedance bins (combined and core-shell models) and the 2D (e-, Li+) map.

Everything it cannot compute is reported in the metadata with the reason (e.g.
``"e": "phase map has no CARBON pixels"``), never as inf or a crash.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from skimage.segmentation import expand_labels

from ssb_beamline._jsonable import jsonable as json_safe
from ssb_beamline.analysis import analyse_xanes_stack
from ssb_beamline.analysis.diffusion import (
    DiffusionMaps,
    diffusion_distance_maps,
    distance_map_2d,
    impedance_bins,
)
from ssb_beamline.analysis.particles import particle_table, segment_particles, size_statistics
from ssb_beamline.analysis.phases import Phase
from ssb_beamline.reference_data import ni_k_edge_references

from .phase_map import phases_from_absorbance
from .xanes_live import MapContext, PostResult

__all__ = ["FORMULAS", "ParticleStatistics", "json_safe"]

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


def _pixel_size(start: Mapping[str, Any]) -> float:
    px = start.get("pixel_size_um")
    if px is None and isinstance(start.get("optics"), Mapping):
        px = start["optics"].get("pixel_size_um")
    if px is None:
        raise ValueError(
            "the start document has no pixel_size_um; xanes_scan(optics={'pixel_size_um': ...}) "
            "records it, and particle sizes need it"
        )
    return float(px)


def _separator(start: Mapping[str, Any]) -> float | None:
    sample = start.get("sample")
    value = start.get("separator_y_um")
    if value is None and isinstance(sample, Mapping):
        value = sample.get("separator_y_um")
    return None if value is None else float(value)


def _trend_slope(bins: pd.DataFrame, model: str) -> float | None:
    rows = bins[(bins["model"] == model) & (bins["count"] > 0)]
    if len(rows) < 2:
        return None
    centre = 0.5 * (rows["bin_lo"] + rows["bin_hi"]).to_numpy(float)
    return float(np.polyfit(centre, rows["edge_energy_mean"].to_numpy(float), 1)[0])


@dataclass
class ParticleStatistics:
    """Post-processor: particle table, size statistics and diffusion-distance model.

    Parameters
    ----------
    threshold : float or {"triangle", "otsu", "li"}
        Foreground threshold of the edge-step map (see
        :func:`~ssb_beamline.analysis.segment_particles`).
    min_radius_um : float
        Smallest particle kept (debris below it is dropped).
    size_threshold_um : float
        Radius separating small from large particles.
    phase_source : callable, optional
        ``phase_source(context) -> phase map or None``: a phase map with
        :class:`~ssb_beamline.analysis.phases.Phase` codes on the same pixel grid
        (e.g. from nano-tomography). Default: segmented from the absorbance.
    carbon_from_absorbance : bool
        Try to find carbon in the below-edge absorbance too (only meaningful when
        carbon is thick enough to be resolved; see :mod:`.phase_map`).
    fill_particles : bool
        Analyse the particle pixels outside the XANES edge-jump mask (thin rims,
        small particles) so that every particle gets SOC statistics.
    name : str
        Key of the metadata of this post-processor.
    """

    threshold: float | str = "triangle"
    min_radius_um: float = 0.3
    size_threshold_um: float = 1.0
    phase_source: Callable[[MapContext], np.ndarray | None] | None = None
    carbon_from_absorbance: bool = False
    fill_particles: bool = True
    name: str = "particles"

    def __call__(self, maps: Mapping[str, np.ndarray], context: MapContext) -> PostResult:
        t0 = time.perf_counter()
        px = _pixel_size(context.start)
        edge_step, soc, edge = (
            np.asarray(maps[k], float) for k in ("edge_step", "soc", "edge_energy")
        )
        shape = edge_step.shape
        for key in ("soc", "edge_energy", "mask"):
            if key in maps and np.shape(maps[key]) != shape:
                raise ValueError(
                    f"map {key!r} has shape {np.shape(maps[key])} but edge_step has {shape}; "
                    "all maps of a run must share the pixel grid"
                )
        if context.absorbance.shape[-2:] != shape:
            raise ValueError(
                f"absorbance frames have shape {context.absorbance.shape[-2:]} but the maps "
                f"have {shape}; pass the stack the maps were computed from"
            )
        mask = np.asarray(maps.get("mask", np.ones(shape, bool)), bool)
        result = PostResult(units={})
        md: dict[str, Any] = {
            "pixel_size_um": px,
            "segmentation": {
                "image": "edge_step",
                "threshold": self.threshold,
                "min_radius_um": self.min_radius_um,
            },
            "formulas": FORMULAS,
        }
        labels = self._segment(edge_step, mask, px, md)
        self._add(result, "particle_labels", labels)
        md["n_particles"] = int(labels.max())
        if md["n_particles"] == 0:
            md["reason"] = md.get("reason") or "no particle found in the edge-step map"
            result.metadata = json_safe(md)
            logger.warning("run %s: %s", context.run_uid, md["reason"])
            return result

        soc, edge = self._fill_rims(soc, edge, labels, context, md)
        inside = labels > 0
        self._add(result, "particle_soc", np.where(inside, soc, np.nan).astype(np.float32))
        self._add(result, "particle_edge_energy", np.where(inside, edge, np.nan).astype(np.float32))
        valid = np.isfinite(soc) & np.isfinite(edge)
        table = particle_table(
            labels,
            np.where(valid, soc, np.nan),
            pixel_size_um=px,
            edge_energy=np.where(valid, edge, np.nan),
            separator_y_um=_separator(context.start),
            size_threshold_um=self.size_threshold_um,
        )
        result.tables["particles"] = table
        md["statistics"] = size_statistics(table)
        md["statistics"]["size_threshold_um"] = self.size_threshold_um
        md["diffusion"] = self._network(result, labels, edge, valid, px, context)
        md["seconds"] = time.perf_counter() - t0
        result.metadata = json_safe(md)
        logger.info(
            "run %s: %d particles, r(SOC, radius) = %s, %.2f s",
            context.run_uid,
            md["n_particles"],
            md["statistics"]["correlations"]["soc_mean_vs_radius"]["r"],
            md["seconds"],
        )
        return result

    # -- steps -------------------------------------------------------------------
    @staticmethod
    def _add(result: PostResult, key: str, array: np.ndarray) -> None:
        result.arrays[key] = array
        result.units[key] = UNITS[key]

    def _segment(
        self, edge_step: np.ndarray, mask: np.ndarray, px: float, md: dict[str, Any]
    ) -> np.ndarray:
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
            threshold=self.threshold,
            min_radius_um=self.min_radius_um,
        )

    def _fill_rims(
        self,
        soc: np.ndarray,
        edge: np.ndarray,
        labels: np.ndarray,
        context: MapContext,
        md: dict[str, Any],
    ) -> tuple[np.ndarray, np.ndarray]:
        """SOC and edge energy of particle pixels outside the XANES edge-jump mask.

        The XANES mask (Otsu on the edge step) drops thin rims and whole small
        particles; their pixels are analysed here with the same pipeline
        (:func:`~ssb_beamline.analysis.analyse_xanes_stack` with ``mask=`` the
        particles), so every particle has a SOC.
        """
        missing = (labels > 0) & ~(np.isfinite(soc) & np.isfinite(edge))
        md["pixels_reanalysed"] = int(missing.sum())
        if not missing.any() or not self.fill_particles:
            return soc, edge
        sub = np.asarray(context.absorbance)[:, missing][:, None, :]
        try:
            maps = analyse_xanes_stack(
                sub, context.energies, ni_k_edge_references(), mask=np.ones(sub.shape[1:], bool)
            )
        except ValueError as exc:
            md["reanalysis_failed"] = str(exc)
            logger.warning("particle pixels outside the XANES mask not re-analysed: %s", exc)
            return soc, edge
        soc, edge = soc.copy(), edge.copy()
        soc[missing] = maps.soc[0]
        edge[missing] = maps.edge_energy[0]
        return soc, edge

    def _phases(
        self, labels: np.ndarray, context: MapContext
    ) -> tuple[np.ndarray | None, dict[str, Any]]:
        """Phase map with NMC where the particles are, and how it was made."""
        if self.phase_source is not None:
            phases = self.phase_source(context)
            if phases is not None:
                phases = np.asarray(phases)
                if phases.shape != labels.shape:
                    raise ValueError(
                        f"phase_source gave shape {phases.shape}, the maps have {labels.shape}"
                    )
                return phases.astype(np.uint8), {"source": "phase_source"}
        return phases_from_absorbance(
            context.absorbance, context.energies, labels, carbon=self.carbon_from_absorbance
        )

    def _network(
        self,
        result: PostResult,
        labels: np.ndarray,
        edge: np.ndarray,
        valid: np.ndarray,
        px: float,
        context: MapContext,
    ) -> dict[str, Any]:
        """Diffusion-distance maps, impedance bins and the 2D map; metadata."""
        phases, info = self._phases(labels, context)
        if phases is None:
            return {"phases": info, "unavailable": {"all": info.get("reason", "no phase map")}}
        # The particles are the NMC: grow the labels over the NMC pixels of the phase
        # map (rims below the segmentation threshold) so contacts sit on the labels.
        nmc = (phases == Phase.NMC) | (labels > 0)
        grown = np.where(nmc, expand_labels(labels, distance=3), 0).astype(np.int32)
        phases = phases.copy()
        phases[grown > 0] = Phase.NMC
        phases[(phases == Phase.NMC) & (grown == 0)] = Phase.VOID  # debris, unlabelled
        self._add(result, "phases", phases)
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
                self._add(result, key, array)
        edge_v = np.where(valid, edge, np.nan)
        out.update(self._bins(result, maps, edge_v))
        return out

    def _bins(self, result: PostResult, maps: DiffusionMaps, edge: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if maps.combined is not None:
            bins = impedance_bins(maps.combined, edge, core_shell=maps.core_shell)
        else:  # the core-shell model needs no contacts
            bins = impedance_bins(maps.core_shell, edge).assign(model="core_shell")
        result.tables["impedance_bins"] = bins
        out["trend_slope_ev"] = {m: _trend_slope(bins, m) for m in ("combined", "core_shell")}
        if maps.li_norm is not None and maps.e_norm is not None:
            try:
                d2 = distance_map_2d(maps.e_norm, maps.li_norm, edge)
            except ValueError as exc:
                out["unavailable_2d"] = str(exc)
            else:
                self._add(result, "distance_map_2d", d2.mean)
                out["distance_map_2d"] = {
                    "e_edges": d2.e_edges,
                    "li_edges": d2.li_edges,
                    "count": d2.count,
                }
        else:
            out["unavailable_2d"] = "needs both the Li+ and the e- distance maps"
        return out
