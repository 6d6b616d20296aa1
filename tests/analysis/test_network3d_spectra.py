"""Per-bin edge energies from the bins' mean spectra (the network model's trend)."""

from __future__ import annotations

import numpy as np
import pytest

from ssb_beamline.analysis.network3d import bin_statistics, network_model_3d, trend_slope
from ssb_beamline.analysis.network3d_spectra import bin_spectrum_edges, mixture_edge_energy
from ssb_beamline.analysis.phases import Phase
from ssb_beamline.analysis.pipeline import analyse_xanes_stack
from ssb_beamline.reference_data import ni_k_edge_references

ENERGIES = np.array([8300.0, 8320.0, 8331.0, 8334.0, 8337.0, 8340.0, 8343.0, 8346.0, 8349.0,
                     8390.0, 8440.0])  # fmt: skip
CENTRES = np.array([0.1, 0.3, 0.5, 0.7, 0.9])


def _stack(z: np.ndarray, noise: float, seed: int = 0) -> np.ndarray:
    """(N, n) spectra: the LiNiO2 reference shifted by 2 eV per unit impedance, plus noise."""
    ref = ni_k_edge_references()[1]
    mu = np.stack([0.02 + 0.05 * np.interp(ENERGIES - 2.0 * s, ref.energy_ev, ref.mu_norm)
                   for s in z], axis=1)  # fmt: skip
    return (mu + np.random.default_rng(seed).normal(0, noise, mu.shape)).astype(np.float32)


def _mixtures(soc: np.ndarray, energies: np.ndarray = ENERGIES) -> np.ndarray:
    """(N, n) spectra ``0.02 + 0.05 ((1 - soc) NiO + soc LiNiO2)``: a SOC change is a mixture."""
    ni2, ni3 = ni_k_edge_references()
    mix = (1 - soc)[None, :] * ni2.at(energies)[:, None] + soc[None, :] * ni3.at(energies)[:, None]
    return (0.02 + 0.05 * mix).astype(np.float32)


def test_mean_spectra_recover_the_trend_the_voxel_mean_loses():
    z = np.tile(CENTRES, 300)
    mu = _stack(z, noise=0.02)
    index = np.arange(z.size)
    att = mu.reshape(len(ENERGIES), 1, 1, z.size)
    per_bin = bin_spectrum_edges(z, index, att, ENERGIES, method="half_step")
    slope_spec = float(np.polyfit(CENTRES, per_bin, 1)[0])
    voxel = analyse_xanes_stack(mu[:, :, None], ENERGIES, mask=np.ones((z.size, 1), bool),
                                derivative_e0=False).edge_energy.ravel()  # fmt: skip
    slope_vox = trend_slope(bin_statistics(z, voxel))
    clean = bin_spectrum_edges(z, index, _stack(z, 0.0).reshape(att.shape), ENERGIES,
                               method="half_step")  # fmt: skip
    slope_clean = float(np.polyfit(CENTRES, clean, 1)[0])
    print(f"\nslopes eV/unit: clean {slope_clean:.3f}, mean spectra {slope_spec:.3f}, "
          f"voxel mean {slope_vox:.3f}")  # fmt: skip
    assert slope_clean == pytest.approx(2.0, rel=0.15)
    assert abs(slope_spec - slope_clean) < 0.15 * slope_clean
    assert abs(slope_spec - slope_clean) < abs(slope_vox - slope_clean)


