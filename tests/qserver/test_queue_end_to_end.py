"""A XANES scan through the queue server, all real and on 127.0.0.1.

One stack for the module: redis-server, ``start-re-manager`` with the shipped
startup (simulated beamline, storing into the session's tiled server, live
analysis in-process, documents also published over 0MQ), the stock
``bluesky-0MQ-proxy`` and ``ssb-beamline analyze --zmq`` (the analysis worker).
Scans are submitted with bluesky-queueserver-api, as a beamline user would.
"""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from bluesky_queueserver_api import BPlan

from ssb_beamline.plans import ni_k_edge_grid
from ssb_beamline.profiles.qserver.sim import sim_phantom
from ssb_beamline.sim_devices.factory import make_sim_txm
from ssb_beamline.storage import open_store, read_results, result_versions

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PHANTOM_PX = 48
ENERGIES = ni_k_edge_grid("quick").tolist()  # 21 energies: the live fit needs 6 in the edge window
DEVICES = ["detector", "energy", "zp_z", "det_z", "sample_x", "shutter", "i0"]
TIMEOUT_S = 300.0


def start_worker(zmq: str, tiled_uri: str, api_key: str, data_dir, timeout: float = 180.0):
    """``ssb-beamline analyze --zmq`` as a subprocess, once it listens."""
    args = [sys.executable, "-m", "ssb_beamline.cli", "-v", "analyze", "--zmq", zmq,
            "--tiled", tiled_uri, "--data-dir", str(data_dir), "--recover-last", "0"]  # fmt: skip
    log = data_dir / "worker.log"
    env = {**os.environ, "SSB_TILED_API_KEY": api_key, "COLUMNS": "400"}
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=log.open("ab"),
                               text=True)  # fmt: skip
    ready = threading.Event()

    def read() -> None:
        for line in process.stdout:
            if "listening on" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(timeout):
        process.kill()
        pytest.fail(f"the analysis worker did not start: {log.read_text()[-3000:]}")
    return process


def wait_for_manager(RM, manager, timeout: float = 120.0) -> None:
    """Until RE Manager answers (it takes a few seconds to start on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            RM.status()
            return
        except RM.RequestTimeoutError:
            if manager.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"RE Manager did not answer: {manager.tail()}")


@pytest.fixture(scope="module")
def tiled_server(tmp_path_factory):
    """This module's own tiled server (overrides the session's): several processes write
    to it at once, and what other modules left on a shared server must not slow them."""
    from ssb_beamline.storage import EmbeddedTiledServer

    with EmbeddedTiledServer(tmp_path_factory.mktemp("qserver-tiled")) as server:
        yield server


@pytest.fixture(scope="module")
def stack(tiled_server, redis_addr, service_tools, tmp_path_factory):
    tools = service_tools
    free_port, stop = tools["free_port"], tools["stop"]
    pin, pout = free_port(), free_port()
    proxy = subprocess.Popen(
        [tools["venv_tool"]("bluesky-0MQ-proxy"),
         "--in-address", f"tcp://127.0.0.1:{pin}", "--out-address", f"tcp://127.0.0.1:{pout}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    worker = manager = RM = None
    try:
        worker = start_worker(f"127.0.0.1:{pout}", tiled_server.url, tiled_server.api_key,
                              tmp_path_factory.mktemp("worker-data"))  # fmt: skip
        folder = tmp_path_factory.mktemp("re-manager")
        manager = tools["REManager"](redis_addr, folder, {
            "SSB_TILED_URI": tiled_server.url,
            "SSB_TILED_API_KEY": tiled_server.api_key,
            "SSB_DETECTOR_DIR": str(tiled_server.layout.detector / f"qserver-{folder.name}"),
            "SSB_DATA_DIR": str(folder / "data"),
            "SSB_SIM_PHANTOM_PX": str(PHANTOM_PX),
            "SSB_ZMQ_PUBLISH": f"127.0.0.1:{pin}",
        })  # fmt: skip
        RM = manager.api()
        wait_for_manager(RM, manager)
        RM.environment_open()
        RM.wait_for_idle(timeout=TIMEOUT_S)
        status = RM.status()
        assert status["worker_environment_exists"], manager.tail()
        store = open_store(tiled_server.url, api_key=tiled_server.api_key,
                           data_dir=folder / "client")  # fmt: skip
        yield RM, store, manager
        store.close()
    finally:
        if RM is not None:
            try:
                RM.environment_close()
                RM.wait_for_idle(timeout=60)
            except Exception:  # the manager is stopped below anyway
                pass
            RM.close()
        if manager is not None:
            manager.stop()
        stop(worker)
        stop(proxy)


def sample_out_um(tmp_path) -> float:
    """``sample_x`` with the sample out: as the startup's simulated TXM computes it."""
    return make_sim_txm(sim_phantom(PHANTOM_PX), directory=tmp_path).sample_out_x_um


