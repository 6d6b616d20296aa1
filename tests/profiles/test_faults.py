"""Faults during acquisition: the tiled server or the acquisition process dies, nothing is lost.

The tiled server (a real child process serving HTTP) is killed with SIGKILL at
chosen moments of a real scan, chosen by what the journal (or tiled) has received,
never by a sleep (except the "0.3 s after the stop document" moment of issue 11).
After a restart, ``ssb-beamline sync`` must leave each run closed with every event
exactly once and its results stored, and a replay must give the live maps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import stamina
from tiled.client.container import Container
from tiled.client.dataframe import _DaskDataFrameClient

from ssb_beamline.cli import main
from ssb_beamline.plans import ni_k_edge_grid
from ssb_beamline.profiles.replay import replay_runs
from ssb_beamline.profiles.simulated import simulated_beamline
from ssb_beamline.sim_devices.factory import MotionConfig
from ssb_beamline.sim_devices.phantom import PhantomConfig
from ssb_beamline.storage import EmbeddedTiledServer, open_store, read_results, result_versions
from ssb_beamline.storage.result_journal import ResultJournal
from ssb_beamline.storage.server_config import TILED_API_KEY_ENV

pytestmark = pytest.mark.slow

PHANTOM = PhantomConfig(shape=(48, 48), n_particles=4, radius_range_um=(0.8, 1.5))
# 13 of the quick preset's 21 energies: 3 pre-edge, every one across the edge, 3 post-edge
ENERGIES = ni_k_edge_grid("quick")[[0, 3, 5, 6, 7, 8, 9, 10, 11, 12, 15, 17, 20]].tolist()
FAST = MotionConfig(energy_velocity_ev_s=500.0, zp_velocity_mm_s=20.0, det_velocity_mm_s=1000.0)


class Outage:
    """The module's tiled server: kill it (SIGKILL) at a moment, restart it on its port."""

    def __init__(self, server: EmbeddedTiledServer) -> None:
        self.server = server
        self.killed = threading.Event()
        self.timers: list[threading.Timer] = []
        self.synced: dict[str, int] = {}  # uid -> images, of the runs synced so far

    def kill(self) -> None:
        if not self.killed.is_set():
            self.killed.set()
            self.server.process.kill()
            self.server.process.wait()

    def restart(self) -> EmbeddedTiledServer:
        self.server = EmbeddedTiledServer(self.server.layout.root, port=self.server.port)
        self.killed.clear()
        self.timers.clear()
        return self.server


