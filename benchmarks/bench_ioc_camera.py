"""Per-frame cost of the simulated TXM IOC over Channel Access versus the in-process sim.

Runs the same energy scan (``bp.list_scan`` of energy + camera, one frame per
point) twice: on the in-process simulated TXM (`make_sim_txm`), and over CA on
the simulated IOC (a subprocess on loopback) with the stock ophyd-async
``Motor`` and ``SimDetector`` + HDF writer. Prints the wall time of each, their
ratio and the per-frame overhead of CA + the IOC's HDF5 plugin; and the cost of
a plain ``bp.count`` frame in both. Both use the same phantom size, exposure and
energy speed (the IOC's axes use the in-process `MotionConfig`).

    .venv/bin/python benchmarks/bench_ioc_camera.py --size 512 --energies 41
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import bluesky.plans as bp
import numpy as np
from bluesky.run_engine import RunEngine, call_in_bluesky_event_loop
from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider
from ophyd_async.epics.adcore import ADWriterFactory
from ophyd_async.epics.adsimdetector import SimDetector
from ophyd_async.epics.motor import Motor
from ophyd_async.plan_stubs import ensure_connected

from ssb_beamline.sim_devices.factory import make_sim_txm
from ssb_beamline.sim_devices.ioc import running_sim_ioc
from ssb_beamline.sim_devices.ioc.frames import txm_phantom_config


def timed(RE: RunEngine, plan) -> float:
    start = time.perf_counter()
    RE(plan)
    return time.perf_counter() - start


def in_process(RE, size: int, energies: np.ndarray, frames: int, exposure: float, folder: Path):
    txm = make_sim_txm(txm_phantom_config(size), directory=folder, exposure_time=exposure)
    RE(ensure_connected(*txm.devices))
    RE(bp.count([txm.detector], num=1))  # warm-up: first file, caches
    scan = timed(RE, bp.list_scan([txm.detector], txm.energy, list(energies)))
    count = timed(RE, bp.count([txm.detector], num=frames))
    return scan, count


def over_ca(RE, size: int, energies: np.ndarray, frames: int, exposure: float, folder: Path):
    with running_sim_ioc(data_dir=folder, args=["--size", str(size)]) as ioc:
        det = SimDetector(ioc.prefix, ADWriterFactory.hdf(
            StaticPathProvider(UUIDFilenameProvider(), folder)), name="cam")  # fmt: skip
        energy = Motor(ioc.pv("Mono:Energy"), name="energy")

        async def setup():
            await det.connect(timeout=30)
            await energy.connect(timeout=30)
            await det.driver.acquire_time.set(exposure)

        call_in_bluesky_event_loop(setup())
        RE(bp.count([det], num=1))
        scan = timed(RE, bp.list_scan([det], energy, list(energies)))
        count = timed(RE, bp.count([det], num=frames))
    return scan, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="phantom size, px")
    parser.add_argument("--energies", type=int, default=41, help="energy points")
    parser.add_argument("--frames", type=int, default=20, help="frames of the count")
    parser.add_argument("--exposure", type=float, default=0.02, help="exposure, s")
    args = parser.parse_args()
    energies = np.linspace(8300.0, 8450.0, args.energies)
    RE = RunEngine({}, call_returns_result=False)
    with tempfile.TemporaryDirectory() as tmp:
        local = in_process(RE, args.size, energies, args.frames, args.exposure, Path(tmp) / "a")
        remote = over_ca(RE, args.size, energies, args.frames, args.exposure, Path(tmp))
    n = {"scan": args.energies, "count": args.frames}
    print(f"{args.size}x{args.size} px, exposure {args.exposure} s")
    print(f"{'plan':<8}{'frames':>8}{'in-process s':>14}{'over CA s':>12}{'ratio':>8}"
          f"{'CA overhead ms/frame':>22}")  # fmt: skip
    for i, name in enumerate(("scan", "count")):
        a, b = local[i], remote[i]
        overhead = (b - a) / n[name] * 1e3
        print(f"{name:<8}{n[name]:>8}{a:>14.2f}{b:>12.2f}{b / a:>8.2f}{overhead:>22.1f}")


if __name__ == "__main__":
    main()
