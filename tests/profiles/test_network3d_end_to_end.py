"""End to end: a 3D XANES run of the network phantom, the network model live, then replayed.

Real RunEngine, simulated tomography devices, the project's tiled server over HTTP.
Phantom 24 x 40 x 40 voxels (0.1 um), 5 NMC particles, SSE, graphite and fibres.
First a holotomography run of the same field of view (61 angles, one distance,
Paganin): its electron density is registered to the 3D XANES run (same phantom,
margin and pixel size, so the same grid).  Then the 3D XANES run (11 energies, 3 eV
steps through the Ni K-edge, x 41 angles, 0.05 s, 10 flats per energy: the documented
acquisition ``NETWORK_ACQUISITION``, chosen from the pass rate over noise draws in
``benchmarks/bench_network3d_noise.py``): NMC from its edge jump, pore / solid from
the electron density, SSE / carbon from the absorption per electron.  Measured
(this phantom, live reconstructions): Dice NMC 0.99, SSE 0.97, carbon 0.84; from
absorption alone carbon is 0.06 (contrast to noise ~1.4 at 0.02 s: carbon absorbs
~0.0009 /um at 8.3 keV, the pore noise of one energy's FBP is ~0.006 /um).  The
replay reads the frames from tiled (``fill="always"``) and the density from the
stored holotomography result (``holo_uid``).  Combined-impedance trend of the edge
energy (edge of the reference mixture fitted to each bin's mean spectrum,
watershed-split particles, SSE flecks in the band around NMC dropped, SSE across a
pore gap too thin to resolve made pore: ``band_rule="spill"``): the primary slope
is the ``1 / se^2``-weighted line through the shared-background edges
(``analysis.network3d_weights``), compared with the truth's bins weighted alike:
combined 0.334 against 0.427 (-22 %), core-shell 0.146 against 0.156 (-7 %).  Other
lines of this run: a background line per bin, weighted, 0.311 (-27 %) and 0.165
(+6 %); unweighted 0.316 and 0.179.  One draw: on segmented phases seed 2's combined
trend is still biased -22 % noise-free (the reconstruction's resolution plus what
the segmentation still misses), so 88 % of such runs are within 30 % with this line
(62 % with the per-bin line; ``benchmarks/bench_network3d_estimator.py --segmented
--holo``).  Numbers printed (``pytest -s``).
"""

from __future__ import annotations

import numpy as np
import pytest

from ssb_beamline.analysis.network3d import network_model_3d
from ssb_beamline.analysis.network3d_weights import weighted_trend
from ssb_beamline.profiles.network3d import (
    NETWORK_ACQUISITION,
    network_2d_from_3d,
    registered_holotomography,
    registered_xanes_2d,
    replay_network3d,
    simulated_network_session,
)
from ssb_beamline.report.run_figures import report_figures
from ssb_beamline.sim_devices.network_phantom3d import NetworkPhantomConfig, make_network_phantom
from ssb_beamline.sim_devices.phantom3d import Phantom3DConfig
from ssb_beamline.storage import read_results, result_versions

pytestmark = pytest.mark.slow

CONFIG = NetworkPhantomConfig(base=Phantom3DConfig(
    shape=(24, 40, 40), radius_range_um=(0.5, 0.8), n_particles=5, touching_fraction=0.0,
    carbon_thickness_um=0.4, seed=2))  # fmt: skip
ENERGIES = [8300.0, 8320.0, 8331.0, 8334.0, 8337.0, 8340.0, 8343.0, 8346.0, 8349.0, 8390.0,
            8440.0]  # fmt: skip


