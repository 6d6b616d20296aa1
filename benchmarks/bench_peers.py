"""Like-for-like benchmark: this package vs pyxas vs TXM-Sandbox vs one read pass.

Every tool runs in its own subprocess (``_peer_child.py``) on the SAME synthetic
stack (100 energies, float32 absorbance), saved once per size to an ``.npy`` file
that each child memory-maps and (unless ``--mmap``) copies into RAM before timing.
EVERY tool is timed as the best of the same ``--repeat`` runs in its process;
the child reports that, its peak extra resident memory (``VmHWM`` /
``getrusage``) and the dtype of each output (the tool's float precision).

Rows, grouped by what they compute ("time / same" divides by the row of ours
that computes at least the same outputs: ``ours_norm``):

* ours_norm: ``analyse_xanes_stack`` with the normalised stack written into a
  preallocated ``norm_out`` (normalised stack + half-step edge map + derivative
  e0 + 2-reference LCF + edge-jump mask): the full output set;
* ours / ours_lean: maps only (no normalised stack), with and without the
  per-pixel derivative e0 (which no peer computes); for scale, not like for like;
* pyxas_pipeline: pyxas's documented 2D pipeline ``fit_2D_xanes`` (normalised
  stack + closed-form LCF normalised to [0, 1]); pyxas has no edge-energy map;
* pyxas: its low-level pair ``normalize_2D_xanes2`` + ``fit_2D_xanes_non_iter``
  (normalised stack + LCF);
* txm: TXM-Sandbox ``xanes_analysis``: ``full_spec_preprocess`` (normalised
  stack + edge-jump mask) + its documented half-step ``fit_spec`` +
  ``find_edge_0p5(optimizer="model")`` (a per-pixel Python loop: small stacks
  only); its ``optimizer="direct"`` half-step fails in the released package
  (KeyError 'eoff', then TypeError in ``lookup``), so it is not a row;
* txm_lcf: the same + its ``lcf()`` (one SLSQP minimisation per pixel), 64 px only;
* floor: one read pass over the stack (``sum`` over energy, 2 threads).

pyxas and TXM-Sandbox are never project dependencies: they live in a separate
virtualenv (``--peers-venv``, default ``.peers/venv`` in the checkout, created on
first use: ``pip install pyxas multiprocess scikit-learn`` and ``pip install
--no-deps txm-sandbox``; tomopy, not on PyPI, is not needed by these modules).

Usage::

    .venv/bin/python benchmarks/bench_peers.py                  # 2048, 512 and 64 px
    .venv/bin/python benchmarks/bench_peers.py --sizes 512 64   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_analysis import synthetic_stack  # noqa: E402

from ssb_beamline.reference_data import ni_k_edge_references  # noqa: E402

#: tool -> (label, outputs)
TOOLS = {
    "ours_norm": ("ssb_beamline analyse_xanes_stack (+norm_out)", "norm+edge+e0+LCF"),
    "ours": ("ssb_beamline analyse_xanes_stack (maps)", "edge+e0+LCF"),
    "ours_lean": ("ssb_beamline analyse (derivative_e0=False)", "edge+LCF"),
    "pyxas_pipeline": ("pyxas fit_2D_xanes (documented pipeline)", "norm+LCF"),
    "pyxas": ("pyxas normalize_2D_xanes2 + fit_2D_xanes_non_iter", "norm+LCF"),
    "txm": ("TXM-Sandbox preprocess + find_edge_0p5(model)", "norm+edge"),
    "txm_lcf": ("TXM-Sandbox same + lcf (SLSQP per pixel)", "norm+edge+LCF"),
    "floor": ("read-pass floor (np.sum over energy)", "-"),
}
PEER_TOOLS = {"pyxas", "pyxas_pipeline", "txm", "txm_lcf"}
#: Which tools run at which frame size (px).  TXM-Sandbox's half-step and LCF loop
#: over pixels in Python, so they run on the small stacks only; pyxas needs ~5x the
#: stack in RAM.
DEFAULT_PLAN = {
    2048: ["floor", "ours_norm", "ours", "ours_lean", "pyxas_pipeline", "pyxas"],
    512: ["floor", "ours_norm", "ours", "ours_lean", "pyxas_pipeline", "pyxas", "txm"],
    64: ["floor", "ours_norm", "ours", "pyxas_pipeline", "pyxas", "txm", "txm_lcf"],
}


def ensure_peers_venv(path: Path) -> Path:
    """The peers' interpreter, creating the virtualenv on first use."""
    py = path / "bin" / "python"
    ok = py.exists() and (
        subprocess.run(
            [str(py), "-c", "import pyxas, multiprocess, sklearn, txm_sandbox"],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    if ok:
        return py
    print(f"# creating the peers' virtualenv {path} (pyxas, TXM-Sandbox)", flush=True)
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    pip = [str(py), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "pyxas", "multiprocess", "scikit-learn"], check=True)
    subprocess.run([*pip, "--no-deps", "txm-sandbox"], check=True)
    return py


def prepare(size: int, n: int, workdir: Path) -> dict[str, str]:
    """Write the stack, energies and references of one size; return their paths."""
    workdir.mkdir(parents=True, exist_ok=True)
    paths = {
        "stack": str(workdir / f"stack_{n}x{size}x{size}.npy"),
        "energies": str(workdir / f"energies_{n}.npy"),
        "refs": str(workdir / "refs.npz"),
    }
    if not Path(paths["stack"]).exists():
        stack, e = synthetic_stack((n, size, size))
        np.save(paths["stack"], stack)
        np.save(paths["energies"], e)
        del stack
    refs = ni_k_edge_references()
    np.savez(
        paths["refs"],
        **{f"ref{k}": np.stack([r.energy_ev, r.mu_norm], 1) for k, r in enumerate(refs)},
    )
    return paths


def mem_available() -> int:
    """MemAvailable from /proc/meminfo, bytes."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 8 << 30  # pragma: no cover


def run_child(
    python: str,
    tool: str,
    paths: dict[str, str],
    repeat: int,
    timeout: float,
    mem_limit: int,
    mmap: bool = False,
) -> dict:
    """Run one tool in a subprocess whose address space is capped at ``mem_limit``
    (a peer that needs more fails with MemoryError instead of waking the OOM killer)."""
    cmd = [python, str(HERE / "_peer_child.py"), tool, "--repeat", str(repeat)]
    cmd += [f"--{k}={v}" for k, v in paths.items()]
    cmd += ["--mmap"] if mmap else []
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))

    try:
        proc = subprocess.run(
            cmd,
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            preexec_fn=cap,  # no threads run in this script
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout > {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"failed (rc={proc.returncode}): {tail[:60]}"}
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=sorted(DEFAULT_PLAN, reverse=True))
    ap.add_argument("--energies", type=int, default=100, help="energies per stack")
    ap.add_argument("--peers-venv", type=Path, default=HERE.parent / ".peers" / "venv")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/ssb_bench_peers"))
    ap.add_argument("--repeat", type=int, default=3, help="runs of every tool (best)")
    ap.add_argument("--timeout", type=float, default=900.0, help="per child, s")
    ap.add_argument(
        "--mmap",
        action="store_true",
        help="tools read the memory-mapped .npy itself (default: each child loads it into RAM)",
    )
    ap.add_argument(
        "--mem-limit-gb",
        type=float,
        default=None,
        help="address-space cap per child (default: 80%% of MemAvailable, at most 24)",
    )
    args = ap.parse_args()
    if args.mem_limit_gb is None:
        mem_limit = int(min(0.8 * mem_available(), 24 << 30))
    else:
        mem_limit = int(args.mem_limit_gb * (1 << 30))
    peers_py = str(ensure_peers_venv(args.peers_venv))
    rows = []
    for size in args.sizes:
        plan = DEFAULT_PLAN.get(size, DEFAULT_PLAN[512])
        paths = prepare(size, args.energies, args.workdir)
        label = f"{args.energies}x{size}x{size}"
        results = {}
        for tool in plan:
            peer = tool in PEER_TOOLS
            py = peers_py if peer else sys.executable
            res = run_child(py, tool, paths, args.repeat, args.timeout, mem_limit, args.mmap)
            results[tool] = res
            print(f"# {label} {tool}: {res}", file=sys.stderr, flush=True)
        ours = results.get("ours_norm", {}).get("wall_s")
        for tool in plan:
            res = results[tool]
            label_t, outputs = TOOLS[tool]
            if "error" in res:
                rows.append((label_t, outputs, label, res["error"], "", "", ""))
                continue
            mem = res["peak_extra_bytes"] / res["stack_bytes"]
            ratio = f"{res['wall_s'] / ours:.1f}x" if ours else "-"
            rows.append(
                (label_t, outputs, label, f"{res['wall_s']:.3f}", f"{mem:.2f}x", ratio,
                 res.get("precision", "?"))
            )  # fmt: skip
    head = ("tool", "outputs", "stack", "wall s", "peak mem", "time/same", "precision")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(f"cpus={os.cpu_count()} numpy={np.__version__} load={os.getloadavg()[0]:.2f}")
    print(line.format(*head))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line.format(*r))
    print(
        f"stack {'memory-mapped' if args.mmap else 'loaded into RAM'} in each child; every "
        f"tool: best of {args.repeat} runs in its own process.\ntime/same: wall / "
        "ours_norm's (which computes every output of every row). peak mem: RSS growth "
        "during the call\n(+ TXM-Sandbox's forked workers) / stack size; ours_norm's "
        "preallocated norm_out is not counted.\nprecision: dtype of each output as "
        "returned (pyxas keeps the input's float32 for the normalised stack)."
    )


if __name__ == "__main__":
    main()
