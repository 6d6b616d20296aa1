"""The analysis worker as its own process: RunEngine -> 0MQ proxy -> worker -> tiled.

One stack for the module, all real and on 127.0.0.1: the session's tiled server
(a child process), the stock ``bluesky-0MQ-proxy``, ``ssb-beamline analyze --zmq``
as a subprocess, and a simulated beamline publishing its documents over 0MQ while
also analysing in-process, so that both results of one run can be compared.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from served import zmq_proxy

from ssb_beamline.profiles.simulated import simulated_beamline
from ssb_beamline.profiles.worker import AnalysisWorker
from ssb_beamline.sim_devices.factory import MotionConfig
from ssb_beamline.sim_devices.phantom import PhantomConfig
from ssb_beamline.storage import open_store, read_results, result_versions
from ssb_beamline.storage.results import complete_versions

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PHANTOM = PhantomConfig(shape=(48, 48), n_particles=3, radius_range_um=(0.8, 1.6), min_gap_um=0.3)
FAST = MotionConfig(energy_velocity_ev_s=2000.0, zp_velocity_mm_s=50.0, det_velocity_mm_s=2000.0)
RESULT_TIMEOUT_S = 180.0


class WorkerProcess:
    """``ssb-beamline analyze --zmq`` in a subprocess; ``start`` waits until it listens."""

    def __init__(self, zmq: str, tiled_uri: str, api_key: str, data_dir: Path) -> None:
        self.args = [sys.executable, "-m", "ssb_beamline.cli", "-v", "analyze", "--zmq", zmq,
                     "--tiled", tiled_uri, "--data-dir", str(data_dir),
                     "--recover-last", "0"]  # fmt: skip
        self.env = {**os.environ, "SSB_TILED_API_KEY": api_key, "COLUMNS": "400"}
        self.log = data_dir / "worker.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> None:
        self.process = subprocess.Popen(
            self.args, env=self.env, stdout=subprocess.PIPE, stderr=self.log.open("ab"),
            text=True,
        )  # fmt: skip
        ready = threading.Event()

        def read() -> None:
            for line in self.process.stdout:
                if "listening on" in line:
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(timeout):
            self.stop()
            pytest.fail(f"the worker did not start; its log:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture(scope="module")
def tiled_server(tmp_path_factory):
    """This module's own tiled server (overrides the session's): several processes write
    to it at once, and what other modules left on a shared server must not slow them."""
    from ssb_beamline.storage import EmbeddedTiledServer

    with EmbeddedTiledServer(tmp_path_factory.mktemp("worker-tiled")) as server:
        yield server


@pytest.fixture(scope="module")
def stack(tiled_server, tmp_path_factory):
    with zmq_proxy() as (pin, pout):
        worker = WorkerProcess(
            f"127.0.0.1:{pout}", tiled_server.url, tiled_server.api_key,
            tmp_path_factory.mktemp("worker-data"),
        )  # fmt: skip
        session = None
        try:
            worker.start()
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("SSB_TILED_API_KEY", tiled_server.api_key)
                session = simulated_beamline(
                    tiled_uri=tiled_server.url, detector_dir=tiled_server.layout.detector,
                    data_dir=tmp_path_factory.mktemp("session-data"), phantom=PHANTOM,
                    zmq_publish=f"127.0.0.1:{pin}", motion=FAST, suspenders=False,
                )  # fmt: skip
            yield session, worker
        finally:
            if session is not None:
                session.close()
            worker.stop()


def by_worker(metadata: dict) -> bool:
    return (metadata.get("analysed_by") or {}).get("process") == "worker"


def worker_versions(results, uid: str, *, timeout: float = RESULT_TIMEOUT_S) -> list[str]:
    """The versions of ``uid``'s results stored (completely) by the worker, once there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = complete_versions(results, uid, by_worker)
        if found:
            return found
        time.sleep(0.25)
    pytest.fail(f"the worker stored no results for run {uid} within {timeout} s")


def in_process_result(session, uid: str):
    """The run's results from the session's own live analysis (stored before run() returns)."""
    (version,) = complete_versions(session.store.results, uid, lambda md: not by_worker(md))
    result = read_results(session.store.results, uid, version)
    assert result.metadata["source"] == "live"
    return result


