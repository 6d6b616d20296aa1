"""Benchmarks of replay and backfill (issue 5); prints a table.

(a) Replay throughput: a 100-energy 2048 x 2048 uint16 XANES run (5 darks, a flat
    and an image per energy: 1.7 GB of raw frames) is stored in the project's tiled
    server (embedded, in its own process) and replayed through the live XANES
    callback, with frames read from the detector files (``fill="never"``) and
    fetched from tiled over HTTP (``fill="always"``). The time is split into the
    document fetch (``run.documents()``), the frame reads, the callback's ingest
    (dark/flat correction into the stack) and the final maps, so the table says
    what limits the rate. Goals: >= 300 MB/s of raw frames from files, >= 150 MB/s
    over HTTP; printed next to the read-pass floor of each path (every frame read
    once, nothing analysed) measured in the same run, and the machine's load.
    Each replay's row also gives the rate at which its two 1.7 GB stacks were
    made ready, during it: a first replay in a process maps ~5 GB afresh, and on
    a VM whose host takes freed memory back that rate swings from 0.1 to 8 GB/s
    within minutes and sets the replay's (measured: 34 MB/s from files with the
    stacks mapped at 0.1 GB/s, 414 MB/s at 3.8 GB/s). The replays run in one
    process, files first: the HTTP replay and a second files replay (what the next
    run of ``ssb-beamline replay`` over several runs meets) zero the stacks the
    process kept (``populated_zeros``) and reuse the heap it kept, at 5-8 GB/s
    even in runs where the first replay's stacks were mapped at 0.1 GB/s.
(b) Backfill after an outage: a 41-energy 2048 x 2048 run acquired while tiled was
    down (every document journaled, the frames in the detector's files) is written
    to tiled by ``sync_run``; and the run's analysis results (maps and the
    normalised stack), journaled because publishing failed, are uploaded by
    ``sync_results``.

The run is made of synthetic frames (a two-phase Ni mixture field, cheap noise)
written straight to HDF5 with the documents the simulated beamline would emit
(:mod:`ssb_beamline.storage.synthetic`), so that building it takes seconds instead
of simulating a 2048 x 2048 phantom.

Run: ``.venv/bin/python benchmarks/bench_replay.py [--small]`` (``--small``: 21
energies of 512 x 512, for a quick check). ``--no-backfill`` prints the replay rows
only (the like-for-like mode of the issue-14 numbers); ``--data DIR`` keeps the
server's data directory in ``DIR`` and replays the run built there by an earlier
call (built on first use), so repeated runs skip the ~20 s build and every run
replays the same files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from ssb_beamline.callbacks import _stack_buffers
from ssb_beamline.callbacks._stack_buffers import StackBuffers
from ssb_beamline.callbacks.frames import HDF5FrameResolver
from ssb_beamline.callbacks.xanes_live import XanesLiveAnalysis
from ssb_beamline.plans.energy_grids import NI_K_EDGE_REGIONS_EV, edge_grid
from ssb_beamline.reference_data import ni_k_edge_references
from ssb_beamline.storage import EmbeddedTiledServer, TiledStore, open_store
from ssb_beamline.storage.journal import DocumentJournal, JournaledWriter, sync_run
from ssb_beamline.storage.replay import run_documents
from ssb_beamline.storage.replay_fill import FILL_AHEAD, FILL_BLOCK_BYTES, FrameFetcher
from ssb_beamline.storage.result_journal import ResultJournal
from ssb_beamline.storage.sync import sync_results
from ssb_beamline.storage.synthetic import mixture_frames, write_run, xanes_run

console = Console(width=150)
logger = logging.getLogger("bench_replay")
MB = 1e6
#: Replay rates asked for by issue 14 (raw frame bytes per second).
GOALS = {"never": ">= 300 MB/s", "always": ">= 150 MB/s"}
N_DARK = 5


def grid(n: int) -> np.ndarray:
    n_pre, n_post = max(2, n * 15 // 100), max(2, n * 20 // 100)
    return edge_grid(*NI_K_EDGE_REGIONS_EV, n_pre=n_pre, n_edge=n - n_pre - n_post, n_post=n_post)


def synthetic_run(uid: str, folder: Path, energies: np.ndarray, size: int) -> list:
    """A mixture-field XANES run: frames in ``folder``, the documents returned."""
    shape = (size, size)
    frames = mixture_frames(energies, shape)
    return xanes_run(uid, folder, energies, shape=shape, frames=frames, n_dark=N_DARK)


def raw_bytes(energies: np.ndarray, size: int) -> int:
    return (N_DARK + 2 * len(energies)) * size * size * 2


@dataclass
class ReplayTiming:
    """Where one replay spent its time (s); ``ingest`` by stream (dark, flat, primary)."""

    documents: float = 0.0
    frames: float = 0.0
    ingest: dict[str, float] = field(default_factory=dict)
    final: float = 0.0
    total: float = 0.0
    errors: list[str] = field(default_factory=list)
    #: (bytes, seconds) of each stack made ready (mapped afresh, or a kept one zeroed)
    mapped: list[tuple[int, float]] = field(default_factory=list)
    #: seconds the callback waited for them
    waited: float = 0.0


@contextlib.contextmanager
def memory_timed(timing: ReplayTiming) -> Iterator[None]:
    """Time the callback's stacks (``StackBuffers``) into ``timing`` meanwhile.

    A first replay's stacks are the bulk of the fresh memory it maps; the rate it
    got for them, in this very replay, says how much of the replay's time the
    machine's memory took (the rate swings from minute to minute on a VM whose
    host takes freed memory back). A later replay in the process zeroes the
    stacks ``populated_zeros`` kept instead, which this times the same way.
    """
    original = (_stack_buffers.populated_zeros, StackBuffers.stack, StackBuffers.normalized)
    populate, stack, normalized = original

    def timed_populate(shape, dtype):
        t = time.perf_counter()
        out = populate(shape, dtype)
        timing.mapped.append((out.nbytes, time.perf_counter() - t))
        return out

    def waiting(method):
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                timing.waited += time.perf_counter() - t

        return timed

    _stack_buffers.populated_zeros = timed_populate
    StackBuffers.stack, StackBuffers.normalized = waiting(stack), waiting(normalized)
    try:
        yield
    finally:
        _stack_buffers.populated_zeros, StackBuffers.stack, StackBuffers.normalized = original


def timed_replay(store: TiledStore, uid: str, fill: str) -> ReplayTiming:
    """``replay_runs`` for one run without storing results, instrumented.

    The loop is the one :func:`ssb_beamline.profiles.replay.replay_runs` runs; the
    frame reads are timed inside the resolver (files) or the document stream (tiled),
    and the rest of the callback's time is attributed to the stream of the frame.
    """
    timing = ReplayTiming()
    callback = XanesLiveAnalysis(ni_k_edge_references(), keep_normalized=True)
    resolver = callback._frames  # instrumented: time spent reading the files
    read = resolver.frames

    def timed_read(datum):
        t = time.perf_counter()
        try:
            return read(datum)
        finally:
            timing.frames += time.perf_counter() - t

    resolver.frames = timed_read
    with memory_timed(timing):
        _replay(callback, run_documents(store.raw[uid], fill=fill), timing)
    timing.final = callback.outcome.final_seconds or 0.0
    timing.ingest["other"] = timing.ingest.get("other", 0.0) - timing.final
    timing.errors = callback.outcome.errors
    return timing


def _replay(callback: XanesLiveAnalysis, documents: Iterator, timing: ReplayTiming) -> None:
    """Feed ``documents`` to ``callback``, timing the fetch and each stream's ingest."""
    streams: dict[str, str] = {}  # descriptor uid -> stream name
    t_start = time.perf_counter()
    first = True
    while True:
        t = time.perf_counter()
        try:
            name, doc = next(documents)
        except StopIteration:
            break
        fetched = time.perf_counter() - t
        if first:  # the generator fetches every document before the first
            timing.documents, first = fetched, False
        else:  # with fill="always", frames come over HTTP here
            timing.frames += fetched
        if name == "descriptor":
            streams[doc["uid"]] = doc["name"]
        reads_before = timing.frames
        t = time.perf_counter()
        callback(name, doc)
        spent = time.perf_counter() - t - (timing.frames - reads_before)
        stream = streams.get(doc.get("descriptor", ""), "other")
        timing.ingest[stream] = timing.ingest.get(stream, 0.0) + spent
    timing.total = time.perf_counter() - t_start


