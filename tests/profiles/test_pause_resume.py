"""Pause, resume, abort, suspenders and Ctrl-C, over the real tiled server: nothing lost.

Every scan runs through `simulated_beamline` against the session's embedded tiled
server; the stored run is then read back from tiled and checked point by point.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from bluesky.utils import RunEngineInterrupted

from ssb_beamline.cli import main
from ssb_beamline.profiles.simulated import simulated_beamline
from ssb_beamline.sim_devices.factory import MotionConfig
from ssb_beamline.sim_devices.faults import (
    FaultSchedule,
    fe_shutter_closure,
    pause_request,
    ring_dump,
)
from ssb_beamline.sim_devices.phantom import PhantomConfig
from ssb_beamline.storage import open_store

pytestmark = pytest.mark.timeout(120)

PHANTOM = PhantomConfig(shape=(64, 64), n_particles=3, radius_range_um=(0.8, 2.0), min_gap_um=0.3)
ENERGIES = [8320.0, 8335.0, 8345.0, 8350.0, 8360.0, 8380.0]
N_DARK = 3
EXPOSURE_S = 0.04
FAST = MotionConfig(energy_velocity_ev_s=500.0, zp_velocity_mm_s=20.0, det_velocity_mm_s=1000.0)


@pytest.fixture(scope="module")
def beamline(tiled_server, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SSB_TILED_API_KEY", tiled_server.api_key)
        session = simulated_beamline(
            tiled_uri=tiled_server.url,
            detector_dir=tiled_server.layout.detector,
            data_dir=tmp_path_factory.mktemp("ssb-journal"),
            phantom=PHANTOM,
            live_analysis=False,
            suspender_options={"sleep_s": 0.2},
            motion=FAST,
        )
    yield session
    session.close()


@pytest.fixture
def primary_events(beamline):
    """Primary-stream events as the RunEngine emits them (appended live)."""
    streams: dict[str, str] = {}
    events: list[dict] = []

    def collect(name: str, doc: dict) -> None:
        if name == "descriptor":
            streams[doc["uid"]] = doc["name"]
        elif name == "event" and streams.get(doc["descriptor"]) == "primary":
            events.append(doc)

    token = beamline.RE.subscribe(collect)
    yield events
    beamline.RE.unsubscribe(token)
    beamline.RE.msg_hook = None
    beamline.inject_faults(None)
    if beamline.RE.state == "paused":  # a failed test must not block the next ones
        beamline.abort("test teardown")


def scan(beamline):
    return beamline.xanes(ENERGIES, exposure_time=EXPOSURE_S, n_dark=N_DARK)


def stored(beamline, uid: str) -> tuple[dict, dict[str, dict]]:
    """The run's stop document and, per stream, what tiled holds (one table read each)."""
    run = beamline.store.raw[uid]
    key = run.metadata["start"]["detector_key"]
    streams = {}
    for name in ("dark", "flat", "primary"):
        node = run[name]
        table = node.base["internal"].read()  # seq_num, time, i0_flux, energy, ...
        frames = node[key].read()
        streams[name] = {
            "seq": table["seq_num"].tolist(),
            "time": table["time"].to_numpy(dtype=float),
            "frames": frames,
            "means": frames.reshape(len(frames), -1).mean(axis=1),
            "i0": table["i0_flux"].to_numpy(dtype=float),
            "energy": table["energy"].tolist() if "energy" in table else None,
        }
    return run.metadata["stop"], streams


def assert_every_point_once(streams: dict[str, dict], n_primary: int = len(ENERGIES)) -> None:
    """Darks, flats and images: each exactly once, in order, frame for frame, beam on."""
    dark, flat, primary = streams["dark"], streams["flat"], streams["primary"]
    assert dark["seq"] == list(range(1, N_DARK + 1))
    assert flat["seq"] == list(range(1, len(ENERGIES) + 1))
    assert flat["energy"] == ENERGIES
    assert primary["seq"] == list(range(1, n_primary + 1))
    assert primary["energy"] == ENERGIES[:n_primary]
    for name, n in (("dark", N_DARK), ("flat", len(ENERGIES)), ("primary", n_primary)):
        assert streams[name]["frames"].shape == (n, *PHANTOM.shape), name
    dark_level = dark["means"].mean()
    for name in ("flat", "primary"):
        # no frame taken with the beam down: beam-off frames sit at the dark level
        assert streams[name]["means"].min() > 50 * dark_level, name
        assert streams[name]["i0"].min() > 0.95, name


def test_pause_mid_scan_then_resume_stores_every_energy_once(beamline, primary_events):
    trigger_seen, armed = threading.Event(), threading.Event()

    def msg_hook(msg) -> None:
        if armed.is_set() and msg.command == "trigger":
            trigger_seen.set()

    def pause_during_the_next_exposure() -> None:
        armed.set()
        trigger_seen.wait(10)
        beamline.RE.request_pause()

    beamline.RE.msg_hook = msg_hook
    beamline.inject_faults(
        FaultSchedule([pause_request(after_events=3, hook=pause_during_the_next_exposure)])
    )
    dropped = beamline.txm.detector.frames_dropped
    with pytest.raises(RunEngineInterrupted):
        beamline.run(scan(beamline))
    assert beamline.RE.state == "paused"
    n_before = len(primary_events)
    assert 3 <= n_before < len(ENERGIES)  # really mid-scan
    (uid,) = beamline.resume()
    stop, streams = stored(beamline, uid)
    assert stop["exit_status"] == "success"
    assert {k: stop["num_events"][k] for k in ("dark", "flat", "primary")} == {
        "dark": N_DARK, "flat": len(ENERGIES), "primary": len(ENERGIES),
    }  # fmt: skip
    assert_every_point_once(streams)
    print(
        f"paused after {n_before} images; frames dropped by the pause: "
        f"{beamline.txm.detector.frames_dropped - dropped}"
    )


