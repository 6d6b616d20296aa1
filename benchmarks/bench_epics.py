"""Benchmark: the same 41-energy 512 x 512 XANES scan over Channel Access vs in process.

1. ``xanes_scan("standard")`` (5 darks, 41 flats, 41 images) on the in-process
   simulated TXM and on the simulated TXM IOC over Channel Access (the beamline
   profile, a caproto subprocess on loopback writing the HDF5 files), both with the
   tiled writer and the live analysis: acquisition time, time until stored, the
   ratio (goal <= 1.15).
2. Per-frame cost of one ``trigger_and_read`` of the camera (exposure, file write,
   StreamDatum) in each mode, and the difference: the CA / IOC-file overhead per frame.
3. Per event and per move over CA: one primary event (camera, I0, energy, zone-plate
   z, detector z); its four plain reads one after the other (as bluesky's
   ``trigger_and_read`` does) and with ``asyncio.gather`` (concurrent CA gets used to
   stall ~40 ms on the sim IOC, while Nagle was on on its circuits: see
   `ssb_beamline.sim_devices.ioc.server.NoDelayContext`); one 1 eV energy step.
4. The same over CA with Nagle on in the IOC (``--nagle``: caproto's plain server, as
   before `~ssb_beamline.sim_devices.ioc.server.NoDelayContext`), and with the stock
   ophyd-async waits and reads (``--stock``): every trigger opens and closes its own
   CA subscriptions (``Acquire``, ``NumCaptured``, ``DetectorState``) instead of using
   the detector's monitors (`TXMAreaDetector.keep_monitors`), every move gets the
   axis' limits, readback, velocity and acceleration, and every event gets I0 and the
   readbacks (`BeamlineAxis.keep_monitors`, `I0Monitor.keep_monitors`), and the
   per-frame phases of both.

5. The scan's wall time split by RunEngine message (``RE.msg_hook``: a move's
   ``wait``, the detector's ``wait``, each ``read``, ``save``, ...) in ms per frame,
   for each mode and CA minus in process: where the remaining overhead is.

Both modes expose 20 ms (set explicitly), render the same 512^2 phantom and write
one HDF5 file per stream with a checksummed chunk per frame. Like for like: the
IOC's motor records settle as long as the in-process axes (``DLY`` = 10 ms energy,
5 ms others) and the CA scan moves the sample out as far as the in-process one (a
copy of the packaged beamline file with ``sample_out_x`` = 1.5 fields of view).

Run: ``.venv/bin/python benchmarks/bench_epics.py [--size 512] [--frames 40] [--stock] [--nagle]
[--repeat 3]``. On a shared machine the load drifts between two scans by more than the
CA overhead (one of each gave ratios from 0.91 to 2.32 at load 7-24), so ``--repeat N``
alternates the modes N times and prints medians, the ratio of each pair and the
1-minute load at the start of each scan.
``SSB_SIM_IOC_PROFILE=ioc.prof`` writes a cProfile of the IOC when it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import tempfile
import time

import bluesky.plan_stubs as bps
from _msg_clock import MsgClock, print_messages  # benchmarks/, this script's folder
from bluesky.run_engine import call_in_bluesky_event_loop
from rich.console import Console
from rich.table import Table

from ssb_beamline.sim_devices.ioc import configure_ca_client, running_sim_ioc
from ssb_beamline.sim_devices.ioc.server import NAGLE_ENV

console = Console()


EXPOSURE_S = 0.02
STOCK = "over CA, stock waits"
NAGLE = "over CA, Nagle on"


#: Frames of a standard XANES scan: 5 darks, 41 flats, 41 images.
SCAN_FRAMES = 87


def _scan(session) -> tuple[float, float, dict[str, float]]:
    """(acquisition, until stored) seconds of one standard XANES scan, and its `MsgClock`."""
    clock = MsgClock(session.RE)
    t0 = time.perf_counter()
    try:
        session.RE(session.xanes("standard", exposure_time=EXPOSURE_S))
    finally:
        by_msg = clock.stop()
    t1 = time.perf_counter()
    for worker in (session.live, session.writer):
        if worker is not None:
            worker.flush(600)
    return t1 - t0, time.perf_counter() - t0, by_msg


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


class _PhaseClock:
    """Times the phases of each camera trigger by wrapping its ophyd-async acquire logic.

    arm: ``Acquire`` put until its readback says acquiring (CA round trips); frame: from
    then until the acquisition's put completes and ``DetectorState`` is idle (exposure,
    IOC render and HDF5 write, NumCaptured monitor); the rest of ``trigger_and_read``
    is reading the detector (StreamResource/StreamDatum) and bluesky's bookkeeping.
    """

    def __init__(self, detector) -> None:
        self.logic = detector._acquire_logic  # instrumenting, not driving
        self.arm: list[float] = []
        self.frame: list[float] = []
        self._start, self._armed = self.logic.start_acquiring, 0.0
        self._idle = self.logic.wait_for_idle
        self.logic.start_acquiring, self.logic.wait_for_idle = self._timed_arm, self._timed_idle

    async def _timed_arm(self):
        t0 = time.perf_counter()
        result = await self._start()
        self._armed = time.perf_counter()
        self.arm.append(self._armed - t0)
        return result

    async def _timed_idle(self):
        result = await self._idle()
        self.frame.append(time.perf_counter() - self._armed)
        return result

    def restore(self) -> None:
        self.logic.start_acquiring, self.logic.wait_for_idle = self._start, self._idle


def _phases(session, frames: int) -> dict[str, float]:
    """Median ms per trigger_and_read of the CA camera, split into its phases."""
    clock = _PhaseClock(session.txm.detector)
    try:
        total = _per_frame(session, frames)
    finally:
        clock.restore()
    arm, frame = statistics.median(clock.arm[1:]), statistics.median(clock.frame[1:])
    exposure = call_in_bluesky_event_loop(session.txm.detector.driver.acquire_time.get_value())
    return {"trigger_and_read": 1e3 * total, "arm (Acquire put + readback)": 1e3 * arm,
            "frame (exposure + IOC render/write + idle)": 1e3 * frame,
            "  of which AcquireTime": 1e3 * exposure,
            "read + documents": 1e3 * (total - arm - frame)}  # fmt: skip


def _event_and_move(session, frames: int) -> dict[str, float]:
    """Median ms of one primary event, of its four plain reads, and of one energy step."""
    txm = session.txm
    plain = [txm.i0, txm.energy, txm.zp_z, txm.det_z]
    times: dict[str, list[float]] = {k: [] for k in ("event", "move")}

    def timed(key, plan):
        t0 = time.perf_counter()
        yield from plan
        times[key].append(time.perf_counter() - t0)

    def plan():
        yield from bps.open_run()
        yield from bps.stage(txm.detector, wait=True)
        start = yield from bps.rd(txm.energy)
        for i in range(frames):
            yield from timed("event", bps.trigger_and_read([txm.detector, *plain]))
            yield from timed("move", bps.mv(txm.energy, start + (1.0 if i % 2 == 0 else 0.0)))
        yield from bps.unstage(txm.detector, wait=True)
        yield from bps.close_run()

    async def reads() -> tuple[list[float], list[float]]:
        serial, gathered = [], []
        for _ in range(frames):
            t0 = time.perf_counter()
            for device in plain:
                await device.read()
            t1 = time.perf_counter()
            await asyncio.gather(*(device.read() for device in plain))
            serial.append(t1 - t0)
            gathered.append(time.perf_counter() - t1)
        return serial, gathered

    session.RE(plan())
    serial, gathered = call_in_bluesky_event_loop(reads())
    med = {k: 1e3 * statistics.median(v[1:]) for k, v in times.items()}
    return {"event (camera, I0, energy, zp_z, det_z)": med["event"],
            "  I0, energy, zp_z, det_z reads, one after the other": 1e3 * statistics.median(serial),
            "  the same reads, asyncio.gather": 1e3 * statistics.median(gathered),
            "1 eV energy step (bps.mv)": med["move"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="phantom size, px")
    parser.add_argument("--frames", type=int, default=40, help="frames for the per-frame cost")
    parser.add_argument(
        "--phases-only", action="store_true", help="only the per-frame phases over CA (no scans)"
    )
    parser.add_argument(
        "--stock", action="store_true", help="also run over CA with the stock per-trigger waits"
    )
    parser.add_argument(
        "--nagle", action="store_true",
        help="also run over CA with Nagle on in the IOC (caproto's plain server: the 'before')",
    )  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="scan each mode this many times, alternating the modes (a shared machine's load "
        "drifts: medians and paired ratios of alternated scans are fairer than one of each)",
    )  # fmt: skip
    args = parser.parse_args()
    configure_ca_client()  # before any CA context: loopback ports of this process only

    results: dict[str, list[dict[str, float]]] = {}
    phases: dict[str, dict[str, float]] = {}
    modes = ([STOCK] if args.stock else []) + ([NAGLE] if args.nagle else []) + ["over CA"]
    with tempfile.TemporaryDirectory(prefix="bench-epics-") as tmp:
        for rep in range(max(1, args.repeat)):
            if not args.phases_only:
                _run_local(f"{tmp}/inproc{rep}", args, results)
            for mode in modes:
                _run_ca(mode, f"{tmp}/ca{rep}-{len(phases)}", args, results,
                        phases if mode not in phases else None)  # fmt: skip
            if args.phases_only:
                break
    if results:
        _print_ratio(results, args.size)
    breakdown = Table(title="per-frame time over CA (median ms of one camera trigger_and_read)")
    breakdown.add_column("phase")
    for mode in phases:
        breakdown.add_column(mode, justify="right")
    for phase in phases["over CA"]:
        breakdown.add_row(phase, *(f"{phases[mode][phase]:.1f}" for mode in phases))
    console.print(breakdown)


def _load() -> float:
    """1-minute load average (the machine is shared: CA needs two processes scheduled)."""
    return os.getloadavg()[0]


def _run_local(data_dir: str, args, results: dict) -> None:
    """One scan and the per-frame cost in process."""
    from ssb_beamline.profiles.simulated import simulated_beamline
    from ssb_beamline.sim_devices.phantom import PhantomConfig

    with console.status("in-process scan..."), simulated_beamline(
        data_dir=data_dir, phantom=PhantomConfig(shape=(args.size, args.size))
    ) as session:  # fmt: skip
        load = _load()
        acq, stored, by_msg = _scan(session)
        frame = _per_frame(session, args.frames)
        results.setdefault("in process", []).append(
            {"acq": acq, "stored": stored, "frame": frame, "load": load, "load_end": _load()}
        )
        results["in process"][-1]["msgs"] = by_msg


def _like_for_like_beamline_file(data_dir: str, size: int) -> str:
    """The packaged beamline file, with the in-process scan's sample-out position.

    The packaged file moves the sample 1000 um out (out of any field up to ~5000 px);
    the in-process scan moves it 1.5 fields of view (100 um at 512 px): at 5 mm/s the
    two moves per scan would differ by 0.36 s of travel, which is not CA overhead.
    """
    import yaml

    from ssb_beamline.devices.beamline_file import default_beamline_file
    from ssb_beamline.sim_devices.phantom import PhantomConfig

    config = yaml.safe_load(default_beamline_file().read_text())
    pixel_um = PhantomConfig(shape=(size, size)).pixel_size_um
    config["sample_out_x"] = float(math.ceil(size * pixel_um * 1.5))  # as make_sim_txm
    path = os.path.join(data_dir, "beamline.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path


def _run_ca(mode: str, data_dir: str, args, results: dict, phases: dict | None) -> None:
    """Scan (and per-frame phases, if ``phases``) over CA on a fresh IOC, store and session."""
    from ssb_beamline.devices.axis import BeamlineAxis
    from ssb_beamline.devices.beam_monitors import I0Monitor
    from ssb_beamline.profiles.beamline import beamline_session
    from ssb_beamline.storage import open_store

    store = open_store(None, data_dir=data_dir)
    beamline_file = _like_for_like_beamline_file(data_dir, args.size)
    # before the session connects its devices: stock = a CA get per value
    BeamlineAxis.keep_monitors = I0Monitor.keep_monitors = mode != STOCK
    os.environ[NAGLE_ENV] = "1" if mode == NAGLE else "0"  # the IOC subprocess inherits it
    with console.status(f"{mode}..."), running_sim_ioc(
        data_dir=store.detector_dir, args=["--size", str(args.size)]
    ) as ioc:  # fmt: skip
        session = beamline_session(beamline_file, prefix=ioc.prefix, store=store,
                                   detector_dir=store.detector_dir)  # fmt: skip
        session.txm.detector.keep_monitors = mode != STOCK
        with session:
            if not args.phases_only:
                load = _load()
                acq, stored, by_msg = _scan(session)
                results.setdefault(mode, []).append(
                    {"acq": acq, "stored": stored, "frame": _per_frame(session, args.frames),
                     "load": load, "load_end": _load()}
                )  # fmt: skip
                results[mode][-1]["msgs"] = by_msg
            if phases is not None:
                phases[mode] = _phases(session, args.frames)
                phases[mode].update(_event_and_move(session, args.frames))


def _print_ratio(results: dict[str, list[dict[str, float]]], size: int) -> None:
    runs = len(results["in process"])
    title = f"41-energy {size}^2 XANES scan: Channel Access vs in process"
    table = Table(title=title + (f" (medians of {runs} alternated runs)" if runs > 1 else ""))
    columns = ("mode", "acquisition (s)", "until stored (s)", "per frame (ms)",
               "load (start-end of each run)")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    med = {mode: {key: statistics.median(r[key] for r in rs) for key in rs[0] if key != "msgs"}
           for mode, rs in results.items()}  # fmt: skip
    for mode, r in med.items():
        loads = " ".join(f"{x['load']:.1f}-{x['load_end']:.1f}" for x in results[mode])
        table.add_row(mode, f"{r['acq']:.1f}", f"{r['stored']:.1f}", f"{1e3 * r['frame']:.1f}",
                      loads)  # fmt: skip
    local = med["in process"]
    for mode in (m for m in med if m != "in process"):
        ca = med[mode]
        overhead = f"+{1e3 * (ca['frame'] - local['frame']):.1f} CA/file overhead"
        stored = f"{ca['stored'] / local['stored']:.2f} (goal <= 1.15)"
        table.add_row(f"ratio {mode} / in process", f"{ca['acq'] / local['acq']:.2f}", stored,
                      overhead, "")  # fmt: skip
        if runs > 1:
            pairs = list(zip(results["in process"], results[mode], strict=True))
            acq = " ".join(f"{c['acq'] / i['acq']:.2f}" for i, c in pairs)
            stored = " ".join(f"{c['stored'] / i['stored']:.2f}" for i, c in pairs)
            table.add_row("  run by run", acq, stored, "", "")
    console.print(table)
    print_messages(results, SCAN_FRAMES, console)


if __name__ == "__main__":
    main()