@pytest.fixture(scope="module")
def beamline(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("faults")
    # one quick attempt per request: the dead server is seen at once, not after 45 s
    with stamina.set_testing(True, attempts=1):
        session = simulated_beamline(
            data_dir=data_dir, phantom=PHANTOM, motion=FAST, exposure_time=0.005
        )
        session.outage = Outage(session.store.server)
        yield session
        session.close()
        session.outage.server.close()


def _after_journaled(beamline, monkeypatch, predicate, delay: float = 0.0) -> None:
    """Kill the server once the journal has a document for which ``predicate`` is true."""
    journal, append = beamline.journal, beamline.journal.append
    seen: Counter = Counter()
    streams: dict[str, str] = {}

    def watched(uid, name, doc):
        append(uid, name, doc)
        if name == "descriptor":
            streams[doc["uid"]] = doc["name"]
        key = streams.get(doc.get("descriptor")) if name == "event" else name
        seen[key] += 1
        if predicate(key, seen[key]):
            if delay:
                beamline.outage.timers.append(threading.Timer(delay, beamline.outage.kill))
                beamline.outage.timers[-1].start()
            else:
                beamline.outage.kill()

    monkeypatch.setattr(journal, "append", watched)


def _after_first_call(beamline, monkeypatch, cls, method: str, path_part: str) -> None:
    """Kill the server right after tiled took the first ``cls.method`` call on ``path_part``."""
    original = getattr(cls, method)

    def watched(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        if path_part in self.uri:
            beamline.outage.kill()
        return out

    monkeypatch.setattr(cls, method, watched)


MOMENTS = {
    # the start document is journaled, tiled never hears of the run
    "before-first-event": lambda b, m: _after_journaled(b, m, lambda k, n: k == "start"),
    # the 5th image is journaled: tiled has the run's containers, not its events
    "mid-primary": lambda b, m: _after_journaled(b, m, lambda k, n: k == "primary" and n == 5),
    # the stop document is journaled, tiled does not get it
    "stop-0s": lambda b, m: _after_journaled(b, m, lambda k, n: k == "stop"),
    # issue 11's case: 0.3 s later tiled is writing the event tables or the results
    "stop-0.3s": lambda b, m: _after_journaled(b, m, lambda k, n: k == "stop", delay=0.3),
    # the first event table is in tiled (tiled manages it: the 409 of issue 11)
    "mid-event-tables": lambda b, m: _after_first_call(
        b, m, _DaskDataFrameClient, "append_partition", "/raw/"
    ),
    # the raw run is complete, the first result array is in tiled, the others not
    "results-upload": lambda b, m: _after_first_call(b, m, Container, "write_array", "/results/"),
}


def _stream_counts(journal_path: Path) -> Counter:
    streams, counts = {}, Counter()
    for line in journal_path.read_text().splitlines():
        record = json.loads(line)
        if record["name"] == "descriptor":
            streams[record["doc"]["uid"]] = record["doc"]["name"]
        elif record["name"] == "event":
            counts[streams[record["doc"]["descriptor"]]] += 1
    return counts


def assert_every_event_once(run, journal_path: Path) -> None:
    """Each stream in tiled has seq_num 1..n, n being what the journal recorded."""
    counts = _stream_counts(journal_path)
    assert counts, "the journal holds no events"
    for stream, n in counts.items():
        seq = np.asarray(run[stream]["seq_num"].read()).tolist()
        assert seq == list(range(1, n + 1)), (stream, seq)
    assert run.metadata["stop"]["num_events"] == dict(counts)


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_server_killed_at_any_moment_sync_completes_the_run(beamline, moment, monkeypatch, capsys):
    MOMENTS[moment](beamline, monkeypatch)
    (uid,) = beamline.run(beamline.xanes(ENERGIES, n_dark=2))
    for timer in beamline.outage.timers:
        timer.join()
    monkeypatch.undo()  # no more kills
    assert beamline.outage.killed.is_set()  # the server really died
    live = beamline.outcomes[-1]
    assert live.run_uid == uid and live.maps is not None  # analysed live regardless
    server = beamline.outage.restart()

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
    assert_every_event_once(run, beamline.journal.path(uid, synced=True))
    (version,) = result_versions(store.results, uid)  # stored once, no partial copy
    assert run.metadata["results"]["latest"] == f"results/{uid}/{version}"  # linked from the run
    stored = read_results(store.results, uid)
    for key, array in live.maps.items():
        np.testing.assert_array_equal(stored.arrays[key], array, err_msg=key)
    (replayed,) = replay_runs(store, [uid])
    assert replayed.ok, replayed.errors
    for key, array in live.maps.items():
        np.testing.assert_array_equal(replayed.maps[key], array, err_msg=key)
    # removing a partial copy took only that run's rows out of tiled's shared tables
    beamline.outage.synced[uid] = _stream_counts(beamline.journal.path(uid, synced=True))["primary"]
    for earlier, n in beamline.outage.synced.items():
        assert len(store.raw[earlier]["primary"]["seq_num"].read()) == n, earlier


def _journal_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


ACQUISITION_MOMENTS = {
    "early": lambda lines: len(lines) >= 3,  # start and descriptors journaled
    "mid-scan": lambda lines: sum('"name": "event"' in line for line in lines) >= 30,
    "after-stop": lambda lines: any('"name": "stop"' in line for line in lines),
}


@pytest.mark.parametrize("moment", list(ACQUISITION_MOMENTS))
def test_acquisition_killed_sync_closes_the_run_honestly(
    beamline, moment, tmp_path, monkeypatch, capsys
):
    server = beamline.outage.server
    data_dir = server.layout.root
    journal = data_dir / "journal"
    before = set(journal.glob("*.jsonl"))
    env = {**os.environ, TILED_API_KEY_ENV: server.api_key}
    command = [
        sys.executable, "-m", "ssb_beamline.cli", "demo", "--tiled", server.url,
        "--data-dir", str(data_dir), "--out", str(tmp_path / "demo"),
        "--preset", "quick", "--size", "48",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline, path = time.monotonic() + 120, None
        while path is None or not ACQUISITION_MOMENTS[moment](_journal_lines(path)):
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the demo did not reach the moment in time"
            new = [p for p in journal.glob("*.jsonl") if p not in before]
            path = next((p for p in new if not p.name.endswith(".synced.jsonl")), None)
            time.sleep(0.01)
        proc.kill()  # SIGKILL: no cleanup, no stop document, maybe a torn line
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    uid = path.name.removesuffix(".jsonl")

    monkeypatch.setenv(TILED_API_KEY_ENV, server.api_key)
    assert main(["sync", "--tiled", server.url, "--data-dir", str(data_dir)]) == 0
    assert f"synced {uid}" in capsys.readouterr().out
    synced = journal / f"{uid}.synced.jsonl"
    names = [json.loads(line)["name"] for line in synced.read_text().splitlines()]
    assert names.count("start") == names.count("stop") == 1 and names[-1] == "stop"
    uids = [json.loads(line)["doc"]["uid"] for line in synced.read_text().splitlines()]
    assert len(set(uids)) == len(uids)  # no document journaled twice

    with open_store(server.url, api_key=server.api_key, data_dir=data_dir) as store:
        run = store.raw[uid]
        stop = run.metadata["stop"]
        if moment == "after-stop":
            assert stop["exit_status"] == "success"
        else:
            assert stop["exit_status"] == "abort"
            assert "stopped without closing the run" in stop["reason"]
        assert_every_event_once(run, synced)
    print(f"{moment}: run {uid[:8]} closed ({stop['exit_status']}), {stop['num_events']}")
