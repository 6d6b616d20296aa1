"""A PostgreSQL outage mid-scan: the journal and ``sync`` recover the run (issue 14).

The tiled server (a child process) stays up; its catalog database is stopped with
``pg_ctl stop -m immediate`` once the first, the 5th or the last image of a real
scan is journaled, so tiled answers every write with an error until PostgreSQL
is started again. (The journal is written on the writer's thread, which may lag:
at the last image the live results may be stored already, and only their link
from the run fails.) The
scan must end normally with its maps analysed live; after the restart, ``ssb-beamline
sync`` must leave the run closed with every event exactly once and its results
stored once, equal to the live maps and linked from the run, exactly as after
a tiled outage (``tests/profiles/test_faults.py``). The throwaway cluster keeps
``synchronous_commit`` on, as a facility's does: a commit PostgreSQL acknowledged
survives the stop.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter

import numpy as np
import pytest
import stamina

from ssb_beamline.cli import main
from ssb_beamline.plans import ni_k_edge_grid
from ssb_beamline.profiles.simulated import simulated_beamline
from ssb_beamline.sim_devices.factory import MotionConfig
from ssb_beamline.sim_devices.phantom import PhantomConfig
from ssb_beamline.storage import open_store, read_results, result_versions
from ssb_beamline.storage.catalog_db import CATALOG_URI_ENV
from ssb_beamline.storage.result_journal import ResultJournal
from ssb_beamline.storage.server_config import TILED_API_KEY_ENV

pytestmark = pytest.mark.slow

PHANTOM = PhantomConfig(shape=(48, 48), n_particles=4, radius_range_um=(0.8, 1.5))
ENERGIES = ni_k_edge_grid("quick")[[0, 3, 5, 6, 7, 8, 9, 10, 11, 12, 15, 17, 20]].tolist()
FAST = MotionConfig(energy_velocity_ev_s=500.0, zp_velocity_mm_s=20.0, det_velocity_mm_s=1000.0)


def _stream_counts(journal, uid) -> Counter:
    streams, counts = {}, Counter()
    for line in journal.path(uid, synced=True).read_text().splitlines():
        record = json.loads(line)
        name, doc = record["name"], record["doc"]
        if name == "descriptor":
            streams[doc["uid"]] = doc["name"]
        elif name == "event":
            counts[streams[doc["descriptor"]]] += 1
    return counts


@pytest.mark.parametrize("at_image", [1, 5, len(ENERGIES)], ids=["first", "fifth", "last"])
def test_postgresql_stopped_mid_scan_sync_recovers_the_run(
    tmp_path, postgres_cluster, monkeypatch, capsys, at_image
):
    monkeypatch.setenv(CATALOG_URI_ENV, postgres_cluster.new_database("outage"))
    with stamina.set_testing(True, attempts=1):
        beamline = simulated_beamline(
            data_dir=tmp_path / "data", phantom=PHANTOM, motion=FAST, exposure_time=0.005
        )
    stopped = []
    append, images = beamline.journal.append, Counter()

    def watched(uid, name, doc):
        append(uid, name, doc)
        if name == "event":
            images[doc["descriptor"]] += 1
            if not stopped and max(images.values()) == at_image:
                postgres_cluster.stop_now()  # PostgreSQL dies; tiled stays up
                stopped.append(True)

    try:
        monkeypatch.setattr(beamline.journal, "append", watched)
        with stamina.set_testing(True, attempts=1):
            (uid,) = beamline.run(beamline.xanes(ENERGIES, n_dark=2))
        monkeypatch.undo()
        assert stopped, "PostgreSQL was never stopped"
        live = beamline.outcomes[-1]
        assert live.run_uid == uid and live.maps is not None  # analysed live regardless
        assert uid in beamline.journal.pending()  # tiled could not take the run
        postgres_cluster.start()
        server = beamline.store.server
        assert server.process.poll() is None  # the tiled server lived through the outage

        monkeypatch.setenv(TILED_API_KEY_ENV, server.api_key)
        data_dir = str(server.layout.root)
        assert main(["sync", "--tiled", server.url, "--data-dir", data_dir]) == 0
        out = capsys.readouterr().out
        assert "not synced" not in out, out
        assert beamline.journal.pending() == []
        assert ResultJournal(beamline.journal.directory / "results").pending() == []

        store = open_store(server.url, api_key=server.api_key, data_dir=data_dir)
        run = store.raw[uid]
        assert run.metadata["stop"]["exit_status"] == "success"
        counts = _stream_counts(beamline.journal, uid)
        assert counts["primary"] == len(ENERGIES)
        for stream, n in counts.items():  # every journaled event once, in order
            seq = np.asarray(run[stream]["seq_num"].read()).tolist()
            assert seq == list(range(1, n + 1)), (stream, seq)
        assert run.metadata["stop"]["num_events"] == dict(counts)
        (version,) = result_versions(store.results, uid)  # stored once
        assert run.metadata["results"]["latest"] == f"results/{uid}/{version}"  # linked
        stored = read_results(store.results, uid)
        for key, array in live.maps.items():
            np.testing.assert_array_equal(stored.arrays[key], array, err_msg=key)
    finally:
        if postgres_cluster.port and stopped:
            with contextlib.suppress(RuntimeError):  # already running
                postgres_cluster.start()  # for the tests after this one
        beamline.close()
