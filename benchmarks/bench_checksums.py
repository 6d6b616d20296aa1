"""Cost of the per-frame Fletcher-32 checksum of the detector files (issue 11).

Writes ``--frames`` uint16 frames of ``--size`` x ``--size`` px the way the simulated
detectors do (``TXMFrameFile``: one chunk per frame, resize + write + flush, SWMR
mode), once without and once with HDF5's ``fletcher32`` filter, then reads each
file back frame by frame as the frame resolver does (``read_direct`` into one
buffer). The files go to ``--dir`` (default: a temporary folder; use a tmpfs to
leave the disk out of it). Prints the median wall time and the median CPU time
(``time.thread_time``, less sensitive to other processes on a shared machine)
per frame, and their differences.

Run: ``python benchmarks/bench_checksums.py [--size 2048] [--frames 40] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from rich.console import Console
from rich.table import Table

DATASET = "/entry/data/data"


Timing = tuple[float, float]  # (wall, CPU) seconds of one frame


def _now() -> Timing:
    return time.perf_counter(), time.thread_time()


def _since(t0: Timing) -> Timing:
    wall, cpu = _now()
    return wall - t0[0], cpu - t0[1]


def write(path: Path, frames: np.ndarray, fletcher32: bool) -> list[Timing]:
    """Append the frames as the detector does; (wall, CPU) seconds per frame."""
    n, h, w = frames.shape
    times = []
    with h5py.File(path, "w", libver="latest") as f:
        data = f.create_dataset(
            DATASET,
            shape=(0, h, w),
            dtype=np.uint16,
            maxshape=(None, h, w),
            chunks=(1, h, w),
            fletcher32=fletcher32,
        )
        f.swmr_mode = True
        for i in range(n):
            t0 = _now()
            data.resize(i + 1, axis=0)
            data[i] = frames[i]
            data.flush()
            times.append(_since(t0))
    return times


def read(path: Path) -> list[Timing]:
    """Read every frame into one buffer, as the frame resolver does; (wall, CPU) s per frame."""
    times = []
    with h5py.File(path, "r") as f:
        data = f[DATASET]
        out = np.empty(data.shape[1:], data.dtype)
        for i in range(data.shape[0]):
            t0 = _now()
            data.read_direct(out, np.s_[i])
            times.append(_since(t0))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 40000, (args.frames, args.size, args.size), dtype=np.uint16)
    results: dict[tuple[str, bool], list[Timing]] = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for _ in range(args.repeats):
            for fletcher32 in (False, True):  # interleaved: both see the same machine load
                path = Path(tmp) / f"frames-{fletcher32}.h5"
                results.setdefault(("write", fletcher32), []).extend(
                    write(path, frames, fletcher32)
                )
                results.setdefault(("read", fletcher32), []).extend(read(path))
                path.unlink()
    mb = args.size * args.size * 2 / 1e6
    table = Table(title=f"Fletcher-32 per frame: {args.size} x {args.size} uint16 ({mb:.1f} MB)")
    for column in ("operation", "clock", "plain (ms)", "fletcher32 (ms)", "difference (ms)"):
        table.add_column(column, justify="right")
    for op in ("write", "read"):
        for k, clock in enumerate(("wall", "CPU")):
            plain = 1e3 * statistics.median(t[k] for t in results[(op, False)])
            checked = 1e3 * statistics.median(t[k] for t in results[(op, True)])
            table.add_row(op, clock, f"{plain:.2f}", f"{checked:.2f}", f"{checked - plain:+.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