def test_lcf_edge_follows_a_small_mixture_trend_the_sampled_crossing_compresses():
    # SOC 0.40-0.52 across the bins (0.3 per unit impedance, as in the network phantom):
    # a ~0.4 eV trend against the 3 eV steps of the grid around the edge
    z = np.tile(CENTRES, 50)
    soc = 0.4 + 0.3 * (z - 0.1) / 0.8 * 0.4
    att = _mixtures(soc).reshape(len(ENERGIES), 1, 1, z.size)
    index = np.arange(z.size)
    fine = np.arange(8300.0, 8440.5, 0.5)
    truth = trend_slope(bin_statistics(z, mixture_edge_energy(soc)))
    lcf = np.polyfit(CENTRES, bin_spectrum_edges(z, index, att, ENERGIES), 1)[0]
    half = np.polyfit(CENTRES, bin_spectrum_edges(z, index, att, ENERGIES, method="half_step"),
                      1)[0]  # fmt: skip
    att_fine = _mixtures(soc, fine).reshape(fine.size, 1, 1, z.size)
    half_fine = np.polyfit(CENTRES, bin_spectrum_edges(z, index, att_fine, fine,
                                                       method="half_step"), 1)[0]  # fmt: skip
    print(f"\nslopes eV/unit: truth {truth:.3f}, LCF {lcf:.3f}, half-step {half:.3f} "
          f"(0.5 eV grid {half_fine:.3f})")  # fmt: skip
    assert lcf == pytest.approx(truth, rel=0.02)
    assert half_fine == pytest.approx(truth, rel=0.05)  # the mixture edge is the half step
    assert abs(half - truth) > 0.08 * truth  # 3 eV steps: the crossing lags the shift
    with pytest.raises(ValueError, match="use one of"):
        bin_spectrum_edges(z, index, att, ENERGIES, method="derivative")


def test_shared_background_slope_cuts_the_noise_of_the_bin_trend():
    # five bins' mean spectra as a reconstruction gives them: a mixture (SOC +0.3 per unit
    # impedance, ~0.4 eV trend) on a falling non-resonant background (-3 % per 100 eV, its
    # level differing between bins by partial volume), plus independent noise per energy
    soc = 0.4 + 0.3 * CENTRES
    back = (
        0.02
        * (1 + 0.2 * CENTRES)[None, :]
        * (1 - 0.03 * (ENERGIES - ENERGIES.mean()) / 100)[:, None]
    )
    clean = back + _mixtures(soc) - 0.02
    truth = np.polyfit(CENTRES, mixture_edge_energy(soc), 1)[0]
    rng = np.random.default_rng(7)
    index = np.arange(CENTRES.size)
    slopes = {"lcf_shared": [], "lcf": []}
    for _ in range(150):
        att = (clean + rng.normal(0, 8e-4, clean.shape)).reshape(len(ENERGIES), 1, 1, -1)
        for method, out in slopes.items():
            out.append(np.polyfit(CENTRES, bin_spectrum_edges(CENTRES, index, att, ENERGIES,
                                                              method=method), 1)[0])  # fmt: skip
    mean = {k: float(np.mean(v)) for k, v in slopes.items()}
    std = {k: float(np.std(v, ddof=1)) for k, v in slopes.items()}
    print(f"\ntruth {truth:.3f}; slope mean {mean}, std {std}")
    assert std["lcf"] > 0.25 * truth  # the noise of one run matters here
    assert std["lcf_shared"] < 0.7 * std["lcf"]
    for k in slopes:  # both unbiased: the noise scatters, it does not shift
        assert abs(mean[k] - truth) < 0.05 * truth + 3 * std[k] / np.sqrt(150)


def test_network_model_takes_its_slopes_from_the_bin_spectra():
    ph = np.full((3, 4, 12), Phase.NMC, np.uint8)  # both contacts on one side: combined ~ x
    ph[:, :2, 0], ph[:, 2:, 0] = Phase.SSE, Phase.CARBON
    att = np.zeros((len(ENERGIES), *ph.shape), np.float32)
    edge = np.full(ph.shape, 8343.0, np.float32)
    model0 = network_model_3d(ph, edge, voxel_size_um=0.1)
    combined = model0.volume("combined")
    nmc = ph == Phase.NMC
    att[:, nmc] = _mixtures(0.2 + 0.6 * combined[nmc])
    model = network_model_3d(ph, edge, voxel_size_um=0.1, attenuation=att, energies=ENERGIES)
    assert model.slopes["combined_voxel_mean"] == pytest.approx(0.0, abs=1e-6)
    assert model.slopes["combined"] > 1.0  # the spectra shift, the given edge map does not
    assert np.isfinite(model.bins["edge_energy_spectrum"]).sum() >= 4
    assert 0.5 < model.slopes["combined_half_step"] < model.slopes["combined"]
    assert model.slopes["combined_shared_background"] == pytest.approx(
        model.slopes["combined"], rel=0.05
    )  # noise-free: the two mixture fits agree
    with pytest.raises(ValueError, match=r"pass the .* stack the edge energies came from"):
        network_model_3d(ph, edge, voxel_size_um=0.1, attenuation=att[:, :2], energies=ENERGIES)
