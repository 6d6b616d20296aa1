"""Measurement: where the 3D network trend is lost, stage by stage, per seed and angle count.

For each phantom seed (the end-to-end test's 24 x 40 x 40 network phantom) one
simulated 3D XANES run (11 energies x 21 angles, 0.02 s) and holotomography runs
with 31 / 61 / 91 angles are acquired and reconstructed by the live callbacks
(real RunEngine and simulated devices; nothing written to tiled), then analysed
here as the live network callback does.  The combined-impedance slope (eV per
unit impedance, bins' mean spectra) is printed for:

* ``truth``: truth phases, noise-free per-voxel edge energies (the test's reference);
* ``truth phases + live stack``: the reconstruction stage alone;
* ``live (31/61/91)``: segmented phases from the live stack and the registered
  density of that many holotomography angles: the live result;
* each also with the bins' sampled half-step crossing (``half``) and the mixture fit
  with one background slope shared by the bins (``shared``).

Run: ``.venv/bin/python benchmarks/bench_network3d_trend.py [seed ...] [--counts 1e6]
[--exposure 0.05] [--n-flat 10] [--angles 41] [--holo 31 61 91]`` (defaults: the
documented acquisition ``profiles.network3d.NETWORK_ACQUISITION``; about a minute per
seed on 2 idle cores, ~6 min for three seeds at load 7; 81 angles ~3x that).

Measured (2026-12-06, load ~7-8 on 2 cores, 1e6 counts/s, 0.02 s, one flat per
energy, 21 angles: the end-to-end test's old acquisition); per-bin background line
(the primary reading) and, after "/", one background slope shared by the bins
(``*_shared_background``):

====  =====  =========================  ===========  ===========  ===========
seed  truth  truth phases + live stack  live 31      live 61      live 91
====  =====  =========================  ===========  ===========  ===========
2     0.427  0.504 / 0.330              +8 / -43 %   +8 / -50 %   +3 / -40 %
5     0.408  0.276 / 0.360              -35 / -28 %  -33 / -27 %  -34 / -27 %
7     0.423  0.356 / 0.330              -27 / -17 %  -34 / -19 %  -28 / -21 %
====  =====  =========================  ===========  ===========  ===========

The acquisitions chosen from the pass rates over noise draws
(``bench_network3d_noise.py``), live (holotomography 61 angles, as the end-to-end
test); deviation from the truth of the combined / core-shell slope (truths 0.427 /
0.157, 0.408 / 0.204, 0.423 / 0.190 for seeds 2 / 5 / 7), lcf then shared:

====  =================  ===============  ===============  ===============  ===============
seed  s x flats x angles truth ph. lcf    truth ph. shared live 61 lcf      live 61 shared
====  =================  ===============  ===============  ===============  ===============
2     0.05 x 5 x 21      -50 / -41 %      -41 / -60 %      -74 / -55 %      -63 / -63 %
5     0.05 x 5 x 21      -26 / -83 %      -8 / -24 %       -49 / -74 %      -23 / -29 %
7     0.05 x 5 x 21      +4 / +21 %       +8 / +16 %       -1 / +22 %       +2 / +6 %
2     0.05 x 10 x 41     +0 / +17 %       -8 / -4 %        -23 / +14 %      -36 / +0 %
5     0.05 x 10 x 41     -18 / -35 %      -13 / -22 %      -22 / -39 %      -19 / -26 %
7     0.05 x 10 x 41     -14 / -30 %      -2 / -19 %       -18 / -20 %      -3 / -15 %
2     0.05 x 10 x 81     -1 / -41 %       -16 / -19 %      -25 / -43 %      -33 / -20 %
5     0.05 x 10 x 81     -24 / -50 %      -12 / -6 %       -34 / -49 %      -22 / -7 %
7     0.05 x 10 x 81     -16 / -29 %      +1 / +4 %        -21 / -29 %      -3 / +4 %
====  =================  ===============  ===============  ===============  ===============

At the documented acquisition (0.05 x 10 x 41) the live combined slope is within
30 % for all three seeds with the per-bin line (-23 / -22 / -18 %), the core-shell
one for seeds 2 and 7 only; with the shared slope seed 2's combined (-36 %) fails
and the rest pass.  The live runs scatter more than the noise draws predict: the
truth-phase-stage slopes (lcf) are more than 2 standard deviations of the synthetic
scatter from its mean in 4 of 18 cases (about 1 expected), e.g. seed 2 at
0.05 x 5 x 21: 0.216 against 0.376 +- 0.058, seed 5's core-shell 0.035 against
0.193 +- 0.028, so something in the live path adds
error the noise benchmark does not see.  Seed 2 at 0.05 x 5 x 21, truth phases,
live with detector noise seeds 0-3: 0.215 / 0.258 / 0.326 / 0.319 (mean 0.280,
shared 0.324) against the benchmark's 0.376 +- 0.058 (shared 0.373 +- 0.038) over
12 draws: a live-path bias of about -0.1, not the I0 drift (a constant-flux run
gives the identical 0.215), not the rotation centre (within 0.05 px of 30.5 in the
draws) and not saturation (50000 counts at most); its voxel residual against the
noise-free stack has the benchmark's mean and standard deviation (2.7e-3 /um), but
more low-frequency content at a few energies (Gaussian-smoothed std 0.42-0.48e-3
against 0.28-0.30e-3): not found by the deadline.  At the documented acquisition
(0.05 x 10 x 41) the same repeat (truth phases, noise seeds 0 / 1 / 2) agrees with
the benchmark: seed 2 combined 0.429 / 0.483 / 0.340 (benchmark 0.354 +- 0.056),
core-shell 0.183 / 0.200 / 0.006; seed 5 combined 0.336 / 0.313 / 0.384 (0.366 +-
0.046), core-shell 0.132 / 0.125 / 0.207; shared slope: combined 0.392 / 0.438 /
0.400 and 0.355 / 0.357 / 0.375, core-shell 0.151 / 0.122 / 0.093 and 0.159 / 0.190
/ 0.200.  Within 30 %: combined 6 of 6 either reading, core-shell 3 of 6 (lcf) and
5 of 6 (shared).  Seed 2 also
loses another ~25 % at the segmentation stage (0.429 -> 0.327 at 41 angles).  Each
live row is one draw (detector noise seed 0 for every phantom).

Session 7 (2026-12-06, load ~9, ``--holo 61``, 0.05 x 10 x 41), with the
partial-volume correction of the bins' mean spectra (``analysis/network3d_pvc.py``;
off in the live analysis by default): deviation of the combined / core-shell slope
from the truth, per-bin line uncorrected (the live default) / corrected, and the
shared slope corrected:

====  ====================  =====================  ===================
seed  lcf uncorrected       lcf corrected          shared corrected
====  ====================  =====================  ===================
truth phases + live stack
2     +0 / +17 %            +29 / +60 %            +13 / +20 %
5     -18 / -35 %           -7 / -23 %             +2 / -0 %
7     -14 / -30 %           -2 / -46 %             +13 / -12 %
live 61 (segmented phases)
2     -23 / +14 %           +1 / +53 %             -21 / +26 %
5     -22 / -39 %           -11 / -32 %            -6 / -8 %
7     -18 / -20 %           -7 / -25 %             +11 / -4 %
====  ====================  =====================  ===================

The uncorrected live values reproduce the row above (one draw each, the same noise
seed).  Live, combined passes in 3 of 3 either way; core-shell in 2 of 3
uncorrected and 1 of 3 corrected: one draw per seed, in line with the noise
benchmark's pass rates (``bench_network3d_noise.py``: the correction's larger scatter).
"""

