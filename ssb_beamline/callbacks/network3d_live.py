"""The 3D conductive-network model at the end of a 3D XANES run (live or replayed).

:class:`Network3DLive` is subscribed *after* a
:class:`~ssb_beamline.callbacks.tomo_live.TomoLiveAnalysis` (whose stop handler
reconstructs and publishes the attenuation / edge-energy volumes); at the stop of
an ``xanes_tomo_scan`` it takes those volumes, segments the phases (or uses a
registered phase volume, e.g. from a holotomography run of the same field of view,
whose electron density resolves carbon), computes the network model and publishes
it as the next result version of the run: phase / distance / impedance volumes
(units, z/y/x coordinates from the run's voxel size), the bin and particle tables,
and the segmentation method and thresholds in the metadata.

Everything is computed and checked before anything is published, so bad input (a
phase volume of another shape or voxel size, no SSE or carbon, no energy above the
edge) stores nothing; the reason is logged and kept in ``outcome.errors``.  A
failure never reaches the RunEngine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from event_model import DocumentRouter

from ssb_beamline.analysis.network3d import VOXEL_UNITS, NetworkModel3D, network_model_3d
from ssb_beamline.analysis.network3d_pvc import fbp_point_response
from ssb_beamline.analysis.network3d_weights import primary_reading
from ssb_beamline.analysis.particles3d import segment_particles_3d
from ssb_beamline.analysis.segmentation3d import PhaseVolume, segment_phases_3d
from ssb_beamline.analysis.tomography import reconstruct_fbp

from .tomo_live import TomoLiveAnalysis, TomoOutcome
from .xanes_results import ResultSink

__all__ = ["Network3DLive", "Network3DOutcome", "network3d_factory", "network_results"]

logger = logging.getLogger(__name__)

#: Fewest energies for an edge fit of the bins' mean spectra (as for a voxel's).
MIN_SPECTRUM_ENERGIES = 5
#: Default of ``Network3DLive(partial_volume_correction=)``: off.  The correction
#: removes the FBP's resolution bias of the bins' trends noise-free, but scatters the
#: per-bin reading 1.5-1.8x more, so fewer runs land within 30 % of the truth
#: (``benchmarks/bench_network3d_noise.py``, 24 draws: core-shell 62 / 58 / 33 %
#: corrected against 58 / 79 / 75 % uncorrected; :mod:`ssb_beamline.analysis.network3d_pvc`).
PVC_DEFAULT = False


@dataclass
class Network3DOutcome:
    """What the network analysis of one run produced.

    Attributes
    ----------
    run_uid : str or None
        The run's start-document uid (None before its start document).
    model : NetworkModel3D or None
        The network model; None until computed, or when it failed.
    phases : PhaseVolume or None
        The phase volume the model used (segmented or registered).
    stored_at : str or None
        Path of the published result version; None without a sink or on failure.
    errors : list of str
        Why nothing was stored (``"ValueError: ..."``), empty on success.
    """

    run_uid: str | None = None
    model: NetworkModel3D | None = None
    phases: PhaseVolume | None = None
    stored_at: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the network model was computed without errors."""
        return self.model is not None and not self.errors


def network_results(
    model: NetworkModel3D, phases: PhaseVolume, source: str
) -> tuple[dict, dict, dict, dict]:
    """Arrays, units, metadata and tables to publish for one network model.

    Parameters
    ----------
    model : NetworkModel3D
        The computed model; its per-voxel arrays become full float32 volumes
        (NaN outside NMC) named ``network_<name>``.
    phases : PhaseVolume
        The phases it used (stored as ``phases``, uint8; its metadata as
        ``segmentation``).
    source : str
        ``"live"`` or ``"replay"``, recorded in the metadata.

    Returns
    -------
    arrays, units, metadata, tables : dict
        The arguments of ``ResultSink.publish``.
    """
    arrays: dict[str, np.ndarray] = {"phases": phases.phases}
    units = {"phases": "Phase code (0 pore, 1 NMC, 2 SSE, 3 carbon)"}
    for name, unit in VOXEL_UNITS.items():
        arrays[f"network_{name}"] = model.volume(name)
        units[f"network_{name}"] = unit
    metadata = {
        "kind": "network3d",
        "source": source,
        "segmentation": phases.metadata,
        "voxel_size_um": model.voxel_size_um,
        "metric": model.metric,
        "slopes_ev_per_unit_impedance": model.slopes,
        "n_particles": len(model.particles),
        "partial_volume_correction": "geometric transfer matrix with the FBP's point response"
        if "edge_energy_spectrum_uncorrected" in model.bins
        else "none",
    }
    metadata.update(primary_reading(model.bins))  # which per-bin reading and line: the slopes
    tables = {"impedance_bins": model.bins, "network_particles": model.particles.reset_index()}
    return arrays, units, metadata, tables


