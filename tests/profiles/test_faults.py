"""Faults during acquisition: the tiled server dies mid-scan and nothing is lost."""

from __future__ import annotations

import numpy as np
import pytest

from ssb_beamline.profiles.replay import replay_runs
from ssb_beamline.profiles.simulated import simulated_beamline
from ssb_beamline.sim_devices.phantom import PhantomConfig
from ssb_beamline.storage import EmbeddedTiledServer, open_store
from ssb_beamline.storage.journal import sync_pending

pytestmark = pytest.mark.slow

PHANTOM = PhantomConfig(shape=(96, 96), n_particles=6, radius_range_um=(0.8, 2.0))


def test_server_killed_mid_scan_loses_nothing(tmp_path):
    beamline = simulated_beamline(data_dir=tmp_path, phantom=PHANTOM)
    server = beamline.store.server
    events = []

    def kill_the_server(name, doc):
        if name == "event":
            events.append(doc)
            if len(events) == 30:  # 5 darks + 21 flats, then the 4th image
                server.process.kill()

    beamline.RE.subscribe(kill_the_server)
    try:
        (uid,) = beamline.run(beamline.xanes("quick"))
        assert server.process.poll() is not None  # it really died mid-scan
        assert len(events) == 5 + 21 + 21 + 2  # the acquisition went on to the end
        assert beamline.journal.pending() == [uid]
        live = beamline.outcomes[-1]
        assert live.maps is not None  # analysed live; only its publishing failed
        assert any("publish" in e or "Error" in e for e in live.errors)
        # tiled comes back (same data directory and port); the journal is written to it
        with EmbeddedTiledServer(tmp_path, port=server.port) as restarted:
            store = open_store(restarted.url, api_key=restarted.api_key)
            assert sync_pending(store.raw, beamline.journal) == [uid]
            assert beamline.journal.pending() == []
            run = store.raw[uid]
            assert run.metadata["stop"]["exit_status"] == "success"
            assert run["primary"][run.metadata["start"]["detector_key"]].shape[0] == 21
            (replayed,) = replay_runs(store, [uid])
            assert replayed.ok, replayed.errors
            for key, array in live.maps.items():
                np.testing.assert_array_equal(replayed.maps[key], array, err_msg=key)
    finally:
        beamline.close()
