"""Replay against a stock ``tiled serve config`` server started from the shipped config."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from served import free_port, wait_until_healthy

from ssb_beamline.plans.energy_grids import NI_K_EDGE_REGIONS_EV, edge_grid
from ssb_beamline.profiles.replay import replay_runs
from ssb_beamline.profiles.simulated import simulated_beamline
from ssb_beamline.sim_devices.factory import MotionConfig
from ssb_beamline.sim_devices.phantom import PhantomConfig
from ssb_beamline.storage import array_batch, read_results, result_versions
from ssb_beamline.storage.replay import run_documents
from ssb_beamline.storage.server_config import (
    TILED_API_KEY_ENV,
    TILED_URI_ENV,
    DataLayout,
    write_server_config,
)

pytestmark = pytest.mark.slow

PHANTOM = PhantomConfig(shape=(96, 96), n_particles=6, radius_range_um=(0.8, 2.0))
#: Axes that move (almost) at once: the test is about storage, not motion.
FAST_MOTION = MotionConfig(
    energy_velocity_ev_s=1e4, energy_settle_s=0.0, zp_velocity_mm_s=1e3,
    det_velocity_mm_s=1e4, optics_settle_s=0.0, sample_velocity_um_s=1e7, shutter_time_s=0.0,
)  # fmt: skip
#: A short Ni K-edge scan: 15 energies (3 pre-edge, 9 edge, 3 post-edge).
GRID = edge_grid(*NI_K_EDGE_REGIONS_EV, n_pre=3, n_edge=9, n_post=3)
TILED = Path(sys.executable).with_name("tiled")
#: A ceiling for a hung start only: under two loaded cores a cold start took over 90 s.
STARTUP_TIMEOUT_S = 300.0


@pytest.fixture
def stock_server(tmp_path, monkeypatch):
    """``tiled serve config`` on the YAML the project ships; yields (uri, key, layout)."""
    if not TILED.exists():
        pytest.skip(f"no tiled command next to {sys.executable}")
    layout = DataLayout(tmp_path / "server").create()
    config = write_server_config(layout, tmp_path / "tiled.yml")
    key = secrets.token_hex(16)
    port = free_port()
    log = tmp_path / "tiled.log"
    env = {**os.environ, "TILED_SINGLE_USER_API_KEY": key}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(TILED), "serve", "config", str(config), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_until_healthy(process, port, log.read_text, STARTUP_TIMEOUT_S, "tiled serve config")
        uri = f"http://127.0.0.1:{port}/api/v1"
        monkeypatch.setenv(TILED_API_KEY_ENV, key)
        monkeypatch.delenv(TILED_URI_ENV, raising=False)
        yield uri, key, layout
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_replay_from_a_stock_tiled_server_equals_the_live_run(stock_server, tmp_path, monkeypatch):
    uri, _, layout = stock_server
    # the port was the project's server's before (CI met this): the client must find out
    monkeypatch.setitem(array_batch._OFFERED, f"{uri}/", True)
    beamline = simulated_beamline(
        tiled_uri=uri,
        data_dir=tmp_path / "client",
        detector_dir=layout.detector,
        phantom=PHANTOM,
        motion=FAST_MOTION,
    )
    try:
        (uid,) = beamline.run(beamline.xanes(GRID, n_dark=2))
        live = beamline.outcomes[-1]
        assert live.ok, live.errors
        assert beamline.journal.pending() == []
        store = beamline.store
        names = [name for name, _ in run_documents(store.raw[uid])]  # the json-seq exporter
        assert names[0] == "start" and names[-1] == "stop"
        # the frames too come from the stock server, over HTTP
        (replayed,) = replay_runs(store, [uid], fill="always")
        assert replayed.ok, replayed.errors
        assert set(replayed.maps) == set(live.maps)
        for name, array in live.maps.items():
            np.testing.assert_array_equal(replayed.maps[name], array, err_msg=name)
        assert result_versions(store.results, uid) == ["v1", "v2"]
        stored = read_results(store.results, uid, "v2")
        assert stored.metadata["source"] == "replay"
        np.testing.assert_array_equal(stored.arrays["soc"], live.maps["soc"])
    finally:
        beamline.close()
    assert array_batch._OFFERED[f"{uri}/"] is False
    response = httpx.get(f"{uri}/search/", timeout=5, trust_env=False)
    assert response.status_code == 401  # the stock server requires the key too
