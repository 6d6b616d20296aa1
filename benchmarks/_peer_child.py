"""Run ONE XANES tool on a stack stored as .npy and print a JSON line (wall, memory).

Started by ``bench_peers.py`` with the project's interpreter (``ours*``, ``floor``) or
with the peers' virtualenv (``pyxas``, ``txm_sandbox``).  Only numpy is imported at
module level, so the file runs in either environment.

The stack file is memory-mapped and, unless ``--mmap``, copied into anonymous
memory; it is read once (so its pages are resident) before the baseline RSS is
taken.  ``peak extra`` is the high-water RSS minus that baseline (``VmHWM``, reset
at the baseline; ``getrusage`` where it cannot be reset), plus the RSS growth of
the worker processes TXM-Sandbox forks for its multiprocess pools
(``getrusage(RUSAGE_CHILDREN)`` minus the baseline they inherit).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

E0_EV = 8342.0
PRE_EDGE = (8300.0, 8327.0)
POST_EDGE = (8370.0, 8450.0)


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak() -> bool:
    """Reset the kernel's RSS high-water mark (``VmHWM``); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def self_peak_bytes() -> int:
    """Peak RSS of this process: ``VmHWM`` (reset before the run) where available,
    else ``getrusage`` (whose ``ru_maxrss`` survives ``exec`` and so may include the
    parent's RSS at fork time)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def read_pass(stack: np.ndarray, workers: int = 2) -> np.ndarray:
    """Per-pixel sum over energy, in pixel chunks on ``workers`` threads."""
    flat = stack.reshape(stack.shape[0], -1)
    out = np.empty(flat.shape[1], np.float32)
    step = 1 << 16
    chunks = [slice(i, min(i + step, flat.shape[1])) for i in range(0, flat.shape[1], step)]

    def work(s: slice) -> None:
        flat[:, s].sum(axis=0, out=out[s])

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(work, chunks))
    return out


def tool_ours(
    stack: np.ndarray, e: np.ndarray, refs: list[np.ndarray], norm: bool, e0: bool = True
):
    from ssb_beamline.analysis import analyse_xanes_stack
    from ssb_beamline.reference_data import ni_k_edge_references

    ref_objs = ni_k_edge_references()
    out = np.ones(stack.shape, np.float32) if norm else None  # preallocated, touched

    def run():
        maps = analyse_xanes_stack(stack, e, ref_objs, norm_out=out, derivative_e0=e0)
        return {"edge": maps.edge_energy, "lcf": maps.fractions, "norm": maps.norm}

    return run


def tool_floor(stack: np.ndarray, e: np.ndarray, refs: list[np.ndarray]):
    return lambda: {"sum": read_pass(stack)}


def tool_pyxas(stack: np.ndarray, e: np.ndarray, refs: list[np.ndarray]):
    """pyxas's low-level pair: ``normalize_2D_xanes2`` + ``fit_2D_xanes_non_iter``."""
    import pyxas

    spectra = {f"ref{k}": r for k, r in enumerate(refs)}

    def run():
        norm, _thickness = pyxas.normalize_2D_xanes2(stack, e, PRE_EDGE, POST_EDGE)
        fit, _offset, _cost = pyxas.fit_2D_xanes_non_iter(norm, e, spectra)
        return {"norm": norm, "lcf": fit}

    return run


def tool_pyxas_pipeline(stack: np.ndarray, e: np.ndarray, refs: list[np.ndarray]):
    """pyxas's documented 2D pipeline ``fit_2D_xanes(img, eng, refs, fit_param)`` (what
    ``fit_2D_xanes_file`` runs per file): pre-edge normalisation, closed-form LCF,
    fractions normalised to [0, 1]; no alignment, iteration, regularisation or
    k-means masks (the defaults of its example parameter file are off for these)."""
    import pyxas

    spectra = {f"ref{k}": r for k, r in enumerate(refs)}
    fit_param = {
        "fit_eng": [float(e[0]), float(e[-1])],
        "norm_txm_flag": 0,  # the stack is absorbance already
        "fit_pre_edge_flag": 1,
        "fit_post_edge_flag": 1,
        "pre_edge": list(PRE_EDGE),
        "post_edge": list(POST_EDGE),
        "align_flag": 0,
        "roi_ratio": 1,
        "align_ref_index": -1,
        "fit_iter_flag": 0,
        "regulation_flag": 0,
        "mask_xanes_flag": 0,
        "norm_edge_method": "new",
    }

    def run():
        res = pyxas.fit_2D_xanes(stack, e, spectra, fit_param)
        return {"norm": res["img_xanes_norm"], "lcf": res["xanes_2d_fit_norm"]}

    return run