@pytest.fixture(scope="module")
def live(tiled_server):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SSB_TILED_API_KEY", tiled_server.api_key)
        net = make_network_phantom(CONFIG)
        folder = tiled_server.layout.detector / "net3d"
        holo_uid, density = registered_holotomography(
            net, tiled_uri=tiled_server.url, detector_dir=folder
        )
        session = simulated_network_session(
            net, tiled_uri=tiled_server.url, detector_dir=folder,
            network_options={"electron_density": density, "electron_density_uid": holo_uid},
        )  # fmt: skip
        try:
            acq = NETWORK_ACQUISITION  # 0.05 s, 10 flats per energy, 41 angles: see there
            plan = session.xanes_tomo(ENERGIES, (0.0, 180.0, acq["n_angles"]), mode="step",
                                      exposure_time=acq["exposure_time"], n_dark=1,
                                      n_flat=acq["n_flat"])  # fmt: skip
            (uid,) = session.run(plan)
            session.holo_uid = holo_uid
            yield session, uid
        finally:
            session.close()


@pytest.fixture(scope="module")
def stored_live(live):
    """The live network result (v2), read from tiled once for every test that checks it."""
    session, uid = live
    return read_results(session.store.results, uid, result_versions(session.store.results,
                                                                    uid)[1])  # fmt: skip


def test_live_network_results_are_stored_with_units_and_coords(live, stored_live):
    session, uid = live
    (outcome,) = session.network_outcomes
    assert outcome.ok, (outcome.errors, session.outcomes[-1].errors)
    versions = result_versions(session.store.results, uid)
    assert len(versions) == 2  # the reconstruction, then the network model
    stored = stored_live
    assert stored.version == versions[-1]
    md = stored.metadata
    assert md["kind"] == "network3d" and md["source"] == "live"
    assert md["segmentation"]["contrast"] == "absorption per electron"
    assert md["segmentation"]["electron_density_run"] == session.holo_uid
    assert md["units"]["network_li_distance_um"] == "um"
    phases = stored.arrays["phases"]
    assert phases.shape == session.phantom.shape
    node = session.store.results[uid][versions[-1]]
    assert {"z", "y", "x"} <= set(node.keys()) or "dims" in str(node["phases"].metadata)
    truth = session.phantom.phases
    dice = {k: float(2 * ((phases == k) & (truth == k)).sum() / ((phases == k).sum()
                                                                 + (truth == k).sum()))
            for k in (1, 2, 3)}  # fmt: skip
    print(
        f"\nlive: Dice from the reconstruction {dice}; slopes {md['slopes_ev_per_unit_impedance']}"
    )
    assert dice[1] >= 0.9 and dice[2] >= 0.9 and dice[3] >= 0.7  # 0.99 / 0.97 / 0.84 measured
    assert md["segmentation"]["others"]["carbon_resolved"]
    # the trends against the truth's (truth phases, noise-free edge energies)
    # (the live slope is the 1/se^2-weighted line: the truth's bins get the same weights)
    ph = session.phantom
    truth = network_model_3d(ph.phases, ph.edge_energy, voxel_size_um=md["voxel_size_um"])
    live_bins = stored.tables["impedance_bins"]
    weights = md["trend_weights_column"]  # the errors the live line was weighted with
    truth_slopes = {name: weighted_trend(truth.bins[truth.bins["model"] == name],
                                         "edge_energy_mean",
                                         live_bins[live_bins["model"] == name][
                                             weights].to_numpy())
                    for name in ("combined", "core_shell")}  # fmt: skip
    live_slopes = md["slopes_ev_per_unit_impedance"]
    print(f"trend slopes eV/unit: live {live_slopes}, truth weighted alike {truth_slopes}, "
          f"truth unweighted {truth.slopes}")  # fmt: skip
    assert md["bin_edge_energy"].startswith("half-step edge of the reference mixture")
    assert md["partial_volume_correction"] == "none"  # the live default (PVC_DEFAULT)
    assert md["trend_slope"].startswith("straight line through the bins weighted by 1/se^2")
    assert md["trend_slope_reading"] == "lcf_shared weighted"  # analysis.network3d_weights
    for name in ("combined", "core_shell"):
        m, t = live_slopes[name], truth_slopes[name]
        assert m == pytest.approx(live_slopes[f"{name}_shared_weighted"])
        assert t == pytest.approx(truth.slopes[name], rel=0.1)  # the weights barely move it
        assert np.sign(m) == np.sign(t) and abs(m - t) <= 0.3 * abs(t), (name, m, t)


