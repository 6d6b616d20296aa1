"""Live holotomography: phase retrieval per angle, electron density, 3D particle statistics.

Each projection of a ``holotomo_scan`` is dark/flat normalised as it arrives. With
one propagation distance its phase is retrieved at once (Paganin, single material);
with 2-4 distances an angle's phase is retrieved (CTF least squares) as soon as its
last distance has arrived. At the end of the run the projected decrements are
reconstructed (FBP) into ``delta`` and the electron-density volume; NMC particles
are segmented in 3D and tabulated (equivalent radius, depth from the separator,
mean / std electron density of each particle's interior, i.e. its mask eroded so
that the blurred surface does not bias small particles), and the statistics of the
paper's Figure 5 are computed (:func:`~ssb_beamline.analysis.particles3d.holotomo_statistics`).

:func:`tomo_live_factory` (a ``RunRouter`` factory) dispatches tomography and
holotomography runs to their live analyses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage.segmentation import find_boundaries, relabel_sequential

from ssb_beamline.analysis import particle_table, tomography
from ssb_beamline.analysis.fly_angles import drop_repeated_angles
from ssb_beamline.analysis.particles3d import holotomo_statistics, segment_particles_3d
from ssb_beamline.analysis.phase_retrieval import (
    ctf_phase,
    electron_density_from_delta,
    paganin_phase,
    phase_to_delta_projection,
)
from ssb_beamline.analysis.rotation_center import median_center

from .tomo_live import (
    HOLO_PLANS,
    TOMO_PLANS,
    ProjectionRouter,
    TomoLiveAnalysis,
    TomoOutcome,
)
from .xanes_results import ResultSink

__all__ = ["NMC_THRESHOLD_E_NM3", "HoloLiveAnalysis", "tomo_live_factory"]

logger = logging.getLogger(__name__)

#: Electron density (e/nm^3) separating NMC811 (~1300-1370) from graphite (662),
#: carbon fibre (541), Li6PS5Cl (478) and pores.
NMC_THRESHOLD_E_NM3 = 1000.0


class HoloLiveAnalysis(ProjectionRouter):
    """Electron density and particle statistics of a ``holotomo_scan`` run, live.

    The start document must give ``energy_ev``, each tomogram's
    ``propagation_distance_m`` and ``pixel_size_um``; ``delta_beta`` (start document
    or parameter) is required by Paganin and used by the CTF when given.

    Parameters
    ----------
    sink : ResultSink, optional
        Where the volumes (one slice per chunk), the particle table and the
        statistics are published.
    delta_beta : float, optional
        ``delta / beta`` of NMC at the scan energy (the start document's wins).
    method : {"auto", "paganin", "ctf"}
        Phase retrieval; ``"auto"``: Paganin for one distance, CTF for 2-4.
    ctf_alpha : float
        Tikhonov regularisation of the CTF.
    center : float, optional
        Rotation-axis column (default: found on the projected decrements).
    filter_name : str
        FBP filter.
    threshold : float or str
        Electron density (e/nm^3) above which voxels are NMC, or an automatic
        method (``"otsu"``, ...).
    erosion_voxels : int
        Layers removed from each particle for its interior statistics.
    min_radius_um, small_radius_um : float
        Smallest particle kept; radius splitting the small and large groups.
    source : str, default "live"
        Recorded with the results: ``"live"``, or ``"replay"`` for an archived run.
    """

    segment_field = "distance_key"
    segment_value = "holo_z"

    def __init__(  # noqa: PLR0913 -- keyword-only analysis options of the callback
        self, *, sink: ResultSink | None = None, delta_beta: float | None = None,
        method: str = "auto", ctf_alpha: float = 1e-6, center: float | None = None,
        filter_name: str = "hann", threshold: float | str = NMC_THRESHOLD_E_NM3,
        erosion_voxels: int = 2, min_radius_um: float = 0.3, small_radius_um: float = 1.0,
        source: str = "live",
    ) -> None:  # fmt: skip
        super().__init__(sink=sink, source=source)
        self.method, self.ctf_alpha, self.center = method, ctf_alpha, center
        self.delta_beta, self.filter_name, self.threshold = delta_beta, filter_name, threshold
        self.erosion_voxels, self.min_radius_um = int(erosion_voxels), min_radius_um
        self.small_radius_um = small_radius_um

    def setup(self) -> None:
        """Read the holotomography parameters of the start document."""
        doc = self.start_doc
        distances = [t.get("propagation_distance_m") for t in self.tomograms]
        if doc.get("energy_ev") is None or None in distances:
            raise ValueError(
                "Phase retrieval needs the start document's energy_ev and each tomogram's "
                "propagation_distance_m (pass energy= and propagation_distances_m= to "
                "holotomo_scan)."
            )
        self.energy_ev, self.distances_m = float(doc["energy_ev"]), np.asarray(distances, float)
        self.delta_beta = doc.get("delta_beta", self.delta_beta)
        if self.method not in ("auto", "paganin", "ctf"):
            raise ValueError(f"method must be 'auto', 'paganin' or 'ctf', not {self.method!r}")
        if self.method == "auto":
            self.method = "paganin" if self.distances_m.size == 1 else "ctf"
        if self.method == "paganin" and (self.delta_beta is None or self.distances_m.size > 1):
            raise ValueError(
                "Paganin retrieval needs one distance and delta_beta (start document or "
                f"parameter); got {self.distances_m.size} distance(s), delta_beta="
                f"{self.delta_beta}."
            )
        grid = np.asarray(doc["angles_deg"], float)
        # frame i of tomogram k is the projection at angle grid[index[k][i]] (zigzag orders)
        self.index = [np.abs(grid[None, :] - np.asarray(t["angles_deg"])[:, None]).argmin(1)
                      for t in self.tomograms]  # fmt: skip
        self._delta: np.ndarray | None = None  # (A, Z, X) projected decrement, voxel units
        self._ready = np.zeros(grid.size, bool)
        self._blocks: dict[int, np.ndarray] = {}  # angle -> (D, Z, X) intensities
        self._have = np.zeros(grid.size, int)
        self._angle_sum, self._angle_n = np.zeros(grid.size), np.zeros(grid.size)

    def correct(self, frame, flat, dark, flux):
        """Flat-field corrected intensity of one projection."""
        intensity = tomography.flat_field_projections(frame[None], flat, dark, log=False)[0]
        return intensity / np.float32(flux)  # the flat was taken with another incident flux

    def ingest(self, k, index, projection):
        """Keep projection ``index`` of distance ``k``."""
        j, px_m = int(self.index[k][index]), self.pixel_size_um * 1e-6
        if self._delta is None:
            self._delta = np.zeros((self._ready.size, *projection.shape), np.float32)
        if self.method == "paganin":
            phase = paganin_phase(projection, delta_beta=self.delta_beta, energy_ev=self.energy_ev,
                                  distance_m=self.distances_m[0], pixel_size_m=px_m)  # fmt: skip
        else:
            shape = (self.distances_m.size, *projection.shape)
            self._blocks.setdefault(j, np.zeros(shape, np.float32))[k] = projection
            self._have[j] += 1
            if self._have[j] < self.distances_m.size:
                return
            phase = ctf_phase(self._blocks.pop(j), self.distances_m, self.energy_ev, px_m,
                              delta_beta=self.delta_beta, alpha=self.ctf_alpha)  # fmt: skip
        self._delta[j] = phase_to_delta_projection(phase, self.energy_ev, pixel_size_m=px_m)
        self._ready[j] = True

    def segment_complete(self, k, angles):
        """Note that distance ``k`` has all its projections and angles."""
        np.add.at(self._angle_sum, self.index[k], angles)
        np.add.at(self._angle_n, self.index[k], 1.0)

    def finish(self, doc):
        """Retrieve the phase, reconstruct, segment and publish at the stop document."""
        ok = self._ready & (self._angle_n > 0)
        if self._delta is None or ok.sum() < 2:
            raise ValueError(f"Run {self.outcome.run_uid}: too few complete projections.")
        t0 = time.perf_counter()
        angles, keep = drop_repeated_angles(self._angle_sum[ok] / self._angle_n[ok])
        proj = self._delta[ok][keep]  # (frames with a fly rotation at rest repeat an angle)
        angles = tomography.check_angles(angles, proj.shape[0])
        if self.center is None:
            self.center = median_center(proj, angles)
        delta = tomography.reconstruct_fbp(proj, angles, self.center, filter_name=self.filter_name)
        density = electron_density_from_delta(delta, self.energy_ev).astype(np.float32)
        self.outcome.segment_seconds[0] = time.perf_counter() - t0
        arrays, units = {"electron_density": density}, {"electron_density": "electrons/nm^3"}
        metadata: dict[str, Any] = dict(
            plan_name=self.outcome.plan_name, source=self.source,
            exit_status=doc.get("exit_status"), energy_ev=self.energy_ev,
            propagation_distances_m=self.distances_m, phase_retrieval=self.method,
            delta_beta=self.delta_beta, ctf_alpha=self.ctf_alpha if self.method == "ctf" else None,
            rotation_center_px=self.center, angles_deg=angles, pixel_size_um=self.pixel_size_um,
            filter_name=self.filter_name, reconstruction_seconds=self.outcome.segment_seconds[0],
            small_radius_um=self.small_radius_um, erosion_voxels=self.erosion_voxels,
            threshold=self.threshold,
        )  # fmt: skip
        tables = {}
        try:
            labels, tables["particles"], stats = self._particles(density)
            arrays["particle_labels"], units["particle_labels"] = labels, "label"
            metadata["holotomo_statistics"] = stats
        except Exception as exc:  # the electron density is still published
            self.outcome.errors.append(f"particle statistics: {type(exc).__name__}: {exc}")
            logger.exception("run %s: 3D particle statistics failed", self.outcome.run_uid)
        self.publish(arrays, units, metadata, tables)

    def _particles(self, density: np.ndarray) -> tuple[np.ndarray, pd.DataFrame, dict]:
        """Labels, particle table and Figure-5 statistics of an electron-density volume."""
        px, (ny, nx) = self.pixel_size_um, density.shape[1:]
        radius = min(self.center, nx - 1 - self.center) - 2.0  # inside the FBP circle
        yy, xx = np.ogrid[:ny, :nx]
        inside = (yy - (ny - 1) / 2) ** 2 + (xx - (nx - 1) / 2) ** 2 <= radius**2
        labels = segment_particles_3d(density, voxel_size_um=px, threshold=self.threshold,
                                      min_radius_um=self.min_radius_um,
                                      mask=np.broadcast_to(inside, density.shape))  # fmt: skip
        # particles cut by the field of view or the first / last slice are not measured
        edge = np.zeros(density.shape, bool)
        edge[[0, -1]] = True
        edge |= ~ndimage.binary_erosion(inside, iterations=1)[None]
        labels[np.isin(labels, np.unique(labels[edge]))] = 0
        labels = relabel_sequential(labels)[0].astype(np.int32)
        if labels.max() == 0:
            raise ValueError(f"no particle above {self.threshold} e/nm^3 inside the volume")
        core = labels > 0
        if self.erosion_voxels > 0:
            core &= ~find_boundaries(labels, mode="inner")
            core = ndimage.distance_transform_edt(core) > self.erosion_voxels - 1
        table = particle_table(labels, np.where(core, density, np.nan), pixel_size_um=px,
                               size_threshold_um=self.small_radius_um)  # fmt: skip
        table = table.rename(columns={"soc_mean": "electron_density_mean",
                                      "soc_std": "electron_density_std"})  # fmt: skip
        table = table.drop(columns=[c for c in table if c.startswith(("soc_", "polarization"))])
        stats = holotomo_statistics(
            table, "electron_density_mean", std_column="electron_density_std",
            small_radius_um=self.small_radius_um, separator_axis=0, voxel_size_um=px,
            separator_index=float(self.start_doc.get("separator_index") or 0.0),
        )  # fmt: skip
        table["depth_um"] = stats.pop("depth_um")
        return labels, table, stats


def tomo_live_factory(
    references: Any = None,
    *,
    sink: ResultSink | None = None,
    outcomes: list[TomoOutcome] | None = None,
    tomo_options: Mapping[str, Any] | None = None,
    holo_options: Mapping[str, Any] | None = None,
) -> Callable[[str, dict], tuple[list, list]]:
    """A ``RunRouter`` factory for the live analysis of tomography runs.

    ``tomo_scan`` / ``xanes_tomo_scan`` runs get a :class:`TomoLiveAnalysis`
    (``references`` and ``tomo_options``), ``holotomo_scan`` runs a
    :class:`HoloLiveAnalysis` (``holo_options``); other runs nothing. Each run's
    :class:`TomoOutcome` is appended to ``outcomes`` when given.

    Parameters
    ----------
    references : (K, N) array or sequence of reference spectra, optional
        End members of the 3D XANES fit of ``xanes_tomo_scan`` runs (index 0 reduced,
        last oxidised); None: the shipped NiO / LiNiO2 spectra.
    sink : ResultSink, optional
        Where every run's volumes and tables are published (keyword only); None keeps
        them in the outcome only.
    outcomes : list of TomoOutcome, optional
        Each run's :class:`TomoOutcome` is appended here when the run starts (read it
        after the stop document).
    tomo_options : mapping, optional
        Keyword arguments of :class:`TomoLiveAnalysis` (``center``, ``filter_name``,
        ``reconstruct``, ``derivative_e0``, ``source``); an unknown key raises
        ``TypeError`` at the run's start document.
    holo_options : mapping, optional
        Keyword arguments of :class:`HoloLiveAnalysis` (``delta_beta``, ``method``,
        ``threshold``, ...), same rule.

    Returns
    -------
    callable
        ``factory(name, start_doc) -> (callbacks, [])`` for
        ``event_model.RunRouter``.
    """

    def factory(name: str, start_doc: dict) -> tuple[list, list]:
        plan = start_doc.get("plan_name")
        if plan in TOMO_PLANS:
            callback = TomoLiveAnalysis(references, sink=sink, **dict(tomo_options or {}))
        elif plan in HOLO_PLANS:
            callback = HoloLiveAnalysis(sink=sink, **dict(holo_options or {}))
        else:
            return [], []
        if outcomes is not None:
            outcomes.append(callback.outcome)
        return [callback], []

    return factory
