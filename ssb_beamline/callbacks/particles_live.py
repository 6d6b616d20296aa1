"""Particle statistics and the conductive-network model, live at the end of a XANES run.

:class:`ParticleStatistics` is a post-processor of
:class:`~ssb_beamline.callbacks.xanes_live.XanesLiveAnalysis`: a thin adapter
from the run (its maps, absorbance stack, start document and references) to
:func:`ssb_beamline.analysis.particle_statistics.particle_statistics`, which
segments the particles, builds the particle table and size statistics, the
phase map and the diffusion-distance model.  Everything it cannot compute is
reported in the metadata with the reason, never as inf or a crash.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ssb_beamline._jsonable import jsonable as json_safe
from ssb_beamline.analysis.particle_statistics import (
    FORMULAS,
    UNITS,
    ParticleOptions,
    particle_statistics,
)

from .xanes_live import MapContext, PostResult

__all__ = ["FORMULAS", "ParticleStatistics", "json_safe"]

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class ParticleStatistics(ParticleOptions):
    """Post-processor: particle table, size statistics and diffusion-distance model.

    Parameters
    ----------
    threshold, min_radius_um, size_threshold_um, carbon_from_absorbance, fill_particles
        See :class:`~ssb_beamline.analysis.particle_statistics.ParticleOptions`.
    phase_source : callable, optional
        ``phase_source(context) -> phase map or None``: a phase map with
        :class:`~ssb_beamline.physics.Phase` codes on the same pixel grid
        (e.g. from nano-tomography). Default: segmented from the absorbance.
    name : str
        Key of the metadata of this post-processor.
    """

    phase_source: Callable[[MapContext], np.ndarray | None] | None = None
    name: str = "particles"
    #: the live analysis makes the phase map's below-edge image while the scan runs
    uses_below_edge = True

    def layout(self, frame_shape: tuple[int, ...]) -> dict[str, tuple[tuple[int, ...], str, str]]:
        """``key -> (shape, dtype, unit)`` of the maps a run with particles usually gets.

        Lets the results be prepared while the scan runs (see
        :class:`~ssb_beamline.callbacks.xanes_prepare.ResultPreparer`); a run may
        lack some (no particles, no contacts) or have more (with carbon: the
        electron-path maps), which publish handles.

        Examples
        --------
        >>> ParticleStatistics().layout((4, 5))["phases"]
        ((4, 5), 'uint8', 'Phase code (0 void, 1 NMC, 2 SSE, 3 carbon)')
        """
        shape = tuple(int(n) for n in frame_shape)
        dtypes = {"particle_labels": "int32", "particle_soc": "float32",
                  "particle_edge_energy": "float32", "phases": "uint8",
                  "li_distance_um": "float32", "core_shell": "float32"}  # fmt: skip
        return {key: (shape, dtype, UNITS[key]) for key, dtype in dtypes.items()}

    def __call__(self, maps: Mapping[str, np.ndarray], context: MapContext) -> PostResult:
        """Analyse the particles of the run's maps (with the run's own references)."""
        t0 = time.perf_counter()
        source = None
        if self.phase_source is not None:
            phase_source = self.phase_source

            def source():
                return phase_source(context)

            source.info = dict(getattr(phase_source, "info", {}))  # how it was made, stored
        below_edge = None if context.below_edge is None else context.below_edge()
        out = particle_statistics(
            maps,
            context.absorbance,
            context.energies,
            pixel_size_um=_pixel_size(context.start),
            separator_y_um=_separator(context.start),
            references=context.references,
            phase_source=source,
            options=self,
            below_edge=below_edge,
        )
        md = out.metadata
        result = PostResult(arrays=out.arrays, units=out.units, tables=out.tables)
        if md["n_particles"] == 0:
            result.metadata = json_safe(md)
            logger.warning("run %s: %s", context.run_uid, md["reason"])
            return result
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