from __future__ import annotations

import argparse
import logging
import tempfile

import numpy as np
from rich.console import Console
from rich.table import Table

from ssb_beamline.analysis.network3d import network_model_3d
from ssb_beamline.analysis.network3d_pvc import fbp_point_response
from ssb_beamline.analysis.particles3d import segment_particles_3d
from ssb_beamline.analysis.segmentation3d import segment_phases_3d
from ssb_beamline.profiles.network3d import NETWORK_ACQUISITION
from ssb_beamline.profiles.simulated_tomo import simulated_tomo
from ssb_beamline.sim_devices.image_model import DetectorNoiseConfig
from ssb_beamline.sim_devices.network_phantom3d import NetworkPhantomConfig, make_network_phantom
from ssb_beamline.sim_devices.phantom3d import Phantom3DConfig

ENERGIES = [8300.0, 8320.0, 8331.0, 8334.0, 8337.0, 8340.0, 8343.0, 8346.0, 8349.0, 8390.0,
            8440.0]  # fmt: skip
VOX = 0.1


def acquire(seed: int, counts: float, folder: str, exposure: float = 0.02, n_flat: int = 1,
            n_angles: int = 21, holo: tuple[int, ...] = (31, 61, 91)):  # fmt: skip
    """Padded phantom, the 3D XANES volumes and the densities per holotomography angle count."""
    net = make_network_phantom(NetworkPhantomConfig(base=Phantom3DConfig(
        shape=(24, 40, 40), radius_range_um=(0.5, 0.8), n_particles=5, touching_fraction=0.0,
        carbon_thickness_um=0.4, seed=seed)))  # fmt: skip
    density = {}
    for n in holo:
        s = simulated_tomo(mode="holo", phantom=net.phantom, data_dir=folder, write_to_tiled=False)
        try:
            s.run(s.holotomo((0.0, 180.0, n), n_dark=2, n_flat=2))
            density[n] = np.asarray(s.outcomes[-1].volumes["electron_density"], np.float32)
        finally:
            s.close()
    s = simulated_tomo(mode="txm", phantom=net.phantom, data_dir=folder, write_to_tiled=False,
                       noise=DetectorNoiseConfig(counts_per_s=counts))  # fmt: skip
    try:
        s.run(s.xanes_tomo(ENERGIES, (0.0, 180.0, n_angles), mode="step", exposure_time=exposure,
                           n_dark=1, n_flat=n_flat))  # fmt: skip
        volumes, padded = s.outcomes[-1].volumes, s.phantom
    finally:
        s.close()
    return padded, volumes, density


