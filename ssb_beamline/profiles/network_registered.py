"""2D from 3D: a 2D XANES run of a 3D run's field of view with the 3D run's phases (issue 20).

Carbon cannot be seen in 2D Ni K-edge absorption; the 3D run resolves it.
:func:`registered_xanes_2d` takes a *separate* simulated 2D XANES scan of the same
field of view (the projection of the 3D sample along the beam, on the 3D
volume's grid) whose live particle statistics take the phase map from the
registered 3D phase volume (projection, stated in the stored metadata).
:func:`network_2d_from_3d` instead projects the 3D run's own reconstructed
attenuation volumes (no second scan).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from event_model import RunRouter

from ssb_beamline.analysis.segmentation3d import PhaseVolume
from ssb_beamline.callbacks.background import BackgroundCallback
from ssb_beamline.profiles.simulated import result_sink
from ssb_beamline.reference_data import ni_k_edge_references

__all__ = ["network_2d_from_3d", "registered_xanes_2d"]

logger = logging.getLogger(__name__)


def registered_xanes_2d(
    phantom3d: Any, phases: PhaseVolume, tomo_uid: str, energies: Any, *,
    tiled_uri: str | None = None, data_dir: str | Path | None = None,
    detector_dir: str | Path | None = None, axis: int = 1,
) -> tuple[str, Any]:  # fmt: skip
    """A separate 2D XANES run of the 3D run's field of view, phases from the 3D run.

    The simulated 2D TXM images the projection of the same sample along the beam
    (:func:`~ssb_beamline.sim_devices.network_phantom3d.projected_phantom`, the
    registered grid: the 3D volume's ``(Z, X)`` at its voxel size) with its own
    dark / flat frames and noise; its live analysis is the standard one except
    that ``ParticleStatistics`` takes the phase map from the registered 3D phase
    volume (projection along ``axis``, stated in the stored metadata), so the 2D
    network model has its e- distances.

    Parameters
    ----------
    phantom3d : Phantom3D
        The 3D session's sample as seen by its detector (``session.phantom``).
    phases : PhaseVolume
        The 3D run's phase volume (``Network3DOutcome.phases``).
    tomo_uid : str
        The 3D run (recorded as the phase map's origin).
    energies : sequence of float or str
        The 2D XANES energies (eV) or a preset name.
    tiled_uri, data_dir, detector_dir : str or path, optional
        As for :func:`~ssb_beamline.profiles.simulated.simulated_beamline`.
    axis : int
        The beam axis of the volume at rotation angle 0.

    Returns
    -------
    uid : str
        The 2D run.
    outcome : LiveOutcome
        Its live analysis (results stored in tiled next to it).
    """
    from ssb_beamline.callbacks.particles_live import ParticleStatistics
    from ssb_beamline.callbacks.registered_phases import registered_phase_source
    from ssb_beamline.callbacks.xanes_factory import xanes_live_factory
    from ssb_beamline.profiles.simulated import simulated_beamline
    from ssb_beamline.sim_devices.network_phantom3d import projected_phantom

    source = registered_phase_source(phases, mode="projection", axis=axis, tomo_uid=tomo_uid)
    sample = projected_phantom(phantom3d, axis=axis)
    beamline = simulated_beamline(tiled_uri=tiled_uri, data_dir=data_dir, live_analysis=False,
                                  detector_dir=detector_dir, sample_phantom=sample)  # fmt: skip
    try:
        outcomes: list = []
        factory = xanes_live_factory(
            ni_k_edge_references(), sink=result_sink(beamline.store), outcomes=outcomes,
            post_processors=[ParticleStatistics(phase_source=source)],
        )  # fmt: skip
        beamline.live = BackgroundCallback(RunRouter([factory]), "live 2D XANES (3D phases)")
        beamline.RE.subscribe(beamline.live)
        (uid,) = beamline.run(beamline.xanes(energies, n_dark=2))
        return uid, outcomes[-1]
    finally:
        beamline.close()


def network_2d_from_3d(
    volumes: Mapping[str, Any], phases: Any, tomo_uid: str, out_dir: str | Path, *, axis: int = 1
) -> tuple[Any, list[Path]]:
    """The 2D network model of the projection of a 3D XANES run, with its registered phases.

    The run's attenuation volumes summed along the beam (``axis``, Y at angle 0)
    are the absorbance images a 2D XANES scan of this field of view would take;
    they go through the 2D XANES pipeline and ``ParticleStatistics`` whose
    ``phase_source`` is the projection of the 3D phases
    (:func:`~ssb_beamline.callbacks.registered_phases.registered_phase_source`).
    Writes the particle figures (maps, sizes, network); returns the
    ``ParticleStatistics`` result and the figure paths.

    Parameters
    ----------
    volumes : mapping
        The run's reconstructed volumes: ``attenuation`` (N, Z, Y, X) per energy,
        /µm, and ``energies`` (N,), eV.
    phases : PhaseVolume
        The run's phases on the same grid (its ``voxel_size_um``, µm, turns the
        summed attenuation into absorbance).
    tomo_uid : str
        The 3D run's uid (names the 2D context and the figures).
    out_dir : path
        Folder for the figures.
    axis : int, optional
        Beam axis of the (Z, Y, X) volumes (default 1, Y at angle 0); an axis
        other than 0-2 raises numpy's ``AxisError``.
    """
    from ssb_beamline.analysis import analyse_xanes_stack
    from ssb_beamline.callbacks.particles_live import ParticleStatistics
    from ssb_beamline.callbacks.registered_phases import registered_phase_source
    from ssb_beamline.callbacks.xanes_results import MapContext, result_arrays
    from ssb_beamline.report.particles import write_particle_figures

    vox = phases.voxel_size_um
    absorbance = (np.nan_to_num(volumes["attenuation"]).sum(axis=axis + 1) * vox).astype(np.float32)
    energies = np.asarray(volumes["energies"], float)
    maps = analyse_xanes_stack(absorbance, energies, ni_k_edge_references())
    arrays, _ = result_arrays(maps, np.ones(absorbance.shape[1:], bool))
    context = MapContext(f"{tomo_uid}-2d", {"pixel_size_um": vox}, energies, absorbance)
    source = registered_phase_source(phases, mode="projection", axis=axis, tomo_uid=tomo_uid)
    result = ParticleStatistics(phase_source=source)(arrays, context)
    paths = write_particle_figures(out_dir, {**arrays, **result.arrays}, result.tables,
                                   {"particles": result.metadata},
                                   title=f"2D from 3D run {tomo_uid[:8]}")  # fmt: skip
    return result, paths
