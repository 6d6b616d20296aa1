"""Benchmark the XANES analysis on synthetic stacks.

Prints a table with wall time and peak extra memory for ``analyse_xanes_stack``
(with and without the normalised stack), ``normalize_stack``, ``absorbance``
per frame (one-shot and the live path with a prepared flat), and the
single-read-pass floor (``stack.sum(axis=0)`` split over the same workers).
The comparison with pyxas and TXM-Sandbox is ``bench_peers.py``.

Usage::

    .venv/bin/python benchmarks/bench_analysis.py                    # 2048^2 and 512^2 stacks
    .venv/bin/python benchmarks/bench_analysis.py --small            # small stack only
    .venv/bin/python benchmarks/bench_analysis.py --absorbance-only  # the per-frame cases
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import threading
import time
from collections.abc import Callable

import numpy as np

from ssb_beamline.analysis import (
    absorbance,
    absorbance_with_open_beam,
    analyse_xanes_stack,
    normalize_stack,
    open_beam,
)
from ssb_beamline.analysis._parallel import default_workers, run_chunks
from ssb_beamline.reference_data import ni_k_edge_references

log = logging.getLogger("bench_analysis")


def scan_energies(n: int = 100) -> np.ndarray:
    """A typical TXM Ni K-edge scan: coarse pre/post edge, fine across the edge."""
    pre = np.linspace(8300.0, 8330.0, n // 10, endpoint=False)
    edge = np.linspace(8330.0, 8360.0, n - n // 10 - n // 5, endpoint=False)
    post = np.linspace(8360.0, 8450.0, n // 5)
    return np.concatenate([pre, edge, post])


def synthetic_stack(shape: tuple[int, int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mixture of the NiO / LiNiO2 references with particles, background and noise."""
    n, h, w = shape
    e = scan_energies(n)
    r0, r1 = (r.at(e).astype(np.float32) for r in ni_k_edge_references())
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    step = (0.6 * (np.sin(xx / 37.0) * np.cos(yy / 23.0) > 0.2)).astype(np.float32)
    frac = ((xx + yy) / (h + w)).astype(np.float32)
    base = np.float32(0.3) + np.float32(0.2) * step
    noise = rng.standard_normal((h, w), dtype=np.float32) * np.float32(0.01)
    stack = np.empty(shape, np.float32)
    for i in range(n):
        np.multiply(frac, r1[i] - r0[i], out=stack[i])
        stack[i] += r0[i]
        stack[i] *= step
        stack[i] += base
        stack[i] += np.roll(noise, 17 * i, axis=1)
    return stack, e


