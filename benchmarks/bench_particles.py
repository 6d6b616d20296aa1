"""Benchmark particle statistics and the diffusion-distance model on 2048 x 2048.

Run ``.venv/bin/python benchmarks/bench_particles.py [--repeat N] [--size 2048]``.
Prints a table of the best wall time over ``--repeat`` runs against the goals.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable

import numpy as np

from ssb_beamline.analysis.diffusion import diffusion_distance_maps
from ssb_beamline.analysis.particles import particle_table, segment_particles
from ssb_beamline.analysis.phases import Phase

PIXEL_UM = 0.05


def make_scene(size: int, n_side: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n_side**2`` separated disks: (label image, SOC map, phase map)."""
    rng = np.random.default_rng(seed)
    pitch = size / n_side
    yy, xx = np.mgrid[:size, :size]
    i = np.minimum((yy / pitch).astype(int), n_side - 1)
    j = np.minimum((xx / pitch).astype(int), n_side - 1)
    cell = i * n_side + j
    n = n_side * n_side
    cy = (np.arange(n) // n_side + 0.5) * pitch + rng.uniform(-3, 3, n)
    cx = (np.arange(n) % n_side + 0.5) * pitch + rng.uniform(-3, 3, n)
    r = rng.uniform(0.2, 0.45, n) * pitch
    d2 = (yy - cy[cell]) ** 2 + (xx - cx[cell]) ** 2
    inside = d2 <= r[cell] ** 2
    labels = np.where(inside, cell + 1, 0).astype(np.int32)
    soc = np.where(inside, 0.5 + 0.3 * (xx - cx[cell]) / r[cell], np.nan)
    soc += rng.normal(0, 0.02, soc.shape)
    phases = np.where(inside, Phase.NMC, Phase.VOID).astype(np.uint8)
    shell = ~inside & (d2 <= (r[cell] + 2) ** 2)
    ang = np.arctan2(yy - cy[cell], xx - cx[cell])
    phases[shell & (ang > 0)] = Phase.SSE
    phases[shell & (ang < -2.0)] = Phase.CARBON
    return labels, soc, phases


def best_of(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best wall time and best process CPU time over ``repeat`` runs."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--n-side", type=int, default=32, help="particles per side")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    labels, soc, phases = make_scene(args.size, args.n_side)
    image = (labels > 0).astype(np.float64) + np.random.default_rng(1).normal(0, 0.05, labels.shape)
    n = int(labels.max())
    shape = f"{args.size}x{args.size}"
    rows = [
        (
            f"particle_table ({n} particles, {shape})",
            best_of(lambda: particle_table(labels, soc, pixel_size_um=PIXEL_UM), args.repeat),
            0.5,
        ),
        (
            f"diffusion_distance_maps euclidean ({shape})",
            best_of(lambda: diffusion_distance_maps(phases, pixel_size_um=PIXEL_UM), args.repeat),
            1.0,
        ),
        (
            f"diffusion_distance_maps geodesic ({shape})",
            best_of(
                lambda: diffusion_distance_maps(phases, pixel_size_um=PIXEL_UM, metric="geodesic"),
                1,
            ),
            None,
        ),
        (
            f"segment_particles ({shape})",
            best_of(lambda: segment_particles(image, pixel_size_um=PIXEL_UM), args.repeat),
            None,
        ),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'function':<{width}}  {'wall [s]':>9}  {'cpu [s]':>8}  {'goal [s]':>8}  status"]
    for name, (t, cpu), goal in rows:
        status = "-" if goal is None else ("OK" if t <= goal else "SLOW")
        goal_s = "-" if goal is None else f"{goal:.2f}"
        lines.append(f"{name:<{width}}  {t:9.3f}  {cpu:8.3f}  {goal_s:>8}  {status}")
    lines.append("(best of --repeat runs; cpu = process time, less sensitive to a busy machine)")
    print("\n".join(lines))  # a benchmark script reports on stdout


if __name__ == "__main__":
    main()
