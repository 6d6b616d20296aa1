"""2D from 3D: a 2D XANES result gets its phase map from a registered 3D phase volume.

The 2D maps are those of the network phantom's projection along the beam (Y) at
11 energies, analysed by the project's XANES pipeline; the phase volume is the 3D
segmentation of simulated attenuation + electron density (no truth phases).
Without the registration the combined model is unavailable (no carbon in 2D).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ssb_beamline.analysis import analyse_xanes_stack
from ssb_beamline.analysis.segmentation3d import segment_phases_3d
from ssb_beamline.callbacks.particles_live import ParticleStatistics
from ssb_beamline.callbacks.registered_phases import registered_phase_source
from ssb_beamline.callbacks.xanes_results import MapContext, result_arrays
from ssb_beamline.reference_data import ni_k_edge_references
from ssb_beamline.report.particles import write_particle_figures
from ssb_beamline.sim_devices.network_phantom3d import make_network_phantom
from ssb_beamline.sim_devices.refraction import phase_attenuation_per_um

VOX = 0.1
ENERGIES = [8300.0, 8320.0, 8331.0, 8334.0, 8337.0, 8340.0, 8343.0, 8346.0, 8349.0, 8390.0,
            8440.0]  # fmt: skip


def _mu(ph, e: float) -> np.ndarray:
    a, b, mu_sse, mu_c = phase_attenuation_per_um(e)
    mu = np.zeros(ph.shape, np.float32)
    nmc = ph.phases == 1
    mu[nmc] = a + b * ph.soc[nmc]
    mu[ph.phases == 2], mu[ph.phases == 3] = mu_sse, mu_c
    return mu


@pytest.fixture(scope="module")
def scene():
    ph = make_network_phantom().phantom
    rng = np.random.default_rng(3)
    vols = {e: _mu(ph, e) for e in ENERGIES}
    absorbance = np.stack([v.sum(axis=1) * VOX for v in vols.values()])  # (N, Z, X)
    absorbance += rng.normal(0, 2e-4, absorbance.shape)
    stack = np.stack([ndimage.gaussian_filter(vols[e], 0.5) + rng.normal(0, 2e-4, ph.shape)
                      for e in (8300.0, 8390.0)])  # fmt: skip
    density = ndimage.gaussian_filter(ph.electron_density, 0.5) + rng.normal(0, 30, ph.shape)
    volume = segment_phases_3d(stack, [8300.0, 8390.0], voxel_size_um=VOX,
                               electron_density=density)  # fmt: skip
    maps = analyse_xanes_stack(absorbance.astype(np.float32), np.array(ENERGIES),
                               ni_k_edge_references())  # fmt: skip
    arrays, _ = result_arrays(maps, np.ones(absorbance.shape[1:], bool))
    context = MapContext("run-2d", {"pixel_size_um": VOX}, np.array(ENERGIES), absorbance)
    return volume, arrays, context


def test_registered_3d_phases_give_the_combined_model_and_a_full_figure(scene, tmp_path):
    volume, arrays, context = scene
    source = registered_phase_source(volume, mode="projection", tomo_uid="tomo-1")
    result = ParticleStatistics(phase_source=source)(arrays, context)
    diffusion = result.metadata["diffusion"]
    assert "combined" not in diffusion["unavailable"], diffusion["unavailable"]
    assert diffusion["phases"]["source"] == "phase_source" and source.info["mode"] == "projection"
    assert diffusion["phases"]["registered_from"] == "tomo-1"  # the registration is stated
    assert diffusion["phases"]["mode"] == "projection"
    bins = result.tables["impedance_bins"]
    assert set(bins["model"]) == {"combined", "core_shell"}
    assert "distance_map_2d" in result.arrays and "combined_impedance" in result.arrays
    print(f"\n2D from 3D: slopes {diffusion.get('trend_slope_ev')}")
    files = write_particle_figures(tmp_path, {**arrays, **result.arrays}, result.tables,
                                   {"particles": result.metadata})  # fmt: skip
    assert any(f.name.startswith("particles_network") and f.stat().st_size > 20_000 for f in files)
    without = ParticleStatistics()(arrays, context).metadata["diffusion"]["unavailable"]
    assert "combined" in without  # what the registration adds: carbon, hence e- distances


def test_registered_phases_of_another_pixel_size_are_refused(scene):
    volume, arrays, context = scene
    other = MapContext("run-2d", {"pixel_size_um": 0.05}, context.energies, context.absorbance)
    with pytest.raises(ValueError, match=r"0\.1 um voxels but run run-2d 0\.05 um pixels"):
        ParticleStatistics(phase_source=registered_phase_source(volume))(arrays, other)
