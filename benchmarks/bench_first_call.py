"""First call in a fresh process vs warm, and the maps against the read-pass floor.

Each case runs in its own Python process (``python bench_first_call.py --child``):
the stack (default 100 x 2048 x 2048 float32, the synthetic mixture of
``bench_analysis.py``) is built, then ``analyse_xanes_stack`` is timed on its
first call (``cold``: kernels compiled, or loaded from the disk cache, thread
pool and scratch buffers created) and on ``--runs`` more calls (``warm``:
median and best), next to ``--runs`` read passes over the same stack in the same
process (``stack.sum`` over the energy axis split over the same workers: the
floor for any per-pixel map).  Four processes are started:

* ``empty cache``: ``SSB_BEAMLINE_NUMBA_CACHE`` points at a new, empty
  directory, so the first call compiles every kernel (a first install);
* ``disk cache``: the same directory again, so the first call loads them
  (every later process on the machine);
* ``disk+backgr``: the same directory, and ``warm_up_kernels(background=True)``
  right after the import, as the live callback does when it is built: numba's
  first-use initialisation overlaps the construction of the stack (in a scan or
  a replay: the first documents and frames; ``setup s``: the time between the
  import and the call, that it overlaps);
* ``after ahead``: a second empty directory filled by ``python -m
  ssb_beamline.analysis._jit_ahead`` (the ``make install`` / ``make kernels``
  step; its wall and CPU time are printed), then a new process as the first
  one after an install.

``disk cache`` and ``after ahead`` are bare first calls (a script, or a notebook
that calls ``analyse_xanes_stack`` straight away): nothing loads before the call.
The call itself hands the mapping of its fresh output pages to a background
thread (``ssb_beamline._page_mapping``: pooled memory, reused by the warm calls
once the last maps are dropped), then loads its compiled pass on its own thread
(``load_joint_pass``: numba's runtime helpers and the pass from the disk cache)
and builds its operators meanwhile; all of it is inside the timed first call.
``--fresh N`` runs the ``disk cache`` process N times (each a new process) and
prints the median of their cold / warm ratios, since one process's first call
depends on the state of the machine's memory (page faults of fresh pages cost
several times more when the VM must find or compact them); ``--no-ahead`` skips
the ahead step (about 30 s of CPU).

Goals (issue 18): cold <= 1.5 x warm; maps <= 5 x the read pass (medians).

Usage::

    .venv/bin/python benchmarks/bench_first_call.py             # 100 x 2048 x 2048
    .venv/bin/python benchmarks/bench_first_call.py --size 512  # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(n: int, size: int, runs: int, background: bool) -> dict:
    t_import = time.perf_counter()
    import numpy as np

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_analysis import read_pass, synthetic_stack

    from ssb_beamline.analysis import analyse_xanes_stack, warm_up_kernels
    from ssb_beamline.reference_data import ni_k_edge_references

    t_import = time.perf_counter() - t_import
    t_setup = time.perf_counter()
    if background:  # as the live callback does when it is built
        warm_up_kernels(background=True)
    stack, e = synthetic_stack((n, size, size))
    refs = ni_k_edge_references()
    t_setup = time.perf_counter() - t_setup
    c0, t0 = time.process_time(), time.perf_counter()
    analyse_xanes_stack(stack, e, refs)
    cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
    warm, floor, warm_cpu = [], [], []
    for _ in range(runs):
        c0, t0 = time.process_time(), time.perf_counter()
        analyse_xanes_stack(stack, e, refs)
        warm.append(time.perf_counter() - t0)
        warm_cpu.append(time.process_time() - c0)
        t0 = time.perf_counter()
        read_pass(stack)
        floor.append(time.perf_counter() - t0)
    return {
        "import": t_import,
        "setup": t_setup,
        "cold": cold,
        "cold_cpu": cold_cpu,
        "warm_cpu": float(np.median(warm_cpu)),
        "warm_median": float(np.median(warm)),
        "warm_best": min(warm),
        "floor_median": float(np.median(floor)),
        "floor_best": min(floor),
    }


def run_child(args: argparse.Namespace, env: dict, background: bool) -> dict:
    """One ``--child`` process; its result row."""
    cmd = [sys.executable, __file__, "--child", "--energies", str(args.energies)]
    cmd += ["--size", str(args.size), "--runs", str(args.runs)]
    cmd += ["--background"] if background else []
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compile_ahead(env: dict) -> tuple[float, float] | None:
    """Run the ``make kernels`` step; (wall s, CPU s of the child), None without it."""
    import importlib.util
    import resource

    if importlib.util.find_spec("ssb_beamline.analysis._jit_ahead") is None:
        return None
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "ssb_beamline.analysis._jit_ahead"]
    subprocess.run(cmd, env=env, capture_output=True, check=True)
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return time.perf_counter() - t0, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--energies", type=int, default=100)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--runs", type=int, default=5, help="warm calls and read passes")
    ap.add_argument("--fresh", type=int, default=1, help="disk cache processes (median)")
    ap.add_argument("--no-ahead", action="store_true", help="skip the make-kernels rows")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--background", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.energies, args.size, args.runs, args.background)))
        return
    import numpy as np

    load = os.getloadavg()
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="ssb-numba-") as cache,
        tempfile.TemporaryDirectory(prefix="ssb-numba-ahead-") as cache2,
    ):
        env = {**os.environ, "SSB_BEAMLINE_NUMBA_CACHE": cache}
        rows.append(("empty cache", run_child(args, env, background=False)))
        for _ in range(max(1, args.fresh)):
            rows.append(("disk cache", run_child(args, env, background=False)))
        rows.append(("disk+backgr", run_child(args, env, background=True)))
        env = {**os.environ, "SSB_BEAMLINE_NUMBA_CACHE": cache2}
        ahead = None if args.no_ahead else compile_ahead(env)
        if ahead is not None:
            rows.append(("after ahead", run_child(args, env, background=False)))
    shape = f"{args.energies} x {args.size} x {args.size}"
    print(f"analyse_xanes_stack, {shape} float32; load average before: {load[0]:.2f}")
    print(
        f"{'process':12} {'import s':>8} {'setup s':>7} {'cold s':>7} {'warm med':>8} "
        f"{'warm best':>9} "
        f"{'cold/warm':>9} {'floor med':>9} {'maps/floor':>10} {'cpu cold/warm':>13}"
    )
    for label, r in rows:
        print(
            f"{label:12} {r['import']:8.2f} {r['setup']:7.2f} {r['cold']:7.2f} "
            f"{r['warm_median']:8.3f} "
            f"{r['warm_best']:9.3f} {r['cold'] / r['warm_median']:9.2f} "
            f"{r['floor_median']:9.3f} {r['warm_median'] / r['floor_median']:10.1f} "
            f"{r['cold_cpu'] / r['warm_cpu']:13.2f}"
        )
    bare = [r["cold"] / r["warm_median"] for label, r in rows if label == "disk cache"]
    print(
        f"disk cache, {len(bare)} fresh processes: cold/warm median {np.median(bare):.2f} "
        f"(min {min(bare):.2f}, max {max(bare):.2f}); load average after: "
        f"{os.getloadavg()[0]:.2f}"
    )
    if ahead is not None:
        print(
            f"ahead step (make kernels) into an empty cache: {ahead[0]:.1f} s wall, "
            f"{ahead[1]:.1f} s CPU; load average after: {os.getloadavg()[0]:.2f}"
        )
    print("goals: cold/warm <= 1.5 (disk cache); maps/floor <= 5 (medians of --runs)")
    print(
        "disk+backgr: warm_up_kernels(background=True) right after the import (as the live "
        "callback does when built), overlapping the stack's construction (setup s); other "
        "rows: a bare first call; cold is timed from the call in every row; cpu cold/warm: "
        "process CPU time of the first call over the median warm one (less load-sensitive)"
    )


if __name__ == "__main__":
    main()
