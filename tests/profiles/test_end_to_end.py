"""End to end: RunEngine + simulated TXM + real tiled server over HTTP + live analysis."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from ssb_beamline.analysis.scoring import score_map
from ssb_beamline.callbacks.frames import uri_to_path
from ssb_beamline.profiles.simulated import simulated_beamline
from ssb_beamline.sim_devices.phantom import PhantomConfig
from ssb_beamline.storage import read_results

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def xanes_run(tmp_path_factory):
    """One 41-energy scan of the default 512 x 512 phantom, stored in tiled."""
    beamline = simulated_beamline(
        data_dir=tmp_path_factory.mktemp("ssb-data"), phantom=PhantomConfig()
    )
    updates = []
    beamline.on_update = updates.append
    (uid,) = beamline.run(beamline.xanes("standard"))
    yield beamline, uid, updates
    beamline.close()


def test_live_maps_match_the_phantom_truth(xanes_run):
    beamline, uid, _ = xanes_run
    outcome = beamline.outcomes[-1]
    assert outcome.ok, outcome.errors
    stored = read_results(beamline.store.results, uid)
    nmc = beamline.txm.phantom.labels > 0
    edge = score_map(stored.arrays["edge_energy"], beamline.txm.truth_edge_energy_map(), nmc)
    soc = score_map(stored.arrays["soc"], beamline.txm.truth_soc(), nmc)
    assert edge.median_abs_error < 0.3, edge
    assert abs(edge.bias) < 0.05, edge  # the half-step estimator is unbiased (issue 18)
    assert soc.rmse < 0.05, soc


def test_results_sit_next_to_the_run_with_units_and_its_uid(xanes_run):
    beamline, uid, _ = xanes_run
    stored = read_results(beamline.store.results, uid)
    assert stored.version == "v1"
    assert stored.metadata["run_uid"] == uid
    assert stored.metadata["source"] == "live"
    assert stored.metadata["units"]["edge_energy"] == "eV"
    assert stored.arrays["normalized"].shape == (41, 512, 512)
    assert stored.arrays["mask"].dtype == bool
    assert stored.metadata["calibration"]["oxidised_name"] == "LiNiO2"
    estimator = stored.metadata["edge_estimator"]
    assert estimator["half_step"] == "pchip_crossing"
    assert len(estimator["grid"]["energies_ev"]) == 41
    node = beamline.store.results[uid]["v1"]["edge_energy"]
    assert node.metadata["units"] == "eV"


def test_the_edge_estimate_is_updated_while_the_scan_runs(xanes_run):
    beamline, uid, updates = xanes_run
    assert [u.frames_done for u in updates] == list(range(1, 42))
    estimates = [u.edge_energy_median_ev for u in updates if u.edge_energy_median_ev is not None]
    assert len(set(estimates)) >= 2  # refreshed during the scan (at most once a second)
    final = read_results(beamline.store.results, uid).arrays
    median = np.nanmedian(np.where(final["mask"], final["edge_energy"], np.nan))
    assert abs(estimates[-1] - median) < 0.5


def test_every_stream_and_frame_reads_back_intact_from_tiled(xanes_run):
    beamline, uid, _ = xanes_run
    run = beamline.store.raw[uid]
    assert set(run) >= {"dark", "flat", "primary", "baseline"}
    start = run.metadata["start"]
    assert start["plan_name"] == "xanes_scan"
    key = start["detector_key"]
    expected = {"dark": start["n_dark"], "flat": 41, "primary": 41}
    docs = list(_stream_resources(beamline, uid))
    for stream, n in expected.items():
        frames = run[stream][key].read()
        assert frames.shape == (n, 512, 512)
        assert frames.dtype == np.uint16
        # byte for byte the frames the detector wrote
        on_disk = np.concatenate([_read_h5(d) for d in docs if d["stream"] == stream])
        np.testing.assert_array_equal(frames, on_disk)
    energies = run["primary"][start["energy_key"]].read()
    np.testing.assert_allclose(energies, start["energies_ev"])


def _stream_resources(beamline, uid):
    """(stream, file) of each StreamResource of the run, from the tiled data sources."""
    run = beamline.store.raw[uid]
    key = run.metadata["start"]["detector_key"]
    for stream in ("dark", "flat", "primary"):
        node = run[stream][key]
        for source in node.data_sources():
            for asset in source.assets:
                yield {"stream": stream, "path": uri_to_path(asset.data_uri)}


def _read_h5(doc):
    with h5py.File(doc["path"], "r") as f:
        return f["/entry/data/data"][()]


def test_particle_statistics_are_stored_in_tiled_next_to_the_run(xanes_run):
    """Default phantom (5 touching pairs): the live ParticleStatistics, read back."""
    beamline, uid, _ = xanes_run
    phantom = beamline.txm.phantom
    node = beamline.store.results[uid]["v1"]
    assert node["particles"].structure_family == "table"
    assert node["impedance_bins"].structure_family == "table"
    stored = read_results(beamline.store.results, uid)
    table = stored.tables["particles"]
    md = stored.metadata["particles"]
    assert len(table) == md["n_particles"]
    assert abs(md["n_particles"] - phantom.n_particles) <= 0.05 * phantom.n_particles
    assert len(phantom.touching_pairs) >= 3
    labels = stored.arrays["particle_labels"]
    assert labels.shape == phantom.shape and labels.max() == md["n_particles"]
    assert stored.arrays["phases"].dtype == np.uint8
    for key in ("li_distance_um", "core_shell", "particle_soc"):
        assert stored.arrays[key].shape == phantom.shape
    assert node["li_distance_um"].metadata["units"] == "um"
    # radius: each recovered particle against the truth particle it covers most
    truth = [np.bincount(phantom.labels[labels == k]).argmax() for k in table["label"]]
    error = table["radius_um"].to_numpy() / phantom.particle_radius_um[truth] - 1
    assert np.median(np.abs(error)) < 0.05 and np.mean(np.abs(error) < 0.05) > 0.9
    r = md["statistics"]["correlations"]["soc_mean_vs_radius"]["r"]
    assert r == pytest.approx(phantom.soc_size_pearson_r, abs=0.1)
    assert md["diffusion"]["unavailable"]["e"]  # carbon is not seen in absorption
    assert set(table["size_class"]) == {"small", "large"}