def read_pass_files(store: TiledStore, uid: str) -> float:
    """Seconds to read every frame of the run from its files, as the replay reads them.

    The same route: the replay's own StreamResource/StreamDatum documents
    (``run_documents(fill="never")``: per file, ~32 MB blocks) through the frame
    resolver the callback uses (h5py ``read_direct``, Fletcher-32 checked); the
    document fetch is not counted.
    """
    docs = list(run_documents(store.raw[uid], fill="never"))
    resolver = HDF5FrameResolver()
    t = time.perf_counter()
    try:
        for name, doc in docs:
            if name == "stream_resource":
                resolver.stream_resource(doc)
            elif name == "stream_datum":
                resolver.frames(doc)
    finally:
        resolver.close()
    return time.perf_counter() - t


def read_pass_http(store: TiledStore, uid: str) -> float:
    """Seconds to fetch every frame of the run from tiled, as the replay fetches them."""
    run = store.raw[uid]
    t = time.perf_counter()
    with ThreadPoolExecutor(FILL_AHEAD) as pool:
        for stream in ("dark", "flat", "primary"):
            node = run[stream]["det"]
            fetcher = FrameFetcher(node, f"{stream}", tuple(node.shape[1:]), pool)
            for index in range(node.shape[0]):
                fetcher.frame(index)
    return time.perf_counter() - t