def cell(m: dict, t: dict) -> str:
    """Combined (core-shell) slope of each reading and its deviation from the truth.

    With the partial-volume correction: corrected per-bin line, uncorrected per-bin
    line, corrected shared slope; without (``--no-pvc``): per-bin line, shared slope.
    """
    out = []
    suffixes = ("_unweighted", "_uncorrected", "_shared_background")  # (the tables' readings)
    for suffix in [x for x in suffixes if f"combined{x}" in m]:
        c, cs = m[f"combined{suffix}"], m[f"core_shell{suffix}"]
        out.append(f"{c:.3f} ({c / t['combined'] - 1:+.0%}) cs {cs:.3f} "
                   f"({cs / t['core_shell'] - 1:+.0%})")  # fmt: skip
    return " / ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("seeds", nargs="*", type=int, default=[2, 5, 7])
    parser.add_argument("--counts", type=float, default=1e6, help="open-beam counts per s")
    acq = NETWORK_ACQUISITION
    parser.add_argument("--exposure", type=float, default=acq["exposure_time"],
                        help="3D XANES exposure, s")  # fmt: skip
    parser.add_argument("--n-flat", type=int, default=acq["n_flat"], help="flats per energy")
    parser.add_argument("--angles", type=int, default=acq["n_angles"],
                        help="3D XANES angles over 180 deg")  # fmt: skip
    parser.add_argument("--holo", type=int, nargs="+", default=[31, 61, 91],
                        help="holotomography angle counts (segmentation)")  # fmt: skip
    parser.add_argument("--no-pvc", action="store_true",
                        help="no partial-volume correction of the bins' mean spectra")  # fmt: skip
    args = parser.parse_args()
    kernel = None
    if not args.no_pvc:  # the live reconstruction: Hann FBP of these angles
        kernel = fbp_point_response(np.linspace(0.0, 180.0, args.angles), "hann")
    logging.disable(logging.WARNING)
    table = Table(title=f"combined (core-shell) slope, eV per unit impedance; {args.counts:g}/s, "
                  f"{args.exposure:g} s, {args.n_flat} flat(s) per energy, {args.angles} "
                  "angles; per-bin line corrected / uncorrected / shared slope corrected "
                  "(--no-pvc: per-bin line / shared slope)")  # fmt: skip
    for col in ("seed", "truth", "truth phases + live stack", *(f"live {n}" for n in args.holo)):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as folder:
        for seed in args.seeds:
            ph, vol, density = acquire(seed, args.counts, folder, args.exposure, args.n_flat,
                                       args.angles, tuple(args.holo))  # fmt: skip
            att, en, edge = vol["attenuation"], vol["energies"], vol["edge_energy"]
            t = network_model_3d(ph.phases, ph.edge_energy, voxel_size_um=VOX).slopes
            row = [str(seed), f"{t['combined']:.3f} ({t['core_shell']:.3f})"]
            m = network_model_3d(ph.phases, edge, voxel_size_um=VOX, attenuation=att,
                                 energies=en, resolution_kernel=kernel).slopes  # fmt: skip
            row.append(cell(m, t))
            for n in args.holo:
                pv = segment_phases_3d(att, en, voxel_size_um=VOX, electron_density=density[n],
                                       smooth_sigma=0.7, band_voxels=2)  # fmt: skip
                lab = segment_particles_3d((pv.phases == 1).astype(np.float32),
                                           voxel_size_um=VOX, threshold=0.5)  # fmt: skip
                m = network_model_3d(pv.phases, edge, voxel_size_um=VOX, labels=lab,
                                     attenuation=att, energies=en,
                                     resolution_kernel=kernel).slopes  # fmt: skip
                row.append(cell(m, t))
            table.add_row(*row)
            Console().print(f"seed {seed}: done", style="dim")
    Console(width=260).print(table)


if __name__ == "__main__":
    main()
