"""Load test of the tiled store (issue 14): concurrent scans and readers, on each catalog.

For each catalog (SQLite in the data directory, and PostgreSQL), one project tiled
server (embedded, in its own process, 127.0.0.1) serves:

- 4 writer processes, each a real simulated beamline session (``simulated_beamline``
  pointed at the server by URI, as a beamline's sessions are), running quick XANES
  scans of a small phantom back to back for ``--duration`` seconds: documents
  through the journal into tiled, detector HDF5 files served in place, live maps
  stored as results;
- 8 reader threads (their own tiled clients), each looping over: a ``runs``-style
  listing (the last 20 runs with their start documents), a search (a run by
  ``scan_id``), the read of one 512 x 512 float32 array, and the read of a stored
  result map.

Afterwards every run is checked against its journal: the runs in tiled are exactly
the journaled ones, nothing is pending, and each stream of each run holds every
journaled event once (``seq_num`` 1..n). The table gives the errors, the lost and
duplicated documents, and the p50/p99 latency of each reader operation.

Bounded: ``--duration`` (default 120 s) of new scans, then the scans in progress
finish; a hard timeout of duration + 600 s kills what is left. Loopback only.
The machine may be shared: the latencies are those of a loaded machine then.

Run: ``.venv/bin/python benchmarks/bench_load.py [--duration 120] [--catalog both]
[--pg-uri postgresql://USER@HOST:PORT/DB]`` (without ``--pg-uri`` a throwaway
PostgreSQL cluster is started on a loopback port and removed afterwards).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import random
import shutil
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

console = Console(width=170)
logger = logging.getLogger("bench_load")
N_WRITERS, N_READERS = 4, 8
OPERATIONS = ("listing", "search", "array 512^2", "result map")


def writer(url: str, api_key: str, data_dir: str, ready, go, deadline, out: str) -> None:
    """One beamline session: quick scans until ``deadline``; report to ``out`` (JSON).

    It connects first, then sets ``ready`` and waits for ``go``: the duration
    counts from when all sessions can scan, not from their imports.
    """
    os.environ["SSB_TILED_API_KEY"] = api_key
    from ssb_beamline.profiles.simulated import simulated_beamline
    from ssb_beamline.sim_devices.factory import MotionConfig
    from ssb_beamline.sim_devices.phantom import PhantomConfig

    report: dict = {"runs": [], "errors": []}
    fast = MotionConfig(energy_velocity_ev_s=500.0, zp_velocity_mm_s=20.0, det_velocity_mm_s=1e3)
    phantom = PhantomConfig(shape=(64, 64), n_particles=4, radius_range_um=(0.8, 1.5))
    try:
        beamline = simulated_beamline(
            tiled_uri=url, data_dir=data_dir, phantom=phantom, motion=fast, exposure_time=0.005
        )
        try:
            ready.set()
            go.wait()
            while time.time() < deadline.value:
                (uid,) = beamline.run(beamline.xanes("quick", n_dark=2))
                report["runs"].append(uid)
                outcome = beamline.outcomes[-1]
                if not outcome.ok:
                    report["errors"].append(f"{uid}: analysis {outcome.errors}")
            if pending := beamline.journaled_only():
                report["errors"].append(f"not in tiled: {pending}")
        finally:
            beamline.close()
    except Exception:
        report["errors"].append(traceback.format_exc(limit=3))
        ready.set()
    Path(out).write_text(json.dumps(report))


class Readers:
    """8 reader threads, each with its own client, timing each operation."""

    def __init__(self, url: str, api_key: str) -> None:
        self.url, self.api_key = url, api_key
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self, seed: int) -> None:
        from tiled.client import from_uri
        from tiled.queries import Eq

        rng = random.Random(seed)
        client = from_uri(self.url, api_key=self.api_key)
        raw = client["raw"]
        operations = {
            "listing": lambda: [
                run.metadata["start"]["scan_id"] for _, run in raw.items().tail(20)
            ],
            "search": lambda: self._search(raw, Eq, rng),
            "array 512^2": client["bench"]["array512"].read,
            "result map": lambda: self._result(client, raw, rng),
        }
        while not self.stop.is_set():
            name = rng.choice(OPERATIONS)
            t0 = time.perf_counter()
            try:
                operations[name]()
            except Exception as exc:
                with self.lock:
                    self.errors.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
                continue
            with self.lock:
                self.latency[name].append(time.perf_counter() - t0)

    @staticmethod
    def _search(raw, eq, rng) -> None:
        n = len(raw)
        if n:
            scan_id = rng.randint(1, n)
            for _, run in raw.search(eq("start.scan_id", scan_id)).items():
                assert run.metadata["start"]["scan_id"] == scan_id

    @staticmethod
    def _result(client, raw, rng) -> None:
        """The SOC map of one of the last 10 runs, by the run's link to its results."""
        links = [run.metadata.get("results", {}).get("latest") for _, run in raw.items().tail(10)]
        if links := [link for link in links if link]:  # a run links them once stored
            client[rng.choice(links)]["soc"].read()


