"""Benchmark: the 3D conductive-network model on a 256^3 volume with 100 NMC particles.

Goal (issue 20): <= 10 s and a peak of <= 3x the edge-energy volume's size (float32)
on 2 cores.  The phase volume is synthetic (random spheres, a thresholded smooth
field for SSE, thin random slabs for carbon), made before the measurement; the
peak is ``tracemalloc``'s (numpy allocations) above what existed at the start, and
the process' ``ru_maxrss`` is printed too.

Run: ``.venv/bin/python benchmarks/bench_network3d.py [size] [n_particles]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import resource
import sys
import time
import tracemalloc

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy import ndimage

from ssb_beamline.analysis.network3d import network_model_3d


def synthetic(size: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Phase volume (uint8) and edge-energy volume (float32) with ``n`` particles."""
    rng = np.random.default_rng(seed)
    shape = (size,) * 3
    phases = np.zeros(shape, np.uint8)
    field = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), size / 40)
    phases[field > np.quantile(field[::4, ::4, ::4], 0.7)] = 2  # SSE
    for _ in range(size // 4):  # carbon slabs
        c = rng.integers(0, size, 3)
        sl = [slice(max(int(v) - size // 10, 0), int(v) + size // 10) for v in c]
        sl[rng.integers(3)] = slice(int(c[0] % size), int(c[0] % size) + 2)
        phases[tuple(sl)] = 3
    radius, centres = [], []
    while len(radius) < n:  # non-overlapping spheres of 9-14 voxels at 256^3
        r, c = rng.uniform(0.035, 0.055) * size, rng.uniform(0.06, 0.94, 3) * size
        if all(np.linalg.norm(c - c2) > r + r2 + 1 for c2, r2 in zip(centres, radius, strict=True)):
            radius.append(r)
            centres.append(c)
    for c, r in zip(centres, radius, strict=True):
        lo = np.maximum((c - r).astype(int), 0)
        hi = np.minimum((c + r).astype(int) + 1, size)
        zz, yy, xx = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        ball = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r * r
        phases[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]][ball] = 1
    edge = (8342.0 + rng.normal(0, 0.5, shape)).astype(np.float32)
    edge[phases != 1] = np.nan
    return phases, edge


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    phases, edge = synthetic(size, n)
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    model = network_model_3d(phases, edge, voxel_size_um=0.1)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB on Linux
    table = Table(title=f"3D network model, {size}^3 voxels, {n} particles requested")
    for col in (
        "particles",
        "NMC voxels",
        "seconds",
        "CPU s",
        "peak MiB",
        "peak / volume",
        "maxrss MiB",
    ):
        table.add_column(col, justify="right")
    vol_mib = edge.nbytes / 2**20
    table.add_row(str(len(model.particles)), f"{model.index.size:,}", f"{seconds:.2f}",
                  f"{cpu:.2f}", f"{peak / 2**20:.0f}",
                  f"{peak / edge.nbytes:.2f}x ({vol_mib:.0f} MiB)", f"{rss:.0f}")  # fmt: skip
    Console().print(table)
    Console().print(f"goal: <= 10 s and <= 3x; slopes {model.slopes}")


if __name__ == "__main__":
    main()