def test_pause_then_abort_stores_what_was_taken(beamline, primary_events):
    beamline.inject_faults(FaultSchedule([pause_request(after_events=2)]))
    with pytest.raises(RunEngineInterrupted):
        beamline.run(scan(beamline))
    (uid,) = beamline.abort("operator abort")
    assert beamline.RE.state == "idle" and uid in beamline.aborted
    stop, streams = stored(beamline, uid)
    assert stop["exit_status"] == "abort" and stop["reason"] == "operator abort"
    n = len(streams["primary"]["seq"])
    assert 2 <= n < len(ENERGIES) and n == len(primary_events)
    assert stop["num_events"]["primary"] == n
    assert_every_point_once(streams, n_primary=n)


def test_ring_dump_suspends_the_scan_until_the_beam_is_back(beamline, primary_events):
    schedule = beamline.inject_faults(FaultSchedule([ring_dump(0.6, after_events=3)]))
    t0 = time.monotonic()
    (uid,) = beamline.run(scan(beamline))
    elapsed = time.monotonic() - t0
    assert [f.events for f in schedule.fired] == [3]
    stop, streams = stored(beamline, uid)
    assert stop["exit_status"] == "success"
    assert_every_point_once(streams)
    gaps = np.diff(streams["primary"]["time"])
    assert gaps[2] >= 0.6 and gaps.argmax() == 2  # it waited (only) after image 3
    assert all(not s.tripped for s in beamline.RE.suspenders)
    print(f"ring dump: scan {elapsed:.1f} s, wait after image 3: {gaps[2]:.2f} s")


def test_fe_shutter_closures_suspend_darks_and_images_alike(beamline, primary_events):
    schedule = beamline.inject_faults(
        FaultSchedule(
            [
                fe_shutter_closure(0.4, after_events=1, stream="dark"),
                fe_shutter_closure(0.5, after_events=2, stream="primary"),
            ]
        )
    )
    (uid,) = beamline.run(scan(beamline))
    assert len(schedule.fired) == 2
    stop, streams = stored(beamline, uid)
    assert stop["exit_status"] == "success"
    assert_every_point_once(streams)
    dark_gaps = np.diff(streams["dark"]["time"])
    image_gaps = np.diff(streams["primary"]["time"])
    assert dark_gaps[0] >= 0.4 and image_gaps[1] >= 0.5
    print(f"closures: waits {dark_gaps[0]:.2f} s (darks), {image_gaps[1]:.2f} s (images)")


def _count_events(path: Path) -> int:
    try:
        return path.read_text().count('"name": "event"')
    except FileNotFoundError:  # renamed once synced
        return 0


@pytest.mark.slow
def test_ctrl_c_in_the_demo_aborts_cleanly_and_the_run_is_stored(
    tiled_server, tmp_path, capsys, monkeypatch
):
    data_dir = tiled_server.layout.root
    journal = data_dir / "journal"
    before = set(journal.glob("*.jsonl")) if journal.exists() else set()
    env = {**os.environ, "SSB_TILED_API_KEY": tiled_server.api_key, "COLUMNS": "200"}
    command = [
        sys.executable, "-m", "ssb_beamline.cli", "demo", "--tiled", tiled_server.url,
        "--data-dir", str(data_dir), "--out", str(tmp_path / "demo"),
        "--preset", "quick", "--size", "64",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        deadline = time.monotonic() + 90
        run_journal = None
        while run_journal is None or _count_events(run_journal) < 8:  # 5 darks, 3 flats
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the demo took no frames in time"
            new = [p for p in journal.glob("*.jsonl") if p not in before]
            run_journal = next((p for p in new if not p.name.endswith(".synced.jsonl")), None)
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    uid = run_journal.name.removesuffix(".jsonl")
    text = " ".join(out.split())
    assert proc.returncode == 130, (out, err)
    assert "Interrupted (Ctrl-C)" in text and "exit_status 'abort'" in text, text
    # (the live analysis may log on stderr that an aborted run had too few images)
    assert uid in text and "Traceback" not in out

    with open_store(tiled_server.url, api_key=tiled_server.api_key) as store:
        run = store.raw[uid]
        stop = run.metadata["stop"]
        assert stop["exit_status"] == "abort"
        key = run.metadata["start"]["detector_key"]
        energies = run.metadata["start"]["energies_ev"]
        assert run["dark"][key].read().shape[0] == 5
        n_flat = run["flat"][key].read().shape[0]
        assert n_flat >= 3 and stop["num_events"]["flat"] == n_flat
        assert np.asarray(run["flat"]["energy"].read()).tolist() == energies[:n_flat]
        assert np.asarray(run["flat"]["seq_num"].read()).tolist() == list(range(1, n_flat + 1))
    monkeypatch.setenv("SSB_TILED_API_KEY", tiled_server.api_key)
    assert main(["runs", "--tiled", tiled_server.url, "--data-dir", str(data_dir)]) == 0
    assert uid[:8] in capsys.readouterr().out
    print(f"Ctrl-C after {n_flat} flats: run {uid[:8]} stored with exit_status 'abort'")
