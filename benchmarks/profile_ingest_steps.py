"""Where a live-ingest frame's time goes: per-step wall and CPU of bench_pipeline_ingest.

Wraps the steps of ``XanesLiveAnalysis``'s per-frame path with timers (the
StreamDatum with its frame read, the event with the frame's correction, the
absorbance sweep, the joint-fit sums, the flats' release) and runs
``bench_pipeline_ingest``'s 40 frames of 2048^2 uint16 through it. Medians
over the primary frames (the sums' flush: every call). The CPU columns: the
process's (all threads) and the calling thread's, during the step; wall above
the calling thread's CPU is time it waited (for a core, or for the GIL held by
the read-ahead thread's h5py read). Issue 18 asks for the whole at <= 5 ms
median wall on an idle 2-core node.

Usage::

    .venv/bin/python benchmarks/profile_ingest_steps.py [--frames 40] [--size 2048]
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import bench_pipeline_ingest as bench

from ssb_beamline.analysis import joint_sums
from ssb_beamline.callbacks import xanes_live

TIMES: dict[str, list[tuple[float, float, float]]] = collections.defaultdict(list)


def timed(owner: object, name: str, label: str) -> None:
    """Replace ``owner.name`` by a wrapper recording (wall, process CPU) per call."""
    func = getattr(owner, name, None)
    if func is None:  # an older version of the package (A/B runs)
        return

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        t0, c0, m0 = time.perf_counter(), time.process_time(), time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            t, c, m = time.perf_counter() - t0, time.process_time() - c0, time.thread_time() - m0
            TIMES[label].append((t, c, m))

    setattr(owner, name, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--size", type=int, default=2048)
    args = ap.parse_args()
    cls = xanes_live.XanesLiveAnalysis
    timed(cls, "stream_datum", "stream_datum (frame read)")
    timed(cls, "event", "event (the frame's correction)")
    timed(cls, "_add_image", "  _add_image")
    timed(xanes_live, "absorbance_with_open_beam", "    absorbance sweep")
    timed(joint_sums.JointFitAccumulator, "add", "    joint-fit sums add")
    timed(joint_sums.JointFitAccumulator, "flush", "    joint-fit sums flush (all)")
    timed(getattr(xanes_live, "Releaser", None), "release", "    flats release (hand-off)")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder:
        energies, files = bench.write_files(Path(folder), args.frames, args.size)
        ingest = bench.run(energies, files, args.size)["ingest"]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"live ingest steps, {args.frames} frames of {args.size}^2; load average {load}")
    head = f"{'calls':>5} {'med wall':>8} {'med CPU':>8} {'this thr':>8} {'mean wall':>9}"
    print(f"{'step, ms':36} {head}")
    rows = [("ingest incl. read (bench)", np.c_[ingest, np.full(len(ingest), np.nan)])]
    for label, values in TIMES.items():
        v = np.array(values)
        rows.append((label, v if "flush" in label else v[-args.frames :]))
    for label, v in rows:
        print(f"{label:36} {len(v):5} {1e3 * np.median(v[:, 0]):8.2f} "
              f"{1e3 * np.median(v[:, 1]):8.2f} {1e3 * np.median(v[:, 2]):8.2f} "
              f"{1e3 * v[:, 0].mean():9.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