class Network3DLive(DocumentRouter):
    """Network model of a 3D XANES run, from the volumes of ``tomo`` (see module docstring).

    Parameters
    ----------
    tomo : TomoLiveAnalysis
        The live reconstruction of the same run (subscribed before this callback).
    sink : ResultSink, optional
        Where the results are published.
    phase_volume : PhaseVolume, optional
        A registered phase volume (same grid); default: segment this run.
    electron_density : ndarray, optional
        A registered electron-density volume for SSE / carbon (holotomography).
    electron_density_uid : str, optional
        The run it comes from (stored in the segmentation metadata).
    source : str
        ``"live"`` or ``"replay"`` (stored in the metadata).
    smooth_sigma : float
        Gaussian smoothing (voxels) before the segmentation: FBP reconstructions of
        a few dozen angles are noisy (0.7 lifts the SSE Dice of the end-to-end run
        from 0.55 to 0.84; NMC stays at 0.98).
    band_voxels : int
        Partial-volume band around NMC whose voxels take the phase of the nearest
        voxel outside it.  2: the NMC's absorption spills ~2 voxels into its
        neighbours (FBP blur plus ``smooth_sigma``), which made the carbon coat
        touching NMC read as SSE (high absorption per electron) with 1: on the
        end-to-end run 197 of the 347 NMC-carbon contact voxels.
    split_particles : bool
        Split touching NMC particles by a watershed on the distance transform
        (:func:`~ssb_beamline.analysis.particles3d.segment_particles_3d`) instead of
        taking connected components: the blurred reconstruction bridges particles
        a voxel apart (end-to-end run: 5 particles read as 3).
    partial_volume_correction : bool
        Correct the bins' mean spectra for the FBP's blur with the reconstruction's
        own point response (:mod:`~ssb_beamline.analysis.network3d_pvc`; only when
        ``tomo`` reconstructs by FBP).  The uncorrected slopes are kept as
        ``slopes["<model>_uncorrected"]``.  Off by default: see ``PVC_DEFAULT``.
    """

    def __init__(
        self, tomo: Any, *, sink: ResultSink | None = None,
        phase_volume: PhaseVolume | None = None, electron_density: np.ndarray | None = None,
        source: str = "live", smooth_sigma: float = 0.7, electron_density_uid: str | None = None,
        band_voxels: int = 2, split_particles: bool = True,
        partial_volume_correction: bool | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.partial_volume_correction = (PVC_DEFAULT if partial_volume_correction is None
                                          else bool(partial_volume_correction))  # fmt: skip
        self.band_voxels, self.split_particles = band_voxels, split_particles
        self.electron_density_uid = electron_density_uid
        self.smooth_sigma = smooth_sigma
        self.tomo, self.sink, self.source = tomo, sink, source
        self.phase_volume, self.electron_density = phase_volume, electron_density
        self.outcome = Network3DOutcome()
        self._plan: str | None = None
        self.on_start: Callable[[Network3DOutcome], None] | None = None

    def start(self, doc):
        """Begin a new outcome for the run."""
        self.outcome = Network3DOutcome(run_uid=doc["uid"])
        self._plan = doc.get("plan_name")
        if self.on_start is not None:
            self.on_start(self.outcome)

    def stop(self, doc):
        """At the end of a 3D XANES run: segment, compute the network model, publish."""
        if self._plan != "xanes_tomo_scan":
            return
        try:
            self.compute_and_publish(self.tomo.outcome.volumes, self.tomo.pixel_size_um)
        except Exception as exc:  # logged and recorded, never raised into the RunEngine
            self.outcome.errors.append(f"{type(exc).__name__}: {exc}")
            logger.error("run %s: 3D network model not stored: %s", self.outcome.run_uid, exc)

    def _spectra(self, volumes: dict) -> dict:
        """The stack for the bins' mean-spectrum edges, if it samples the edge (>= 5 energies)."""
        if np.size(volumes["energies"]) < MIN_SPECTRUM_ENERGIES:
            logger.warning("only %d energies: bin edge energies are per-voxel means",
                           np.size(volumes["energies"]))  # fmt: skip
            return {}
        out = {"attenuation": volumes["attenuation"], "energies": volumes["energies"]}
        if self.partial_volume_correction:
            kernel = self._point_response()
            if kernel is not None:
                out["resolution_kernel"] = kernel
        return out

    def _point_response(self) -> np.ndarray | None:
        """The FBP's in-slice point response, averaged over the run's tomograms' angles."""
        angles = list(getattr(self.tomo, "segment_angles", {}).values())
        if getattr(self.tomo, "reconstruct", None) is not reconstruct_fbp or not angles:
            logger.warning("no partial-volume correction: the volumes are not FBP reconstructions")
            return None
        kernels = [fbp_point_response(a, self.tomo.filter_name) for a in angles]
        return np.mean(kernels, axis=0)

    def compute_and_publish(self, volumes: dict, voxel_size_um: float) -> None:
        """Segment (or take the registered phases), model, then publish in one step."""
        missing = [k for k in ("attenuation", "energies", "edge_energy") if k not in volumes]
        if missing:
            raise ValueError(
                f"the 3D XANES results lack {missing}; the reconstruction or XANES fit failed "
                "(see the tomography outcome's errors), so there is nothing to model"
            )
        phases = self.phase_volume
        if phases is None:
            phases = segment_phases_3d(
                volumes["attenuation"], volumes["energies"], voxel_size_um=voxel_size_um,
                electron_density=self.electron_density, smooth_sigma=self.smooth_sigma,
                band_voxels=self.band_voxels,
            )  # fmt: skip
            if self.electron_density is not None:
                phases.metadata["electron_density_run"] = self.electron_density_uid
        labels = None
        if self.split_particles:
            labels = segment_particles_3d((phases.phases == 1).astype(np.float32),
                                          voxel_size_um=voxel_size_um, threshold=0.5)  # fmt: skip
        model = network_model_3d(
            phases.phases, volumes["edge_energy"], voxel_size_um=voxel_size_um,
            phase_voxel_size_um=phases.voxel_size_um, labels=labels,
            **self._spectra(volumes),
        )  # fmt: skip
        self.outcome.model, self.outcome.phases = model, phases
        arrays, units, metadata, tables = network_results(model, phases, self.source)
        if self.sink is not None:
            self.outcome.stored_at = self.sink.publish(
                self.outcome.run_uid, arrays, units=units, metadata=metadata, tables=tables
            )


def network3d_factory(
    references: Any = None,
    *,
    sink: ResultSink | None = None,
    outcomes: list[TomoOutcome] | None = None,
    network_outcomes: list[Network3DOutcome] | None = None,
    source: str = "live",
    network_options: Mapping[str, Any] | None = None,
) -> Callable[[str, dict], tuple[list, list]]:
    """A ``RunRouter`` factory: ``xanes_tomo_scan`` runs get reconstruction + network model.

    Each such run gets a fresh :class:`TomoLiveAnalysis` (``source`` stored in its
    results) followed by a :class:`Network3DLive` (``network_options``: its
    ``phase_volume`` / ``electron_density``); other runs get nothing.

    Parameters
    ----------
    references : optional
        End members of the XANES fit (default: the shipped NiO / LiNiO2).
    sink : ResultSink, optional
        Where both callbacks publish; ``None`` computes without storing.
    outcomes : list of TomoOutcome, optional
        Each run's reconstruction outcome is appended here (to inspect errors).
    network_outcomes : list of Network3DOutcome, optional
        Each run's network outcome is appended here at its start document.
    source : str, optional
        ``"live"`` (default) or ``"replay"``, recorded with the results.
    network_options : mapping, optional
        Keyword arguments of :class:`Network3DLive` (``phase_volume``,
        ``electron_density``, ``electron_density_uid``, ``smooth_sigma``); an
        unknown key raises ``TypeError`` when the first such run starts.
    """

    def factory(name: str, start_doc: dict) -> tuple[list, list]:
        if start_doc.get("plan_name") != "xanes_tomo_scan":
            return [], []
        tomo = TomoLiveAnalysis(references, sink=sink, source=source)
        net = Network3DLive(tomo, sink=sink, source=source, **dict(network_options or {}))
        if outcomes is not None:
            outcomes.append(tomo.outcome)
        if network_outcomes is not None:  # the outcome object is replaced at start
            net.on_start = network_outcomes.append
        return [tomo, net], []

    return factory