def assert_same_maps(live, worker) -> None:
    assert set(worker.arrays) == set(live.arrays)
    for key, array in live.arrays.items():
        np.testing.assert_array_equal(worker.arrays[key], array, err_msg=key)
    for key, coord in live.coords.items():
        np.testing.assert_array_equal(worker.coords[key], coord, err_msg=key)


def test_worker_maps_equal_the_in_process_maps(stack):
    session, worker = stack
    (uid,) = session.run(session.xanes("quick"))
    (version,) = worker_versions(session.store.results, uid)
    time.sleep(1.0)  # a duplicate would come right after
    assert len(worker_versions(session.store.results, uid)) == 1
    live = in_process_result(session, uid)
    stored = read_results(session.store.results, uid, version)
    assert stored.metadata["recovered_from_tiled"] is False, worker.log.read_text()[-4000:]
    assert_same_maps(live, stored)  # bit-identical: same code, same frames
    links = session.store.raw[uid].metadata["results"]
    assert links["latest"].startswith(f"results/{uid}/v")
    assert set(links["versions"]) <= set(result_versions(session.store.results, uid))


def test_a_worker_killed_mid_run_completes_the_run_from_tiled_once(stack, tmp_path):
    session, worker = stack
    state = Path(worker.args[worker.args.index("--data-dir") + 1]) / "worker" / "worker-state.json"
    seen: dict[str, str] = {}
    primary = {"n": 0}

    def kill_then_restart(name: str, doc: dict) -> None:
        if name == "start":
            seen["uid"] = doc["uid"]
        elif name == "descriptor" and doc["name"] == "primary":
            seen["primary"] = doc["uid"]
        elif name == "event" and doc["descriptor"] == seen.get("primary"):
            primary["n"] += 1
            if primary["n"] == 3:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:  # the worker has begun this run
                    if (
                        state.exists()
                        and seen["uid"] in json.loads(state.read_text())["in_progress"]
                    ):
                        break
                    time.sleep(0.05)
                worker.kill()
                worker.start()

    token = session.RE.subscribe(kill_then_restart)
    try:
        (uid,) = session.run(session.xanes("quick"))
    finally:
        session.RE.unsubscribe(token)
    assert worker.process.returncode is None  # the restarted worker
    versions = worker_versions(session.store.results, uid)
    time.sleep(1.0)
    assert worker_versions(session.store.results, uid) == versions
    assert len(versions) == 1, versions  # stored once
    stored = read_results(session.store.results, uid, versions[0])
    assert stored.metadata["recovered_from_tiled"] is True
    assert set(stored.metadata["contents"]) <= set(session.store.results[uid][versions[0]])
    assert_same_maps(in_process_result(session, uid), stored)
    assert uid not in json.loads(state.read_text())["in_progress"]


def test_on_start_a_worker_analyses_closed_runs_without_results_once(tiled_server, tmp_path):
    quiet = simulated_beamline_without_analysis(tiled_server, tmp_path)
    try:
        (uid,) = quiet.run(quiet.xanes("quick"))
    finally:
        quiet.close()
    assert result_versions(quiet.store.results, uid) == []
    store = open_store(tiled_server.url, api_key=tiled_server.api_key, data_dir=tmp_path)
    for state in ("state", "state", "fresh-state"):  # restarted; then a worker new to it
        worker = AnalysisWorker(store, tmp_path / state, recover_last=1)
        try:
            assert worker.wait_idle(RESULT_TIMEOUT_S)
        finally:
            worker.close()
    (version,) = result_versions(store.results, uid)  # analysed once, by the first
    assert store.results[uid][version].metadata["recovered_from_tiled"] is True
    assert store.raw[uid].metadata["results"]["latest"] == f"results/{uid}/{version}"


def simulated_beamline_without_analysis(tiled_server, data_dir: Path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SSB_TILED_API_KEY", tiled_server.api_key)
        return simulated_beamline(
            tiled_uri=tiled_server.url, detector_dir=tiled_server.layout.detector,
            data_dir=data_dir, phantom=PHANTOM, live_analysis=False, motion=FAST,
            suspenders=False,
        )  # fmt: skip