def check_against_journals(client, journal: Path) -> tuple[int, int, int, list[str]]:
    """(runs, lost documents, duplicated documents, problems) of tiled vs the journal."""
    problems, lost, duplicated = [], 0, 0
    synced = sorted(journal.glob("*.synced.jsonl"))
    pending = [p for p in journal.glob("*.jsonl") if not p.name.endswith(".synced.jsonl")]
    problems += [f"pending in the journal: {p.name}" for p in pending]
    lost += len(pending)
    raw = client["raw"]
    in_tiled = set(raw)
    journaled = {p.name.removesuffix(".synced.jsonl") for p in synced}
    lost += len(journaled - in_tiled)
    problems += [f"journaled, not in tiled: {u}" for u in journaled - in_tiled]
    problems += [f"in tiled, never journaled: {u}" for u in in_tiled - journaled]
    for path in synced:
        uid = path.name.removesuffix(".synced.jsonl")
        if uid not in in_tiled:
            continue
        streams, counts = {}, Counter()
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record["name"] == "descriptor":
                streams[record["doc"]["uid"]] = record["doc"]["name"]
            elif record["name"] == "event":
                counts[streams[record["doc"]["descriptor"]]] += 1
        run = raw[uid]
        if "stop" not in run.metadata or not run.metadata["stop"]:
            problems.append(f"{uid}: no stop document in tiled")
            lost += 1
        for stream, n in counts.items():
            seq = Counter(np.asarray(run[stream]["seq_num"].read()).tolist())
            lost += sum(1 for i in range(1, n + 1) if i not in seq)
            duplicated += sum(c - 1 for c in seq.values() if c > 1)
    return len(journaled), lost, duplicated, problems


def load_test(name: str, catalog: str | None, duration: float, root: Path) -> dict:
    from ssb_beamline.storage import EmbeddedTiledServer, open_store

    data_dir = root / name
    with EmbeddedTiledServer(data_dir, catalog=catalog) as server:
        client = open_store(server.url, api_key=server.api_key, data_dir=data_dir).client
        rng = np.random.default_rng(0)
        bench = client.create_container("bench")
        bench.write_array(rng.random((512, 512), dtype=np.float32), key="array512")
        spawn = multiprocessing.get_context("spawn")
        go, deadline = spawn.Event(), spawn.Value("d", 0.0)
        ready = [spawn.Event() for _ in range(N_WRITERS)]
        reports = [root / f"{name}-writer-{i}.json" for i in range(N_WRITERS)]
        writers = [
            spawn.Process(
                target=writer,
                args=(
                    server.url,
                    server.api_key,
                    str(data_dir),
                    ready[i],
                    go,
                    deadline,
                    str(reports[i]),
                ),
            )
            for i in range(N_WRITERS)
        ]
        for process in writers:
            process.start()
        for event in ready:  # the sessions import and connect (bounded)
            event.wait(timeout=600)
        deadline.value = time.time() + duration
        go.set()
        t0 = time.perf_counter()
        readers = Readers(server.url, server.api_key)
        threads = [threading.Thread(target=readers.run, args=(i,)) for i in range(N_READERS)]
        for thread in threads:
            thread.start()
        for process in writers:
            process.join(timeout=max(deadline.value + 600 - time.time(), 1))
            if process.is_alive():
                process.kill()
        readers.stop.set()
        for thread in threads:
            thread.join(timeout=120)
        elapsed = time.perf_counter() - t0
        errors = list(readers.errors)
        for path in reports:
            if not path.exists():
                errors.append(f"{path.name}: the writer died without a report")
                continue
            errors += json.loads(path.read_text())["errors"]
        runs, lost, duplicated, problems = check_against_journals(client, data_dir / "journal")
    # requests the server failed (HTTP 500), even those the journal later made good
    log = (data_dir / "server.log").read_text(errors="replace")
    errors += [f"server: {line}" for line in log.splitlines() if line.startswith("sqlalchemy.exc")]
    server_errors = log.count("Exception in ASGI application")
    for line in (errors + problems)[:20]:
        console.print(f"[red]{name}:[/] {line}")
    return {
        "catalog": name, "elapsed": elapsed, "runs": runs, "errors": len(errors),
        "server_errors": server_errors,
        "lost": lost, "duplicated": duplicated, "latency": readers.latency,
    }  # fmt: skip


def table(rows: list[dict]) -> Table:
    out = Table(title=f"Load: {N_WRITERS} scanning sessions + {N_READERS} readers, one server")
    for column in ("catalog", "wall s", "runs", "errors", "HTTP 500", "lost", "dup"):
        out.add_column(column, justify="right")
    for op in OPERATIONS:
        out.add_column(f"{op} p50/p99 ms (n)", justify="right")
    for row in rows:
        cells = []
        for op in OPERATIONS:
            values = np.asarray(row["latency"].get(op, []), float) * 1e3
            cells.append(
                f"{np.percentile(values, 50):.0f} / {np.percentile(values, 99):.0f} ({values.size})"
                if values.size
                else "-"
            )
        out.add_row(
            row["catalog"], f"{row['elapsed']:.0f}", str(row["runs"]), str(row["errors"]),
            str(row["server_errors"]),
            str(row["lost"]), str(row["duplicated"]), *cells,
        )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of new scans")
    parser.add_argument("--catalog", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-uri", help="an existing PostgreSQL database (default: throwaway)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="bench-load-"))
    rows, cluster = [], None
    try:
        if args.catalog in ("sqlite", "both"):
            rows.append(load_test("sqlite", None, args.duration, root))
        if args.catalog in ("postgresql", "both"):
            uri = args.pg_uri
            if uri is None:
                from ssb_beamline.storage.pg_cluster import ThrowawayCluster

                cluster = ThrowawayCluster()
                uri = cluster.new_database("bench")
            rows.append(load_test("postgresql", uri, args.duration, root))
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    console.print(table(rows))
    console.print(f"{os.cpu_count()} CPU(s); load average {os.getloadavg()[0]:.1f} at the end.")


if __name__ == "__main__":
    main()
