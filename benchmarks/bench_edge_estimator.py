"""Bias and noise of the half-step estimators on the package's energy grids.

Spectra: noiseless mixtures of the measured NiO / LiNiO2 references over SOC
0-1 (41 values), sampled on each preset grid, plus Gaussian noise of standard
deviation ``sigma`` (normalised units; 0.01-0.03 is typical of TXM pixels).
Truth: the 0.5 crossing of the same mixture on a 0.01 eV grid.  For each
estimator (``line``: the 4-point least-squares line used before issue 18;
``pchip``: the monotone cubic) the table prints the median and mean signed
error, the standard deviation and the RMSE over ``--repeats`` noise draws per
SOC.  (Speed: ``bench_analysis.py``.)

Usage::

    .venv/bin/python benchmarks/bench_edge_estimator.py
    .venv/bin/python benchmarks/bench_edge_estimator.py --repeats 2000
"""

from __future__ import annotations

import argparse

import numpy as np

from ssb_beamline.analysis._kernels import half_step_block
from ssb_beamline.plans.energy_grids import ni_k_edge_grid
from ssb_beamline.reference_data import ni_k_edge_references

SOC = np.linspace(0.0, 1.0, 41)


def mixtures(e: np.ndarray) -> np.ndarray:
    r0, r1 = (r.at(e) for r in ni_k_edge_references())
    return r0[:, None] + SOC[None, :] * (r1 - r0)[:, None]


def truth() -> np.ndarray:
    e = np.arange(8320.0, 8360.0, 0.01)
    y = mixtures(e)
    i = np.argmax(y >= 0.5, axis=0) - 1
    k = np.arange(SOC.size)
    return e[i] + (0.5 - y[i, k]) / (y[i + 1, k] - y[i, k]) * 0.01


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=500, help="noise draws per SOC")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.01, 0.02, 0.03])
    args = ap.parse_args()
    true = truth()
    rng = np.random.default_rng(0)
    head = f"{'grid':9} {'step':>5} {'sigma':>5} {'estimator':9} "
    head += f"{'median':>7} {'mean':>7} {'sd':>6} {'rmse':>6}"
    print(head)
    for preset in ("quick", "standard", "fine", "full"):
        e = ni_k_edge_grid(preset)
        win = (e >= 8331.0) & (e <= 8351.0)  # e0 -10 .. +6 eV, like edge_energy_map
        ew = e[win]
        clean = mixtures(e)[win].astype(np.float32)
        for sigma in args.sigmas:
            reps = 1 if sigma == 0 else args.repeats
            y = np.repeat(clean, reps, axis=1)
            if sigma:
                y += rng.normal(0.0, sigma, y.shape).astype(np.float32)
            tr = np.repeat(true, reps)
            for interp in ("line", "pchip"):
                err = half_step_block(y, ew, interp=interp) - tr
                err = err[np.isfinite(err)]
                print(
                    f"{preset:9} {ew[1] - ew[0]:5.2f} {sigma:5.2f} {interp:9} "
                    f"{np.median(err):+7.3f} {np.mean(err):+7.3f} {np.std(err):6.3f} "
                    f"{np.sqrt(np.mean(err**2)):6.3f}"
                )


if __name__ == "__main__":
    main()
