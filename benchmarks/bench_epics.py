"""Benchmark: the same 41-energy 512 x 512 XANES scan over Channel Access vs in process.

1. ``xanes_scan("standard")`` (5 darks, 41 flats, 41 images) on the in-process
   simulated TXM and on the simulated TXM IOC over Channel Access (the beamline
   profile, a caproto subprocess on loopback writing the HDF5 files), both with the
   tiled writer and the live analysis: acquisition time, time until stored, the
   ratio (goal <= 1.15).
2. Per-frame cost of one ``trigger_and_read`` of the camera (exposure, file write,
   StreamDatum) in each mode, and the difference: the CA / IOC-file overhead per frame.

Run: ``.venv/bin/python benchmarks/bench_epics.py [--size 512] [--frames 40]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import bluesky.plan_stubs as bps
from rich.console import Console
from rich.table import Table

from ssb_beamline.sim_devices.ioc import configure_ca_client, running_sim_ioc

console = Console()


def _scan(session) -> tuple[float, float]:
    """(acquisition, until stored) seconds of one standard XANES scan."""
    t0 = time.perf_counter()
    session.RE(session.xanes("standard"))
    t1 = time.perf_counter()
    for worker in (session.live, session.writer):
        if worker is not None:
            worker.flush(600)
    return t1 - t0, time.perf_counter() - t0


def _per_frame(session, frames: int) -> float:
    """Median seconds of one camera trigger_and_read (staged once, like a scan stream)."""
    detector, times = session.txm.detector, []

    def plan():
        yield from bps.open_run()
        yield from bps.stage(detector, wait=True)
        for _ in range(frames):
            t0 = time.perf_counter()
            yield from bps.trigger_and_read([detector])
            times.append(time.perf_counter() - t0)
        yield from bps.unstage(detector, wait=True)
        yield from bps.close_run()

    session.RE(plan())
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="phantom size, px")
    parser.add_argument("--frames", type=int, default=40, help="frames for the per-frame cost")
    args = parser.parse_args()
    configure_ca_client()  # before any CA context: loopback ports of this process only

    from ssb_beamline.devices.beamline_file import default_beamline_file
    from ssb_beamline.profiles.beamline import beamline_session
    from ssb_beamline.profiles.simulated import simulated_beamline
    from ssb_beamline.sim_devices.phantom import PhantomConfig
    from ssb_beamline.storage import open_store

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-epics-") as tmp:
        with console.status("in-process scan..."), simulated_beamline(
            data_dir=f"{tmp}/inproc", phantom=PhantomConfig(shape=(args.size, args.size))
        ) as session:  # fmt: skip
            acq, stored = _scan(session)
            results["in process"] = {"acq": acq, "stored": stored,
                                     "frame": _per_frame(session, args.frames)}  # fmt: skip
        store = open_store(None, data_dir=f"{tmp}/ca")
        ioc_args = ["--size", str(args.size)]
        with console.status("scan over Channel Access..."), running_sim_ioc(
            data_dir=store.detector_dir, args=ioc_args
        ) as ioc:  # fmt: skip
            session = beamline_session(default_beamline_file(), prefix=ioc.prefix, store=store,
                                       detector_dir=store.detector_dir)  # fmt: skip
            with session:
                acq, stored = _scan(session)
                results["over CA"] = {"acq": acq, "stored": stored,
                                      "frame": _per_frame(session, args.frames)}  # fmt: skip
    table = Table(title=f"41-energy {args.size}^2 XANES scan: Channel Access vs in process")
    for column in ("mode", "acquisition (s)", "until stored (s)", "per frame (ms)"):
        table.add_column(column, justify="right")
    for mode, r in results.items():
        table.add_row(mode, f"{r['acq']:.1f}", f"{r['stored']:.1f}", f"{1e3 * r['frame']:.1f}")
    ca, local = results["over CA"], results["in process"]
    table.add_row("ratio CA / in process", f"{ca['acq'] / local['acq']:.2f}",
                  f"{ca['stored'] / local['stored']:.2f} (goal <= 1.15)",
                  f"+{1e3 * (ca['frame'] - local['frame']):.1f} CA/file overhead")  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