class PeakRSS:
    """Peak extra resident memory during a block (sampled from /proc every 2 ms)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def rss() -> int:
        with open(f"/proc/{os.getpid()}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self.base = self.rss()
        self.peak = self.base

        def sample() -> None:
            while not self._stop.is_set():
                self.peak = max(self.peak, self.rss())
                time.sleep(0.002)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())

    @property
    def extra(self) -> int:
        return self.peak - self.base


def measure(fn: Callable[[], object], repeat: int = 3) -> tuple[float, float, int]:
    """Best wall time and its CPU time over ``repeat`` runs, and the peak extra RSS."""
    with PeakRSS() as mem:
        result = fn()
    del result
    best = (float("inf"), 0.0)
    for _ in range(repeat):
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        r = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        best = min(best, (wall, cpu))
        del r
    return best[0], best[1], mem.extra


def read_pass(stack: np.ndarray, workers: int | None = None) -> np.ndarray:
    """One read of the whole stack: per-pixel sum over energy, in pixel chunks."""
    flat = stack.reshape(stack.shape[0], -1)
    out = np.empty(flat.shape[1], np.float32)

    def work(s: slice) -> None:
        flat[:, s].sum(axis=0, out=out[s])

    run_chunks(work, flat.shape[1], 1 << 16, workers)
    return out


def bench_stack(
    shape: tuple[int, int, int], repeat: int
) -> list[tuple[str, str, float, float, float]]:
    stack, e = synthetic_stack(shape)
    refs = ni_k_edge_references()
    nbytes = stack.nbytes
    label = "x".join(map(str, shape))
    nw = default_workers()
    out = np.ones_like(stack)  # preallocated (and touched) output, as a live callback keeps
    cases: list[tuple[str, Callable[[], object]]] = [
        ("read-pass floor, 1 thread", lambda: read_pass(stack, 1)),
        (f"read-pass floor, {nw} threads", lambda: read_pass(stack)),
        ("analyse_xanes_stack, 1 thread", lambda: analyse_xanes_stack(stack, e, refs, workers=1)),
        (f"analyse_xanes_stack, {nw} threads", lambda: analyse_xanes_stack(stack, e, refs)),
        (
            f"analyse + norm (new array), {nw} thr",
            lambda: analyse_xanes_stack(stack, e, refs, return_norm=True),
        ),
        (
            f"analyse + norm (norm_out=), {nw} thr",
            lambda: analyse_xanes_stack(stack, e, refs, norm_out=out),
        ),
        (f"normalize_stack (out=), {nw} threads", lambda: normalize_stack(stack, e, out=out)),
    ]
    rows = []
    for name, fn in cases:
        wall, cpu, mem = measure(fn, repeat)
        rows.append((label, name, wall, cpu, mem / nbytes))
        log.info("%s %s: %.3f s", label, name, wall)
    return rows


def bench_absorbance(repeat: int = 30) -> list[tuple[str, str, float, float, float]]:
    """One 2048 x 2048 uint16 frame: ``absorbance`` and the live path (a flat prepared
    once with :func:`open_beam`, the dark a float32 mean of dark frames)."""
    rng = np.random.default_rng(1)
    frame = rng.integers(1000, 60000, (2048, 2048), dtype=np.uint16)
    dark_int = rng.integers(90, 110, (2048, 2048), dtype=np.uint16)
    dark = (dark_int + rng.random((2048, 2048))).astype(np.float32)  # mean of darks
    flat = rng.integers(30000, 62000, (2048, 2048), dtype=np.uint16)
    out = np.empty((2048, 2048), np.float32)
    beam = open_beam(flat, dark)
    label = "2048x2048 uint16"
    cases = [
        ("absorbance(frame, dark, flat, out=)", lambda: absorbance(frame, dark_int, flat, out=out)),
        (
            "live: with_open_beam (table), out=",
            lambda: absorbance_with_open_beam(frame, dark, beam, out=out),
        ),
        ("live: with_open_beam (table), new", lambda: absorbance_with_open_beam(frame, dark, beam)),
        (
            "live: with_open_beam (float log)",
            lambda: absorbance_with_open_beam(frame, dark, beam, out=out, count_table=False),
        ),
    ]
    rows = []
    for name, fn in cases:
        wall, cpu, mem = measure(fn, repeat)
        rows.append((label, name, wall, cpu, mem / out.nbytes))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="only the 100x512x512 stack")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case (best)")
    parser.add_argument("--absorbance-only", action="store_true", help="only the frame cases")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    load0 = os.getloadavg()[0]
    rows = bench_absorbance()
    shapes = [(100, 512, 512)] if args.small else [(100, 512, 512), (100, 2048, 2048)]
    if args.absorbance_only:
        shapes = []
    for shape in shapes:
        rows.extend(bench_stack(shape, args.repeat))
    header = f"{'stack':<18} {'case':<38} {'wall (s)':>9} {'cpu (s)':>9} {'peak extra mem':>15}"
    load = os.getloadavg()[0]
    lines = [
        f"cpus={default_workers()}  numpy={np.__version__}  load average at end={load:.2f}",
        f"load average at start={load0:.2f} (2-core machine shared with other jobs)",
        "(peak extra memory = resident-set growth during the call / input size;"
        " wall = best of --repeat, cpu = its process CPU time)",
        header,
        "-" * len(header),
    ]
    lines += [f"{a:<18} {b:<38} {w:>9.4f} {c:>9.4f} {m:>14.2f}x" for a, b, w, c, m in rows]
    print("\n".join(lines))  # the table is this script's output


if __name__ == "__main__":
    main()
