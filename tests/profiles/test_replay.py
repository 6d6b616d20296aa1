"""Replay: archived runs read back from tiled give the results of the live run."""

from __future__ import annotations

import numpy as np
import pytest

from ssb_beamline.profiles.replay import replay_runs
from ssb_beamline.profiles.simulated import simulated_beamline
from ssb_beamline.sim_devices.phantom import PhantomConfig
from ssb_beamline.storage import read_results, result_versions
from ssb_beamline.storage.catalog_db import CATALOG_URI_ENV
from ssb_beamline.storage.replay import ReplayError, run_documents, select_runs

pytestmark = pytest.mark.slow

PHANTOM = PhantomConfig(shape=(96, 96), n_particles=8, radius_range_um=(0.8, 2.5))


@pytest.fixture(scope="module")
def archived(tmp_path_factory, catalog):
    with pytest.MonkeyPatch.context() as env:
        if catalog:  # the embedded server takes its catalog from $SSB_CATALOG_URI
            env.setenv(CATALOG_URI_ENV, catalog)
        data_dir = tmp_path_factory.mktemp("replay")
        beamline = simulated_beamline(data_dir=data_dir, phantom=PHANTOM)
    (uid,) = beamline.run(beamline.xanes("quick", sample={"name": "BLE cathode 7:3:0.3"}))
    yield beamline, uid
    beamline.close()


@pytest.mark.parametrize("fill", ["never", "always"])
def test_replay_equals_the_live_run(archived, fill):
    beamline, uid = archived
    (outcome,) = replay_runs(beamline.store, [uid], fill=fill)
    assert outcome.ok, outcome.errors
    versions = result_versions(beamline.store.results, uid)
    live = read_results(beamline.store.results, uid, "v1")
    replayed = read_results(beamline.store.results, uid, versions[-1])
    assert live.metadata["source"] == "live" and replayed.metadata["source"] == "replay"
    assert set(replayed.arrays) == set(live.arrays)
    for key, array in live.arrays.items():
        np.testing.assert_array_equal(replayed.arrays[key], array, err_msg=key)


def test_reanalysis_adds_versions_and_keeps_the_live_one(archived):
    beamline, uid = archived
    before = result_versions(beamline.store.results, uid)
    replay_runs(beamline.store, [uid])
    after = result_versions(beamline.store.results, uid)
    assert after[: len(before)] == before and len(after) == len(before) + 1
    assert read_results(beamline.store.results, uid, "v1").metadata["source"] == "live"


def test_runs_are_selected_by_uid_prefix_plan_sample_scan_id_and_time(archived):
    beamline, uid = archived
    raw = beamline.store.raw
    start = raw[uid].metadata["start"]
    assert select_runs(raw, [uid[:8]]) == [uid]
    assert uid in select_runs(raw, plan_name="xanes_scan")
    assert uid in select_runs(raw, sample="7:3:0.3")
    assert uid in select_runs(raw, scan_id=start["scan_id"])
    assert uid in select_runs(raw, since=start["time"] - 1, until=start["time"] + 1)
    with pytest.raises(ReplayError, match="No stored run matches"):
        select_runs(raw, plan_name="tomo_scan")
    with pytest.raises(ReplayError, match="No stored run has a uid starting with"):
        select_runs(raw, ["not-a-uid"])
    with pytest.raises(ReplayError, match="not a date/time"):
        select_runs(raw, since="yesterday-ish")


def test_replay_with_original_timing_takes_the_original_time(archived):
    beamline, uid = archived
    start = beamline.store.raw[uid].metadata["start"]["time"]
    stop = beamline.store.raw[uid].metadata["stop"]["time"]
    import time

    t0 = time.perf_counter()
    replay_runs(beamline.store, [uid], speed=4.0, store_results=False)
    elapsed = time.perf_counter() - t0
    assert elapsed >= 0.9 * (stop - start) / 4.0


def test_the_document_stream_is_complete_and_ordered(archived):
    beamline, uid = archived
    names = [name for name, _ in run_documents(beamline.store.raw[uid])]
    assert names[0] == "start" and names[-1] == "stop"
    assert names.count("stream_resource") == 3
    assert names.count("event") >= 5 + 2 * 21