def run_item(RM, item: BPlan) -> dict:
    """Add ``item``, run the queue until idle, return the item's history entry."""
    RM.item_add(item)
    RM.queue_start()
    RM.wait_for_idle(timeout=TIMEOUT_S)
    return RM.history_get()["items"][-1]


def results_by(results, uid: str, predicate, manager=None, timeout: float = TIMEOUT_S):
    """The first results of ``uid`` whose metadata pass ``predicate``, once stored."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if manager is not None and f"analysis of run {uid} failed" in manager.tail(200_000):
            pytest.fail(f"the in-process live analysis failed: {manager.tail()}")
        for version in result_versions(results, uid) if uid in results else []:
            if predicate(results[uid][version].metadata):
                return read_results(results, uid, version)
        time.sleep(0.5)
    pytest.fail(f"no matching results for run {uid} within {timeout} s")


def stored_run(raw, uid: str, timeout: float = TIMEOUT_S):
    """The run once the worker's tiled writer has stored its stop document."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if uid in raw and raw[uid].metadata.get("stop"):
            return raw[uid]
        time.sleep(0.5)
    pytest.fail(f"run {uid} was not stored completely in tiled within {timeout} s")


def is_worker(md) -> bool:
    return (md.get("analysed_by") or {}).get("process") == "worker"


def is_in_process(md) -> bool:
    return md.get("source") == "live" and "analysed_by" not in md


@pytest.fixture(scope="module")
def xanes_item(stack, tmp_path_factory):
    RM = stack[0]
    out = sample_out_um(tmp_path_factory.mktemp("txm"))
    entry = run_item(RM, BPlan("xanes_scan", *DEVICES, ENERGIES, sample_out=out, focus="sim",
                               n_dark=2))  # fmt: skip
    return entry, out


def test_a_xanes_scan_through_the_queue_completes_and_is_in_tiled(stack, xanes_item):
    _, store, manager = stack
    entry, _ = xanes_item
    assert entry["result"]["exit_status"] == "completed", (entry["result"], manager.tail())
    (uid,) = entry["result"]["run_uids"]
    run = stored_run(store.raw, uid)
    assert run.metadata["stop"]["exit_status"] == "success"
    assert run.metadata["start"]["plan_name"] == "xanes_scan"
    assert run.metadata["start"]["plan_args"]["focus"] == "sim"
    primary = run["primary"].read()
    assert np.allclose(primary[run.metadata["start"]["energy_key"]], ENERGIES, atol=0.5)
    frames = run["primary"][run.metadata["start"]["detector_key"]].read()
    assert frames.shape == (len(ENERGIES), PHANTOM_PX, PHANTOM_PX)
    live = results_by(store.results, uid, is_in_process, manager)
    assert set(live.arrays) >= {"edge_energy", "soc"}
    assert np.isfinite(live.arrays["edge_energy"]).any()


def test_the_worker_maps_equal_the_in_process_maps(stack, xanes_item):
    store = stack[1]
    entry, _ = xanes_item
    (uid,) = entry["result"]["run_uids"]
    live = results_by(store.results, uid, is_in_process)
    worker = results_by(store.results, uid, is_worker)
    assert set(worker.arrays) == set(live.arrays)
    for key, array in live.arrays.items():  # bit-identical: same code, same frames
        np.testing.assert_array_equal(worker.arrays[key], array, err_msg=key)


def test_a_wrong_type_is_refused_by_the_queue_naming_the_parameter(stack, xanes_item):
    RM, _, _ = stack
    _, out = xanes_item
    item = BPlan("xanes_scan", *DEVICES, ENERGIES, sample_out=out, focus="sim", n_dark="two")
    with pytest.raises(RM.RequestFailedError) as info:
        RM.item_add(item)
    message = str(info.value)
    assert "n_dark" in message
    assert "valid integer" in message


def test_an_unknown_focus_model_fails_the_item_listing_the_known_ones(stack, xanes_item):
    RM, _, _ = stack
    _, out = xanes_item
    entry = run_item(RM, BPlan("xanes_scan", *DEVICES, ENERGIES, sample_out=out,
                               focus="no_such_model", n_dark=2))  # fmt: skip
    result = entry["result"]
    assert result["exit_status"] == "failed"
    assert result["run_uids"] == []
    message = result["msg"] + result.get("traceback", "")
    assert "Unknown focus model 'no_such_model'" in message
    assert "Known focus models: 'sim', 'sim_tomo'" in message
    RM.queue_clear()
