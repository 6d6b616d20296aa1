"""Benchmark tomography, phase retrieval and the 3-D particle table against references.

Run ``.venv/bin/python benchmarks/bench_tomography.py [--size 256] [--angles 360]``.
Prints one table (wall time of a single run; no assertions):

* FBP of a ``size^3`` sphere phantom from ``angles`` projections over 180 degrees:
  :func:`reconstruct_fbp` vs algotom's ``fbp_reconstruction`` called directly (numba
  default threads, i.e. with its back-projection race; and with one numba thread on
  ``--subset-slices`` slices, extrapolated) vs ``skimage.transform.iradon`` per slice
  (subset, extrapolated), and astra's CPU FBP if ``astra`` is importable (untested here).
* Paganin phase retrieval of ``angles`` projections of ``--frame`` pixels squared:
  vectorised :func:`paganin_phase` vs a straightforward per-projection numpy
  implementation of the same formula.
* The particle table of a ``size^3`` label volume with ~``--particles`` spheres:
  :func:`particle_table` vs ``skimage.measure.regionprops_table``; plus
  :func:`segment_particles_3d` of the same volume.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ssb_beamline.analysis.particles import particle_table
from ssb_beamline.analysis.particles3d import segment_particles_3d
from ssb_beamline.analysis.phase_retrieval import paganin_phase, wavelength_m
from ssb_beamline.analysis.tomography import _circle, reconstruct_fbp


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def sphere_projections(n: int, angles_deg: np.ndarray, center: float, seed: int = 0) -> np.ndarray:
    """(A, n, n) line integrals of 25 random spheres (analytic chords)."""
    rng = np.random.default_rng(seed)
    th = np.radians(angles_deg)[:, None, None]
    u = np.arange(n, dtype=np.float32)[None, None, :]
    z = np.arange(n, dtype=np.float32)[None, :, None]
    proj = np.zeros((angles_deg.size, n, n), np.float32)
    for _ in range(25):
        r = rng.uniform(0.04, 0.12) * n
        x0, y0 = rng.uniform(-0.3, 0.3, 2) * n
        z0 = rng.uniform(r, n - r)
        us = (center + x0 * np.cos(th) - y0 * np.sin(th)).astype(np.float32)
        proj += 2 * 0.01 * np.sqrt(np.clip(r * r - (u - us) ** 2 - (z - z0) ** 2, 0, None))
    return proj


def bench_fbp(args: argparse.Namespace, rows: list[tuple[str, str, str]]) -> None:
    import numba
    from algotom.rec.reconstruction import fbp_reconstruction
    from skimage.transform import iradon

    n, n_a, k = args.size, args.angles, args.subset_slices
    ang = np.linspace(0, 180, n_a, endpoint=False)
    center = n / 2.0  # = skimage's axis (n // 2) too
    proj = sphere_projections(n, ang, center)
    what = f"FBP {n}^3 from {n_a} proj."
    pix = _circle(n, center)

    def algotom(sub: np.ndarray) -> np.ndarray:
        rec = fbp_reconstruction(sub, center, np.radians(ang), apply_log=False, gpu=False)
        return (np.moveaxis(rec, 1, 0) * np.float32((n_a - 1) / n_a)).reshape(sub.shape[1], -1)

    def dev(rec: np.ndarray, ref: np.ndarray) -> float:
        return float(np.abs(rec[:, pix] - ref[:, pix]).max() / np.abs(ref[:, pix]).max())

    reconstruct_fbp(proj[:, :2], ang, center)  # warm-up: imports, numba cache, thread pools
    algotom(proj[:, :2])
    t_ours, ours = timed(lambda: reconstruct_fbp(proj, ang, center, filter_name="hann"))
    ours = ours.reshape(n, -1)
    rows.append((what, "reconstruct_fbp (algotom filter, sparse W^T)", f"{t_ours:.2f} s"))
    t_alg, alg = timed(lambda: algotom(proj))
    rows.append((what, "algotom fbp_reconstruction, numba default", f"{t_alg:.2f} s"))
    rows.append((what, "  its max deviation from ours (race)", f"{dev(alg, ours):.1e}"))
    sl = slice(n // 2 - k // 2, n // 2 - k // 2 + k)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        t_one, one = timed(lambda: algotom(proj[:, sl]))
    finally:
        numba.set_num_threads(threads)
    label = f"algotom, 1 numba thread ({k} slices x {n / k:.0f})"
    rows.append((what, label, f"{t_one * n / k:.2f} s (dev {dev(one, ours[sl]):.1e})"))
    t_sk, _ = timed(
        lambda: [
            iradon(proj[:, z, :].T, theta=ang, filter_name="hann", circle=True)
            for z in range(n)[sl]
        ]
    )
    rows.append((what, f"skimage iradon ({k} slices x {n / k:.0f})", f"{t_sk * n / k:.2f} s"))
    if importlib.util.find_spec("astra") is None:
        rows.append((what, "astra CPU FBP", "n/a (astra not installed)"))
    else:
        rows.append((what, "astra CPU FBP", f"{bench_astra(proj, ang, center):.2f} s"))


def bench_astra(proj: np.ndarray, ang: np.ndarray, center: float) -> float:
    """Slice-by-slice astra FBP_CPU (parallel beam, axis shifted to ``center``)."""
    import astra

    _, n_z, n = proj.shape
    shift = center - n / 2.0
    vol_geom = astra.create_vol_geom(n, n)
    proj_geom = astra.create_proj_geom("parallel", 1.0, n, np.radians(ang))
    t0 = time.perf_counter()
    for z in range(n_z):
        sino = np.roll(proj[:, z, :], -round(shift), axis=1)
        pid = astra.create_projector("linear", proj_geom, vol_geom)
        sid = astra.data2d.create("-sino", proj_geom, sino)
        rid = astra.data2d.create("-vol", vol_geom)
        cfg = astra.astra_dict("FBP")
        cfg.update(ReconstructionDataId=rid, ProjectionDataId=sid, ProjectorId=pid)
        alg = astra.algorithm.create(cfg)
        astra.algorithm.run(alg)
        astra.data2d.get(rid)
        astra.algorithm.delete(alg)
        astra.data2d.delete([sid, rid])
        astra.projector.delete(pid)
    return time.perf_counter() - t0


def paganin_reference(stack: np.ndarray, delta_beta: float, z: float, e: float, px: float):
    """Per-projection, complex128 numpy implementation of the same Paganin formula."""
    from scipy.fft import next_fast_len

    ny, nx = stack.shape[-2:]
    out = np.empty(stack.shape, np.float32)
    py = next_fast_len(ny + 2 * (ny // 2), real=True)
    pxx = next_fast_len(nx + 2 * (nx // 2), real=True)
    oy, ox = (py - ny) // 2, (pxx - nx) // 2
    fy, fx = np.fft.fftfreq(py, px), np.fft.fftfreq(pxx, px)
    filt = 1.0 / (1.0 + np.pi * wavelength_m(e) * z * delta_beta * (fy[:, None] ** 2 + fx**2))
    for i, img in enumerate(stack):
        pad = np.pad(img, ((oy, py - ny - oy), (ox, pxx - nx - ox)), mode="edge")
        f = np.real(np.fft.ifft2(np.fft.fft2(pad) * filt))[oy : oy + ny, ox : ox + nx]
        out[i] = 0.5 * delta_beta * np.log(f)
    return out


def bench_paganin(args: argparse.Namespace, rows: list[tuple[str, str, str]]) -> None:
    rng = np.random.default_rng(1)
    n, n_a = args.frame, args.angles
    yy, xx = np.indices((n, n)) - n / 2
    base = np.exp(-0.3 * np.clip(1 - (yy**2 + xx**2) / (0.3 * n) ** 2, 0, None))
    base = (base + 0.02 * rng.normal(size=base.shape)).astype(np.float32)
    stack = np.stack([np.roll(base, i % 50, axis=1) for i in range(n_a)])
    kw = {"delta_beta": 40.0, "distance_m": 2e-3, "energy_ev": 17050.0, "pixel_size_m": 1e-7}
    what = f"Paganin {n_a} x {n}^2"
    t_ours, ours = timed(lambda: paganin_phase(stack, **kw))
    rows.append((what, "paganin_phase (vectorised, rfft2 float32)", f"{t_ours:.2f} s"))
    t_ref, ref = timed(lambda: paganin_reference(stack, 40.0, 2e-3, 17050.0, 1e-7))
    dev = float(np.abs(ref - ours).max() / np.abs(ref).max())
    rows.append((what, "per-projection numpy fft2 reference", f"{t_ref:.2f} s (max dev {dev:.1e})"))


def bench_particles(args: argparse.Namespace, rows: list[tuple[str, str, str]]) -> None:
    from skimage.measure import regionprops_table

    rng = np.random.default_rng(2)
    n = args.size
    labels = np.zeros((n, n, n), np.int32)
    grid = round(args.particles ** (1 / 3) + 0.5)
    pitch = n / grid
    zz, yy, xx = np.ogrid[:n, :n, :n]
    k = 0
    for iz in range(grid):
        for iy in range(grid):
            for ix in range(grid):
                if k >= args.particles:
                    break
                c = (np.array([iz, iy, ix]) + 0.5) * pitch + rng.uniform(-2, 2, 3)
                r = rng.uniform(0.2, 0.45) * pitch
                sl = tuple(slice(max(0, int(ci - r - 1)), int(ci + r + 2)) for ci in c)
                d2 = (
                    (zz[sl[0]] - c[0]) ** 2
                    + (yy[:, sl[1]] - c[1]) ** 2
                    + (xx[..., sl[2]] - c[2]) ** 2
                )
                k += 1
                labels[sl][d2 <= r * r] = k
    values = rng.normal(1.0, 0.1, labels.shape).astype(np.float32)
    what = f"3-D table {n}^3, {k} particles"
    t_ours, ours = timed(lambda: particle_table(labels, values, pixel_size_um=0.1))
    rows.append((what, "particle_table", f"{t_ours:.2f} s"))
    props = ("label", "area", "centroid", "intensity_mean", "intensity_std", "centroid_weighted")
    t_sk, sk = timed(lambda: regionprops_table(labels, values, properties=props))
    dev = float(np.abs(sk["intensity_mean"] - ours["soc_mean"].to_numpy()).max())
    rows.append((what, "skimage regionprops_table", f"{t_sk:.2f} s (max |d mean| {dev:.1e})"))
    img = (labels > 0).astype(np.float32) + rng.normal(0, 0.1, labels.shape).astype(np.float32)
    t_seg, seg = timed(lambda: segment_particles_3d(img, voxel_size_um=0.1))
    rows.append((f"segment {n}^3", "segment_particles_3d", f"{t_seg:.2f} s ({seg.max()} found)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--angles", type=int, default=360)
    parser.add_argument("--frame", type=int, default=512)
    parser.add_argument("--particles", type=int, default=100)
    parser.add_argument("--subset-slices", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows: list[tuple[str, str, str]] = []
    for bench in (bench_fbp, bench_paganin, bench_particles):
        bench(args, rows)
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"{'case':<{w0}}  {'method':<{w1}}  wall time")
    for a, b, c in rows:
        print(f"{a:<{w0}}  {b:<{w1}}  {c}")


if __name__ == "__main__":
    main()
