"""Measurement: does a ``1 / se^2``-weighted trend line make one run's 3D network trends reliable?

Same runs as ``bench_network3d_noise.py`` (end-to-end network phantom, truth phases,
the simulated camera's noise, Hann FBP, no partial-volume correction), at the
documented acquisition 0.05 s x 10 flats x 41 angles.  Per noise draw it reads
the two trends twice from the *same* reconstruction:

* ``unweighted``: ``slopes["combined_unweighted"]`` / ``["core_shell_unweighted"]``
  (the primary reading before the weighted line),
  against the truth's unweighted slope;
* ``weighted vs unweighted truth``: the weighted reading against the truth's
  unweighted slope (what a test that keeps the unweighted truth sees);
* ``weighted``: ``slopes["<model>_weighted"]`` (each bin weighted by ``1 / se^2``, its
  jackknife standard error from its own voxels, :mod:`~ssb_beamline.analysis.network3d_weights`),
  against the truth's bins fitted with *the same draw's weights* (like for like).

It prints per seed: truth (unweighted, and weighted with the noise-free run's
weights and the range over the draws' weights), noise-free relative bias, the
slope's standard deviation and the share of draws within 30 % of the truth
(sign and magnitude) for combined, core-shell and both in the same run.

Decision rule, fixed before measuring: the weighted line becomes the primary
reading only if (a) on the same 24 draws x 3 seeds the number of draws with both
trends within 30 % goes up in total and down for no seed, (b) no noise-free
|bias| gets worse by more than 2 percentage points, and (c) the truth's weighted
slope differs from its unweighted slope by less than 10 %.  Otherwise it stays a
secondary reading (``slopes["<model>_weighted"]``).

Measured (2026-12-06): the table in :mod:`ssb_beamline.analysis.network3d_weights`
(24 draws x seeds 2 / 5 / 7, stream 20261206, then replicated with ``--stream 1000``).

Run: ``.venv/bin/python benchmarks/bench_network3d_weighted.py [seed ...] [--trials 24]``.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
from bench_network3d_noise import VOX, expected, model, parse_acq, phantom, stack, within
from rich.console import Console
from rich.table import Table

from ssb_beamline.analysis.network3d import network_model_3d
from ssb_beamline.analysis.network3d_weights import weighted_slope
from ssb_beamline.sim_devices.image_model import DetectorNoiseConfig
from ssb_beamline.sim_devices.projection import PhantomProjector
from ssb_beamline.sim_devices.projection_model import ProjectionImageModel

MODELS = ("combined", "core_shell")


def readings(truth_bins, m3d) -> np.ndarray:
    """(reading, trend, [measured, truth]) of one run: unweighted and weighted."""
    out = np.zeros((2, 2, 2))
    for j, m in enumerate(MODELS):
        sub = m3d.bins[m3d.bins["model"] == m]
        tsub = truth_bins[truth_bins["model"] == m]
        centre = 0.5 * (sub["bin_lo"] + sub["bin_hi"]).to_numpy()
        out[0, j] = m3d.slopes[f"{m}_unweighted"], np.nan
        t_w = weighted_slope(centre, tsub["edge_energy_mean"].to_numpy(),
                             sub["edge_energy_spectrum_se"].to_numpy())  # fmt: skip
        out[1, j] = m3d.slopes[f"{m}_weighted"], t_w
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("seeds", nargs="*", type=int, default=[2, 5, 7])
    parser.add_argument("--trials", type=int, default=24, help="noise realisations per seed")
    parser.add_argument("--acq", default="0.05x10x41", help="EXPOSUREsxFLATSxANGLES")
    parser.add_argument("--stream", type=int, default=20261206,
                        help="noise stream (seed + stream seeds each seed's draws)")  # fmt: skip
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    table = Table(title=f"{args.acq}, {args.trials} draws per seed, truth phases, no PVC; "
                  "combined (core-shell), eV per unit impedance")  # fmt: skip
    for col in ("seed", "reading", "truth", "noise-free bias", "std", "within 30 %", "both"):
        table.add_column(col, justify="right")
    exposure, n_flat, n_angles = parse_acq(args.acq)
    angles = np.linspace(0.0, 180.0, n_angles)
    noise = DetectorNoiseConfig(counts_per_s=1e6)
    for seed in args.seeds:
        rng = np.random.default_rng(args.stream + seed)
        ph = phantom(seed)
        cam = ProjectionImageModel(PhantomProjector(ph), mode="txm")
        cam.noise = noise
        truth = network_model_3d(ph.phases, ph.edge_energy, voxel_size_um=VOX)
        t_unw = np.array([truth.slopes[m] for m in MODELS])
        means = expected(cam, exposure, angles)
        res = []
        for trial in range(args.trials + 1):  # the noise-free stack first
            vol = stack(means, angles, noise, n_flat, rng if trial else None)
            r = readings(truth.bins, model(ph, vol))
            r[0, :, 1] = t_unw
            res.append(r)
        res = np.array(res)  # (trials+1, reading, trend, [meas, truth])
        vs_plain = res[:, 1].copy()
        vs_plain[:, :, 1] = t_unw  # the weighted reading against the unweighted truth
        res = np.concatenate([res, vs_plain[:, None]], axis=1)
        names = ("unweighted", "weighted", "weighted vs unweighted truth")
        for k, name in enumerate(names):
            meas, tru = res[1:, k, :, 0], res[1:, k, :, 1]
            ok = within(meas, tru)
            bias = res[0, k, :, 0] / res[0, k, :, 1] - 1
            tcell = " (".join(f"{res[0, k, j, 1]:.3f}" for j in range(2)) + ")"
            if k == 1:
                lo, hi = tru.min(0), tru.max(0)
                tcell += f" draws {lo[0]:.3f}-{hi[0]:.3f} ({lo[1]:.3f}-{hi[1]:.3f})"
            sd = meas.std(0, ddof=1)
            table.add_row(str(seed), name, tcell, f"{bias[0]:+.0%} ({bias[1]:+.0%})",
                          f"{sd[0]:.3f} ({sd[1]:.3f})",
                          f"{ok[:, 0].mean():.0%} ({ok[:, 1].mean():.0%})",
                          f"{ok.all(1).sum()}/{len(ok)}")  # fmt: skip
        Console().print(f"seed {seed}: done", style="dim")
        Console(width=200).print(table)


if __name__ == "__main__":
    main()
