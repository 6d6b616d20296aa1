"""Live ingest per 2048^2 frame, wall and CPU time, split into the frame read and the rest.

The frames go through ``XanesLiveAnalysis`` as in a scan (StreamResource /
StreamDatum documents, the frame read from the detector's HDF5 file, then the
event: dark/flat/flux correction into the preallocated float32 stack, the
running joint-fit sums, the binned live estimate), with the synthetic frames and
files of ``bench_skeleton.py``.  Per primary frame it records the wall time and
the process CPU time (every thread: the correction runs on the analysis pool)
of the whole ingest and of the frame read alone.  On a shared machine the wall
time holds the wait for a core; the CPU time does not (goal, issue 18: median
wall <= 5 ms per frame including the read, on an idle 2-core node).

Usage::

    .venv/bin/python benchmarks/bench_pipeline_ingest.py [--frames 40] [--size 2048]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_skeleton import synthetic_frames

from ssb_beamline.callbacks.frames import HDF5FrameResolver
from ssb_beamline.callbacks.xanes_live import XanesLiveAnalysis
from ssb_beamline.plans.energy_grids import NI_K_EDGE_REGIONS_EV, edge_grid
from ssb_beamline.reference_data import ni_k_edge_references


class TimedResolver(HDF5FrameResolver):
    """The callback's frame resolver, timing each read (wall, process CPU)."""

    reads: list[tuple[float, float]]

    def frames(self, doc):
        t0, c0 = time.perf_counter(), time.process_time()
        out = super().frames(doc)
        self.reads.append((time.perf_counter() - t0, time.process_time() - c0))
        return out


def write_files(folder: Path, n: int, size: int) -> tuple[np.ndarray, dict[str, Path]]:
    n_pre, n_post = max(2, n * 15 // 100), max(2, n * 20 // 100)
    energies = edge_grid(
        *NI_K_EDGE_REGIONS_EV, n_pre=n_pre, n_edge=n - n_pre - n_post, n_post=n_post
    )
    dark, flat, images = synthetic_frames(n, (size, size), energies)
    files = {}
    for name, data in (
        ("dark", dark[None]),
        ("flat", np.repeat(flat[None], n, 0)),
        ("primary", images),
    ):
        path = folder / f"{name}.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("/entry/data/data", data=data, chunks=(1, size, size))
        files[name] = path
    return energies, files


def run(energies: np.ndarray, files: dict[str, Path], size: int) -> dict[str, np.ndarray]:
    """Feed one run through the callback; per primary frame: (wall, cpu) of ingest and read."""
    n = energies.size
    cb = XanesLiveAnalysis(ni_k_edge_references(), keep_normalized=False)
    cb._frames = TimedResolver(defer_read_ahead=cb._frames.defer_read_ahead)
    cb._frames.reads = []
    run_uid = str(uuid.uuid4())
    start = {"uid": run_uid, "time": 0, "energies_ev": energies.tolist()}
    cb("start", {**start, "detector_key": "det", "energy_key": "energy", "i0_key": "i0"})
    scalar = {"shape": [], "dtype": "number", "source": "sim"}
    frame_key = {"shape": [1, size, size], "dtype": "array", "source": "sim", "external": "STREAM:"}
    data_keys = {"det": frame_key, "energy": scalar, "i0": scalar}
    ingest = []
    for stream, count in (("dark", 1), ("flat", n), ("primary", n)):
        desc, res = str(uuid.uuid4()), str(uuid.uuid4())
        cb("descriptor", {"uid": desc, "run_start": run_uid, "name": stream, "time": 0,
                          "data_keys": data_keys})  # fmt: skip
        cb("stream_resource", {"uid": res, "data_key": "det", "mimetype": "application/x-hdf5",
                               "uri": f"file://localhost{files[stream]}", "run_start": run_uid,
                               "parameters": {"dataset": "/entry/data/data"}})  # fmt: skip
        for i in range(count):
            datum = {"uid": f"{res}/{i}", "stream_resource": res, "descriptor": desc,
                     "indices": {"start": i, "stop": i + 1},
                     "seq_nums": {"start": i + 1, "stop": i + 2}}  # fmt: skip
            event = {"uid": str(uuid.uuid4()), "descriptor": desc, "seq_num": i + 1, "time": 0,
                     "data": {"energy": float(energies[i]), "i0": 1.0}, "timestamps": {},
                     "filled": {}}  # fmt: skip
            t0, c0 = time.perf_counter(), time.process_time()
            cb("stream_datum", datum)
            cb("event", event)
            if stream == "primary":
                ingest.append((time.perf_counter() - t0, time.process_time() - c0))
    cb("stop", {"uid": str(uuid.uuid4()), "run_start": run_uid, "time": 0,
                "exit_status": "success"})  # fmt: skip
    if not cb.outcome.ok:
        raise RuntimeError(f"live analysis failed: {cb.outcome.errors}")
    reads = np.array(cb._frames.reads[-n:])
    return {"ingest": np.array(ingest), "read": reads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40, help="energies (primary frames)")
    ap.add_argument("--size", type=int, default=2048)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder:
        energies, files = write_files(Path(folder), args.frames, args.size)
        t = run(energies, files, args.size)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"live ingest, {args.frames} frames of {args.size}^2 uint16; load average {load}")
    print(f"{'per frame, ms':34} {'median':>7} {'mean':>7} {'min':>7}")
    ing, rd = t["ingest"], t["read"]
    rows = [
        ("ingest incl. read, wall", ing[:, 0]),
        ("ingest incl. read, CPU (all thr.)", ing[:, 1]),
        ("frame read alone, wall", rd[:, 0]),
        ("frame read alone, CPU", rd[:, 1]),
        ("ingest without the read, wall", ing[:, 0] - rd[:, 0]),
    ]
    for label, v in rows:
        print(f"{label:34} {1e3 * np.median(v):7.2f} {1e3 * v.mean():7.2f} {1e3 * v.min():7.2f}")
    print("goal (issue 18): median wall <= 5 ms including the read (idle 2-core node)")


if __name__ == "__main__":
    main()