def test_2d_from_the_registered_3d_run_gives_the_combined_model(live, tmp_path):
    session, uid = live
    outcome = session.network_outcomes[-1]
    result, files = network_2d_from_3d(session.outcomes[-1].volumes, outcome.phases, uid, tmp_path)
    diffusion = result.metadata["diffusion"]
    assert "combined" not in diffusion["unavailable"], diffusion["unavailable"]
    assert set(result.tables["impedance_bins"]["model"]) == {"combined", "core_shell"}
    assert "distance_map_2d" in result.arrays
    network = [f for f in files if f.name.startswith("particles_network")]
    assert network and network[0].stat().st_size > 20_000
    print(f"\n2D from 3D: {result.metadata['n_particles']} particles, slopes "
          f"{diffusion.get('trend_slope_ev')}")  # fmt: skip


def test_replay_reproduces_the_network_results(live, stored_live):
    session, uid = live
    tomo, net = replay_network3d(session.store, uid, fill="always", holo_uid=session.holo_uid)
    assert tomo.ok and net.ok, (tomo.errors, net.errors)
    versions = result_versions(session.store.results, uid)
    live_res = stored_live
    replayed = read_results(session.store.results, uid, versions[-1])
    assert replayed.metadata["source"] == "replay" and len(versions) == 4
    for key in ("phases", "network_li_distance_um", "network_e_distance_um",
                "network_combined", "network_core_shell"):  # fmt: skip
        np.testing.assert_allclose(replayed.arrays[key], live_res.arrays[key], rtol=1e-5,
                                   atol=1e-5, equal_nan=True, err_msg=key)  # fmt: skip
    assert replayed.metadata["slopes_ev_per_unit_impedance"] == pytest.approx(
        live_res.metadata["slopes_ev_per_unit_impedance"], rel=1e-4, nan_ok=True)  # fmt: skip


def test_report_draws_the_stored_network_result(live, stored_live, tmp_path):
    _, uid = live
    files = report_figures(tmp_path, stored_live, f"run {uid[:8]}")
    assert [f.name for f in files] == ["network3d.png"] and files[0].stat().st_size > 50_000


def test_replay_with_a_run_without_electron_density_is_refused(live):
    session, uid = live
    n = len(result_versions(session.store.results, uid))
    with pytest.raises(ValueError, match="has no stored electron density; pass the uid of an"):
        replay_network3d(session.store, uid, fill="always", holo_uid=uid)
    assert len(result_versions(session.store.results, uid)) == n  # nothing stored


def test_a_separate_2d_xanes_run_takes_its_phases_from_the_3d_run(live, tiled_server, tmp_path):
    session, uid = live
    phases = session.network_outcomes[-1].phases
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SSB_TILED_API_KEY", tiled_server.api_key)
        uid_2d, outcome = registered_xanes_2d(
            session.phantom, phases, uid, ENERGIES, tiled_uri=tiled_server.url,
            detector_dir=tiled_server.layout.detector / "net3d-2d",
        )  # fmt: skip
    assert outcome.stored_at and not outcome.errors, outcome.errors
    stored = read_results(session.store.results, uid_2d)
    assert set(stored.tables["impedance_bins"]["model"]) == {"combined", "core_shell"}
    stated = stored.metadata["particles"]["diffusion"]["phases"]
    assert stated["registered_from"] == uid and stated["mode"] == "projection", stated
    files = report_figures(tmp_path, stored, f"run {uid_2d[:8]}")
    network = [f for f in files if f.name.startswith("particles_network")]
    assert network and network[0].stat().st_size > 20_000