def backfill(store: TiledStore, folder: Path, energies: np.ndarray, size: int) -> dict:
    """Journal a run while tiled is 'down', then time sync_run; same for its results."""
    uid = str(uuid.uuid4())
    docs = synthetic_run(uid, folder, energies, size)
    journal = DocumentJournal(store.journal_dir)

    def dead_server(raw):
        raise ConnectionError("tiled is down (benchmark)")

    logging.getLogger("ssb_beamline.storage.journal").setLevel(logging.CRITICAL)
    writer = JournaledWriter(store.raw, journal, writer_factory=dead_server)
    for name, doc in docs:
        writer(name, doc)
    assert journal.pending() == [uid]
    t = time.perf_counter()
    sync_run(store.raw, journal, uid)
    t_docs = time.perf_counter() - t
    assert store.raw[uid].metadata["stop"]["exit_status"] == "success"
    shape = (size, size)
    rng = np.random.default_rng(1)
    arrays = {
        key: rng.random(shape, dtype=np.float32)
        for key in ("edge_energy", "e0", "edge_step", "soc", "soc_edge", "oxidation_state")
    }
    arrays["fractions"] = rng.random((2, *shape), dtype=np.float32)
    arrays["mask"] = arrays["soc"] > 0.2
    arrays["normalized"] = rng.random((len(energies), *shape), dtype=np.float32)
    results = ResultJournal(store.journal_dir / "results")
    t = time.perf_counter()
    results.write(uid, arrays, units={}, metadata={"source": "live"})
    t_write = time.perf_counter() - t
    t = time.perf_counter()
    (stored,) = sync_results(store.results, results)
    t_results = time.perf_counter() - t
    result_bytes = sum(a.nbytes for a in arrays.values())
    return {
        "docs": len(docs),
        "doc_seconds": t_docs,
        "frame_bytes": raw_bytes(energies, size),
        "result_bytes": result_bytes,
        "journal_write_seconds": t_write,
        "result_seconds": t_results,
        "stored": stored,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="21 energies of 512 x 512")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--energies", type=int, help="energies of the replayed run (100)")
    parser.add_argument("--size", type=int, help="frame edge in pixels (2048)")
    parser.add_argument("--no-backfill", action="store_true", help="replay rows only")
    parser.add_argument(
        "--data", type=Path, help="data directory kept between runs (the run is built once)"
    )
    args = parser.parse_args()
    n_replay, n_backfill, size = (21, 21, 512) if args.small else (100, 41, 2048)
    n_replay, size = args.energies or n_replay, args.size or size
    load_start = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    data = args.data or Path(tempfile.mkdtemp(prefix="bench-replay-"))
    table = Table(title=f"ssb_beamline replay and backfill benchmarks ({size}^2 uint16 frames)")
    for column in ("measurement", "value", "goal", "notes"):
        table.add_column(column)
    try:
        with EmbeddedTiledServer(data / "server") as server:
            store = open_store(server.url, api_key=server.api_key, data_dir=data / "client")
            folder = server.layout.detector
            warm_up = str(uuid.uuid4())  # imports, compiled kernels, first requests
            write_run(store.raw, synthetic_run(warm_up, folder, grid(16), 64))
            for fill in ("never", "always"):
                timed_replay(store, warm_up, fill)
            energies = grid(n_replay)
            uid, t_build, t_store = built_run(store, folder, args.data, energies, size)
            total = raw_bytes(energies, size)
            table.add_row(
                f"build: {n_replay}-energy run, {total / MB:.0f} MB of frames",
                f"{t_build:.1f} s" if t_build is not None else "reused",
                "",
                f"written to tiled (documents) in {t_store:.1f} s"
                if t_store is not None
                else f"built by an earlier call in {args.data}",
            )
            floors = {"never": read_pass_files(store, uid), "always": read_pass_http(store, uid)}
            for fill, label in (("never", "detector files"), ("always", "tiled over HTTP")):
                route = (
                    "the replay's per-file ~32 MB StreamDatums through the callback's frame "
                    "resolver (h5py read_direct, Fletcher-32 checked)"
                    if fill == "never"
                    else f"the replay's ~{FILL_BLOCK_BYTES / 2**20:.0f} MiB block requests, "
                    f"uncompressed, {FILL_AHEAD} ahead on threads"
                )
                table.add_row(
                    f"read-pass floor, frames from {label}",
                    f"{total / MB / floors[fill]:.0f} MB/s ({floors[fill]:.1f} s)",
                    "",
                    f"every frame read once by the replay's route, nothing analysed: {route}",
                )
            replays = (
                ("never", "detector files"),
                ("always", "tiled over HTTP, next in this process"),
                ("never", "detector files again, next in this process (a batch's next run)"),
            )
            for fill, label in replays:
                table.add_row(*replay_row(store, uid, fill, label, total, floors[fill]))
            if not args.no_backfill:
                backfill_rows(table, store, folder, grid(n_backfill), size)
            store.close()
    finally:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        cores = len(os.sched_getaffinity(0))
        table.add_row("machine load (1, 5, 15 min), at the start", load_start, "", "")
        table.add_row("machine load (1, 5, 15 min), at the end", load, "", f"{cores} cores")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        table.add_row(
            "peak memory of this process", f"{peak / MB:.0f} MB", "",
            "the replays' analysis (float32 stack, flats, normalised stack) and frame blocks",
        )  # fmt: skip
        if not (args.keep or args.data):
            shutil.rmtree(data, ignore_errors=True)
        console.print(table)


