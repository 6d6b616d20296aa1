"""Bad input to the 3D network analysis: a clear message naming the fix, nothing stored.

The callback gets the volumes a ``TomoLiveAnalysis`` would hold at the stop of a
3D XANES run (simulated here from a small network phantom) and a recording sink.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ssb_beamline.analysis.segmentation3d import PhaseVolume
from ssb_beamline.callbacks.network3d_live import Network3DLive
from ssb_beamline.sim_devices.network_phantom3d import NetworkPhantomConfig, make_network_phantom
from ssb_beamline.sim_devices.phantom3d import Phantom3DConfig
from ssb_beamline.sim_devices.refraction import phase_attenuation_per_um

VOX = 0.1


class RecordingSink:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def publish(self, run_uid, arrays, *, units, metadata, tables=None, chunks=None) -> str:
        self.calls.append(dict(arrays=arrays, units=units, metadata=metadata, tables=tables))
        return f"results/{run_uid}/v{len(self.calls)}"


@pytest.fixture(scope="module")
def run_volumes():
    cfg = NetworkPhantomConfig(base=Phantom3DConfig(
        shape=(24, 40, 40), radius_range_um=(0.5, 0.8), n_particles=4, touching_fraction=0.0,
        carbon_thickness_um=0.4, seed=2))  # fmt: skip
    ph = make_network_phantom(cfg).phantom
    energies = np.array([8300.0, 8390.0])
    stack = []
    for e in energies:
        a, b, mu_sse, mu_c = phase_attenuation_per_um(e)
        mu = np.zeros(ph.shape, np.float32)
        nmc = ph.phases == 1
        mu[nmc] = a + b * ph.soc[nmc]
        mu[ph.phases == 2], mu[ph.phases == 3] = mu_sse, mu_c
        stack.append(mu)
    return ph, {"attenuation": np.stack(stack), "energies": energies,
                "edge_energy": ph.edge_energy}  # fmt: skip


def run(volumes, **options):
    tomo = SimpleNamespace(outcome=SimpleNamespace(volumes=volumes), pixel_size_um=VOX)
    sink = RecordingSink()
    cb = Network3DLive(tomo, sink=sink, **options)
    cb("start", {"uid": "run-1", "plan_name": "xanes_tomo_scan", "time": 0.0})
    cb("stop", {"uid": "s", "run_start": "run-1", "exit_status": "success", "time": 1.0})
    return cb.outcome, sink


def test_good_run_is_stored_once_with_units(run_volumes):
    ph, volumes = run_volumes
    outcome, sink = run(volumes, phase_volume=PhaseVolume(ph.phases, VOX, {"method": "truth"}))
    assert outcome.ok, outcome.errors
    (call,) = sink.calls
    assert call["arrays"]["network_combined"].shape == ph.shape
    assert call["units"]["network_li_distance_um"] == "um"
    assert call["metadata"]["kind"] == "network3d" and "impedance_bins" in call["tables"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("shape", "phase volume has shape (24, 40, 39) but the edge-energy volume"),
        ("voxel", "voxel size 0.2 um differs from the XANES volume's 0.1 um"),
        ("no_sse", "no SSE voxel: Li+ distances need NMC-SSE contacts"),
        ("no_carbon", "no CARBON voxel: e- distances need NMC-carbon contacts"),
        ("no_post_edge", "no energy above the Ni K-edge (above 8348 eV)"),
        ("density_shape", "electron_density has shape (24, 40, 39), the attenuation volumes"),
    ],
)
def test_bad_input_names_the_problem_and_stores_nothing(run_volumes, change, message):
    ph, volumes = run_volumes
    phases, vox, vols = ph.phases.copy(), VOX, dict(volumes)
    if change == "shape":
        phases = phases[..., :-1]
    elif change == "voxel":
        vox = 0.2
    elif change == "no_sse":
        phases[phases == 2] = 0
    elif change == "no_carbon":
        phases[phases == 3] = 0
    options = {"phase_volume": PhaseVolume(phases, vox, {})}
    if change == "no_post_edge":
        vols["energies"] = np.array([8300.0, 8340.0])
        options = {}
    elif change == "density_shape":  # a holotomography volume not registered to this grid
        options = {"electron_density": ph.electron_density[..., :-1]}
    outcome, sink = run(vols, **options)
    assert not outcome.ok and sink.calls == []
    (error,) = outcome.errors
    assert message in error, error
    assert "Traceback" not in error
