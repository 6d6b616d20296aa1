"""Benchmark the simulated STXM: fly-raster efficiency, analysis speed, ratio error vs dose.

Run ``.venv/bin/python benchmarks/bench_stxm.py [--size 48]``. Prints three tables:

* a fly ``stxm_ratio_scan`` of ``size`` x ``size`` pixels at two energies: wall time
  against the counting time (goal: overhead below 2x the counting time);
* the final maps (`stxm_maps`) of a 256 x 256 two-energy OD pair: wall time;
* the valence-ratio error (median relative, particle pixels) against the dose
  (counts/s of the open beam at 1 ms dwell), from noiseless ODs plus Poisson noise.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
from bluesky import RunEngine
from ophyd_async.plan_stubs import ensure_connected
from rich.console import Console
from rich.table import Table

from ssb_beamline.analysis.stxm_maps import stxm_maps
from ssb_beamline.callbacks.stxm_live import STXMLiveAnalysis
from ssb_beamline.plans.stxm import stxm_ratio_scan
from ssb_beamline.profiles.stxm import DEFAULT_STXM_PHANTOM
from ssb_beamline.sim_devices.stxm import make_sim_stxm

PEAKS = (853.0, 855.5)


def fly_scan(size: int) -> tuple[float, float, float]:
    """(wall s, counting s, analysis s after the last line) of one fly ratio scan."""
    stxm = make_sim_stxm(DEFAULT_STXM_PHANTOM)
    RE = RunEngine({}, call_returns_result=False)
    RE(ensure_connected(*stxm.devices))
    live = STXMLiveAnalysis()
    t0 = time.perf_counter()
    RE(stxm_ratio_scan(stxm.detector, stxm.energy, stxm.stage.x, stxm.stage.y, stxm.shutter,
                       stxm.i0, list(PEAKS), nx=size, ny=size, step_um=0.2,
                       sample_out=stxm.sample_out_um), live)  # fmt: skip
    wall = time.perf_counter() - t0
    return wall, 2 * size * size * 0.001, live.outcome.final_seconds or float("nan")


def ratio_error_vs_dose(rates: list[float]) -> list[tuple[float, float]]:
    """Median relative ratio error in particles for each open-beam count rate (1 ms dwell)."""
    stxm = make_sim_stxm(DEFAULT_STXM_PHANTOM)
    x = y = 0.2 * (np.arange(48) - 23.5)
    truth = stxm.truth_ratio_map(*PEAKS, x, y)
    od = np.stack([stxm.truth_od_map(e, x, y) for e in PEAKS])
    rng = np.random.default_rng(0)
    out = []
    for rate in rates:
        counts = rng.poisson(rate * 0.001 * np.exp(-od))
        noisy = -np.log(np.maximum(counts, 1) / (rate * 0.001))
        ratio = stxm_maps(noisy, PEAKS, PEAKS, pixel_size_um=0.2).arrays["ratio"]
        ok = np.isfinite(truth) & np.isfinite(ratio)
        out.append((rate, float(np.median(np.abs(ratio[ok] / truth[ok] - 1)))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=48, help="raster side, pixels")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    console = Console()

    wall, counting, final = fly_scan(args.size)
    table = Table(title=f"fly stxm_ratio_scan, {args.size} x {args.size} px, 2 energies, 1 ms")
    for column in ("wall (s)", "counting (s)", "overhead", "goal", "final maps (s)"):
        table.add_column(column, justify="right")
    table.add_row(f"{wall:.2f}", f"{counting:.2f}", f"{wall / counting:.2f}x", "< 2x",
                  f"{final:.3f}")  # fmt: skip
    console.print(table)

    od = np.random.default_rng(1).uniform(0.1, 0.9, (2, 256, 256)).astype(np.float32)
    t0 = time.perf_counter()
    stxm_maps(od, PEAKS, PEAKS, pixel_size_um=0.05)
    table = Table(title="stxm_maps on 256 x 256 (ratio, mask, particles)")
    table.add_column("wall (s)", justify="right")
    table.add_row(f"{time.perf_counter() - t0:.3f}")
    console.print(table)

    table = Table(title="ratio map error vs dose (48 x 48, 1 ms dwell, no dead time)")
    table.add_column("open-beam counts/s", justify="right")
    table.add_column("median relative error", justify="right")
    for rate, err in ratio_error_vs_dose([2e5, 2e6, 2e7, 2e8]):
        table.add_row(f"{rate:.0e}", f"{err:.4f}")
    console.print(table)


if __name__ == "__main__":
    main()
