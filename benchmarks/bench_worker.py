"""Acquisition time with the live analysis in a worker process vs in-process vs none.

Everything real on 127.0.0.1: a tiled server (child process), the stock
``bluesky-0MQ-proxy``, ``ssb-beamline analyze --zmq`` as a subprocess, and a
simulated beamline. For each mode the same XANES scan is taken ``--repeats``
times; the acquisition time is the time ``RE(plan)`` takes (the RunEngine's own
work, the writer and analysis threads included, not the wait for results after).

- ``bare``: tiled writer only, no live analysis;
- ``in-process``: the live analysis on a background thread of the acquisition process;
- ``worker``: documents published over 0MQ, analysed by the worker process;
- ``worker stalled``: the same with the worker stopped (SIGSTOP) during the scan:
  the publisher must not wait for it (the time of each ``Publisher`` call is shown).

The worker's lag is the time from the end of the acquisition to its results being
complete in tiled. Goal: worker / bare <= 1.05.

Run: ``.venv/bin/python benchmarks/bench_worker.py [--size 256] [--preset quick]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from bluesky.callbacks.zmq import Publisher
from rich.console import Console
from rich.table import Table

from ssb_beamline.profiles.simulated import simulated_beamline
from ssb_beamline.sim_devices.phantom import PhantomConfig
from ssb_beamline.storage import EmbeddedTiledServer
from ssb_beamline.storage.results import complete_versions

console = Console()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def by_worker(md: dict) -> bool:
    return (md.get("analysed_by") or {}).get("process") == "worker"


class TimedPublisher:
    """bluesky's Publisher, timing each call (the RunEngine waits for it)."""

    def __init__(self, address: str) -> None:
        self.publisher = Publisher(address)
        self.seconds: list[float] = []

    def __call__(self, name: str, doc: dict) -> None:
        t0 = time.perf_counter()
        self.publisher(name, doc)
        self.seconds.append(time.perf_counter() - t0)


def start_worker(zmq: str, server: EmbeddedTiledServer, data_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "SSB_TILED_API_KEY": server.api_key}
    args = [sys.executable, "-m", "ssb_beamline.cli", "analyze", "--zmq", zmq,
            "--tiled", server.url, "--data-dir", str(data_dir), "--recover-last", "0"]  # fmt: skip
    log = (data_dir / "worker.log").open("ab")
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    ready = threading.Event()

    def read() -> None:
        for line in process.stdout:
            if "listening on" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(180):
        process.kill()
        raise RuntimeError(f"the worker did not start; see {data_dir / 'worker.log'}")
    return process


def wait_for_worker(results, uid: str, timeout: float = 600.0) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if complete_versions(results, uid, by_worker):
            return time.perf_counter()
        time.sleep(0.05)
    raise TimeoutError(f"no worker result for {uid}")


def measure(session, plan_factory, repeats: int, worker=None, stall: bool = False) -> dict:
    """Acquisition times (and the worker's lag) over ``repeats`` scans."""
    times, lags = [], []
    for _ in range(repeats):
        if stall:
            worker.send_signal(signal.SIGSTOP)
        t0 = time.perf_counter()
        (uid,) = session.RE(plan_factory())
        t1 = time.perf_counter()
        times.append(t1 - t0)
        if stall:
            worker.send_signal(signal.SIGCONT)
        session._finish((uid,), 600.0)  # the session's writer / in-process analysis
        if worker is not None:
            lags.append(wait_for_worker(session.store.results, uid) - t1)
    return {"times": times, "lags": lags}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="field of view, px")
    parser.add_argument("--preset", default="quick", help="energy grid preset")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    phantom = PhantomConfig(shape=(args.size, args.size), seed=1)
    server = EmbeddedTiledServer(root / "tiled")
    os.environ["SSB_TILED_API_KEY"] = server.api_key
    pin, pout = free_port(), free_port()
    proxy = subprocess.Popen(
        [str(Path(sys.executable).parent / "bluesky-0MQ-proxy"),
         "--in-address", f"tcp://127.0.0.1:{pin}", "--out-address", f"tcp://127.0.0.1:{pout}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    (root / "worker").mkdir()
    worker = start_worker(f"127.0.0.1:{pout}", server, root / "worker")
    rows = {}
    publishers: dict[str, TimedPublisher] = {}
    try:
        for mode in ("bare", "in-process", "worker", "worker stalled"):
            session = simulated_beamline(
                tiled_uri=server.url, detector_dir=server.layout.detector,
                data_dir=root / "session", phantom=phantom, suspenders=False,
                live_analysis=mode == "in-process",
            )  # fmt: skip
            on_worker = mode.startswith("worker")
            if on_worker:
                publishers[mode] = TimedPublisher(f"tcp://127.0.0.1:{pin}")
                session.RE.subscribe(publishers[mode])
                time.sleep(0.5)  # 0MQ connects in the background
            try:
                session.RE(session.xanes(args.preset))  # warm-up (kernels, files, caches)
                session._finish((), 600.0)
                if on_worker:
                    time.sleep(2.0)  # let the worker finish the warm-up run
                rows[mode] = measure(
                    session, lambda s=session: s.xanes(args.preset), args.repeats,
                    worker if on_worker else None, stall=mode == "worker stalled",
                )  # fmt: skip
            finally:
                session.close()
                if on_worker:
                    publishers[mode].publisher.close()
    finally:
        worker.terminate()
        worker.wait(60)
        proxy.terminate()
        server.close()
    bare = float(np.median(rows["bare"]["times"]))
    table = Table(title=f"Acquisition with live analysis ({args.size} px, {args.preset}, "
                  f"median of {args.repeats})")  # fmt: skip
    for column in ("mode", "acquisition (s)", "ratio to bare", "worker lag after last frame (s)",
                   "Publisher call: median / max (ms)"):  # fmt: skip
        table.add_column(column, justify="right")
    for mode, row in rows.items():
        t = float(np.median(row["times"]))
        lag = f"{np.median(row['lags']):.2f}" if row["lags"] else "-"
        pub = publishers.get(mode)
        calls = (f"{1e3 * np.median(pub.seconds):.2f} / {1e3 * np.max(pub.seconds):.2f}"
                 if pub else "-")  # fmt: skip
        table.add_row(mode, f"{t:.2f}", f"{t / bare:.3f}", lag, calls)
    console.print(table)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