def built_run(
    store: TiledStore, folder: Path, kept: Path | None, energies: np.ndarray, size: int
) -> tuple[str, float | None, float | None]:
    """The replayed run: (uid, build s, store s), or one an earlier call built in ``kept``.

    With ``kept`` (``--data``), ``kept / "bench-run.json"`` names the run built there
    for these energies and frame size; it is reused (times None) if it is still in
    the catalog, else built and recorded.
    """
    record = kept / "bench-run.json" if kept is not None else None
    wanted = {"energies": [float(e) for e in energies], "size": size}
    if record is not None and record.exists():
        known = json.loads(record.read_text())
        if {k: known.get(k) for k in wanted} == wanted and known["uid"] in store.raw:
            return known["uid"], None, None
    uid = str(uuid.uuid4())
    t = time.perf_counter()
    docs = synthetic_run(uid, folder, energies, size)
    t_build = time.perf_counter() - t
    t = time.perf_counter()
    write_run(store.raw, docs)
    t_store = time.perf_counter() - t
    if record is not None:
        record.write_text(json.dumps({**wanted, "uid": uid}))
    return uid, t_build, t_store


def backfill_rows(table: Table, store, folder: Path, energies: np.ndarray, size: int) -> None:
    """The backfill measurements (b) as table rows."""
    result = backfill(store, folder, energies, size)
    table.add_row(
        f"backfill: {len(energies)}-energy run's {result['docs']} documents (sync_run)",
        f"{result['doc_seconds']:.1f} s",
        "",
        f"{result['frame_bytes'] / MB / result['doc_seconds']:.0f} MB/s of frames "
        "registered (files stay in place)",
    )
    table.add_row(
        f"backfill: journaled results, {result['result_bytes'] / MB:.0f} MB",
        f"{result['result_seconds']:.1f} s",
        "",
        f"{result['result_bytes'] / MB / result['result_seconds']:.0f} MB/s uploaded; "
        f"journaling them took {result['journal_write_seconds']:.1f} s",
    )


def replay_row(store, uid: str, fill: str, label: str, total: int, floor: float) -> list[str]:
    """One replay of the run, its rate and where the time went (a table row)."""
    timing = timed_replay(store, uid, fill)
    if timing.errors:
        raise RuntimeError(f"replay failed: {timing.errors}")
    rate = total / MB / timing.total
    ingest = sum(timing.ingest.values())
    parts = {
        "documents": timing.documents,
        "frame reads": timing.frames,
        "ingest": ingest,
        "final maps": timing.final,
    }
    limit = max(parts, key=parts.get)
    by_stream = ", ".join(f"{k} {v:.1f}" for k, v in timing.ingest.items())
    split = ", ".join(f"{k} {v:.1f} s" for k, v in parts.items())
    mapped = ", ".join(f"{n / MB:.0f} MB at {n / 1e9 / s:.1f} GB/s" for n, s in timing.mapped)
    return [
        f"replay, frames from {label}",
        f"{rate:.0f} MB/s ({timing.total:.1f} s)",
        GOALS[fill],
        f"{rate / (total / MB / floor):.0%} of the read-pass floor; {split} (ingest by "
        f"stream: {by_stream} s; other: descriptor, stop, normalised stack); limited by "
        f"{limit}; its stacks made ready on a helper thread (mapped afresh, or kept ones "
        f"zeroed): {mapped or 'none'}, the callback waited {timing.waited:.1f} s for them",
    ]


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