def tool_txm_sandbox(stack: np.ndarray, e: np.ndarray, refs: list[np.ndarray], lcf: bool):
    """TXM-Sandbox's ``xanes_analysis``: ``full_spec_preprocess`` (pre-/post-edge line
    fits, normalisation, edge-jump mask) and its documented half-step
    ``find_edge_0p5(optimizer="model")`` after ``fit_spec`` (a cubic polynomial fitted
    to the edge window per pixel, then the upsampled sample nearest 0.5); with
    ``lcf`` its ``lcf()`` (one SLSQP minimisation per pixel).  Its
    ``optimizer="direct"`` half-step does not run in txm-sandbox as installed
    (KeyError 'eoff' without a fitted model, then TypeError: ``lookup`` needs a
    per-pixel level array), so it is not benchmarked."""
    import contextlib
    import io

    from txm_sandbox.utils.xanes_analysis import xanes_analysis

    ref_spec = np.stack([np.interp(e, r[:, 0], r[:, 1]) for r in refs], axis=1)

    def run():
        with contextlib.redirect_stdout(io.StringIO()):  # its decorators print banners
            xa = xanes_analysis(
                stack,
                e,
                E0_EV,
                pre_es=PRE_EDGE[0] - E0_EV,
                pre_ee=PRE_EDGE[1] - E0_EV,
                post_es=POST_EDGE[0] - E0_EV,
                post_ee=POST_EDGE[1] - E0_EV,
            )
            xa.cal_pre_edge_sd()
            xa.full_spec_preprocess(E0_EV)
            lo, hi = E0_EV - 10.0, E0_EV + 6.0
            xa.fit_spec(lo, hi, eoff=E0_EV, optimizer="numpy", order=3, on="norm")
            xa.find_edge_0p5(lo, hi, optimizer="model")
            out = {"norm": xa.norm_spec, "edge": xa.edge0p5_pos_fit}
            if lcf:
                xa.lcf_ref_spec = ref_spec
                xa.lcf()
                out["lcf"] = np.asarray(xa.lcf_model["rlt"])
            return out

    return run


def precision(result: dict) -> str:
    """``name:dtype`` of each output array."""
    return " ".join(f"{k}:{np.asarray(v).dtype}" for k, v in result.items() if v is not None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "tool",
        choices=[
            "ours",
            "ours_norm",
            "ours_lean",
            "floor",
            "pyxas",
            "pyxas_pipeline",
            "txm",
            "txm_lcf",
        ],
    )
    ap.add_argument("--stack", required=True)
    ap.add_argument("--energies", required=True)
    ap.add_argument("--refs", required=True, help=".npz of (M, 2) reference arrays")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument(
        "--mmap",
        action="store_true",
        help="analyse the memory-mapped file itself (4 KB pages: slower for chunked access)",
    )
    args = ap.parse_args()
    stack = np.load(args.stack, mmap_mode="r")
    e = np.load(args.energies)
    with np.load(args.refs) as z:
        refs = [z[k] for k in sorted(z.files)]
    if not args.mmap or args.tool.startswith("txm"):
        # Into anonymous memory (numpy asks for transparent huge pages), as a live or
        # offline analysis holds its stack; TXM-Sandbox pickles the array to its
        # worker pool and cannot take a memmap at all.
        stack = np.array(stack)
    read_pass(stack)  # make the stack resident before the baseline
    makers: dict[str, Callable[[], Callable[[], object]]] = {
        "ours": lambda: tool_ours(stack, e, refs, norm=False),
        "ours_norm": lambda: tool_ours(stack, e, refs, norm=True),
        "ours_lean": lambda: tool_ours(stack, e, refs, norm=False, e0=False),
        "floor": lambda: tool_floor(stack, e, refs),
        "pyxas": lambda: tool_pyxas(stack, e, refs),
        "pyxas_pipeline": lambda: tool_pyxas_pipeline(stack, e, refs),
        "txm": lambda: tool_txm_sandbox(stack, e, refs, lcf=False),
        "txm_lcf": lambda: tool_txm_sandbox(stack, e, refs, lcf=True),
    }
    run = makers[args.tool]()
    base = rss_bytes()
    if not reset_peak():
        print("# cannot reset VmHWM; the peak may include earlier memory", file=sys.stderr)
    walls = []
    dtypes = ""
    for _ in range(max(1, args.repeat)):
        t0 = time.perf_counter()
        result = run()
        walls.append(time.perf_counter() - t0)
        dtypes = precision(result)
        del result
    self_peak = self_peak_bytes()
    # TXM-Sandbox's forked workers start with this process's resident pages (~base):
    # count their growth.  Other children (e.g. a helper that pyxas starts on import)
    # are not part of the computation, and an exec'd child's ru_maxrss includes its
    # parent's RSS at fork time, so they are not counted.
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    pools = args.tool.startswith("txm")
    child_extra = max(0, child_peak - base) if pools and child_peak else 0
    extra = max(0, self_peak - base) + child_extra
    print(
        json.dumps(
            {
                "tool": args.tool,
                "wall_s": min(walls),
                "walls": walls,
                "peak_extra_bytes": extra,
                "child_peak_bytes": child_peak,
                "stack_bytes": int(stack.nbytes),
                "python": sys.version.split()[0],
                "precision": dtypes,
                "load": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
