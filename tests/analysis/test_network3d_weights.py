"""Jackknife errors of the 3D network bins' edges and the weighted trend through them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ssb_beamline.analysis.network3d import network_model_3d
from ssb_beamline.analysis.network3d_bins import trend_slope
from ssb_beamline.analysis.network3d_weights import (
    bin_edge_errors,
    primary_reading,
    weighted_slope,
    weighted_trend,
)
from ssb_beamline.analysis.phases import Phase
from ssb_beamline.reference_data import ni_k_edge_references

ENERGIES = np.array([8300.0, 8320.0, 8331.0, 8334.0, 8337.0, 8340.0, 8343.0, 8346.0, 8349.0,
                     8390.0, 8440.0])  # fmt: skip


def _att(soc: np.ndarray, noise: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, 1, 1, n) mixture spectra with per-voxel Gaussian noise ``noise``."""
    r0, r1 = ni_k_edge_references()
    mix = (1 - soc)[None] * r0.at(ENERGIES)[:, None] + soc[None] * r1.at(ENERGIES)[:, None]
    rng = np.random.default_rng(seed)
    mu = 0.02 + 0.05 * mix + rng.normal(0, 1, mix.shape) * noise[None]
    return mu.astype(np.float32)[:, None, None, :]


def test_jackknife_error_follows_the_noise_and_the_voxel_count():
    # bins 0-1: 800 voxels at noise 1e-3 and 2e-3; bin 4: 200 voxels at 1e-3; bins 2-3 empty
    z = np.concatenate([np.full(800, 0.1), np.full(800, 0.3), np.full(200, 0.9)])
    noise = np.concatenate([np.full(800, 1e-3), np.full(800, 2e-3), np.full(200, 1e-3)])
    se = np.mean([bin_edge_errors(z, np.arange(z.size), _att(np.full(z.size, 0.5), noise, s),
                                  ENERGIES) for s in range(4)], axis=0)  # fmt: skip
    assert np.isnan(se[2:4]).all()  # no voxels: no error, no weight
    assert se[1] / se[0] == pytest.approx(2.0, rel=0.35)  # twice the noise
    assert se[4] / se[0] == pytest.approx(2.0, rel=0.35)  # a quarter of the voxels
    with pytest.raises(ValueError, match="at least 2 groups"):
        bin_edge_errors(z, np.arange(z.size), _att(z, noise), ENERGIES, groups=1)


def test_weighted_slope_discounts_the_uncertain_bin():
    x = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    y = 8340 + 0.4 * x
    y_bad = y + np.array([0, 0, 0, 0, 0.3])  # the last bin off by its own large error
    sigma = np.array([0.01, 0.01, 0.01, 0.01, 0.3])
    assert weighted_slope(x, y_bad, sigma) == pytest.approx(0.4, abs=0.03)
    assert abs(np.polyfit(x, y_bad, 1)[0] - 0.4) > 0.2  # unweighted: pulled away
    assert np.isnan(weighted_slope(x, y, [0.1, np.nan, 0, np.nan, np.nan]))
    b = pd.DataFrame({"bin_lo": x - 0.1, "bin_hi": x + 0.1, "count": 50,
                      "edge_energy_spectrum": y_bad, "edge_energy_spectrum_se": sigma})  # fmt: skip
    assert weighted_trend(b) == pytest.approx(weighted_slope(x, y_bad, sigma))
    # a truth's bins weighted with a run's errors (like for like)
    b["edge_energy_mean"] = y
    assert weighted_trend(b, "edge_energy_mean", sigma) == pytest.approx(0.4)
    b.loc[2, "edge_energy_spectrum_se"] = np.nan  # a filled bin without an error: unweighted
    assert weighted_trend(b) == pytest.approx(trend_slope(b, "edge_energy_spectrum"))


def test_network_model_reports_bin_errors_and_the_weighted_slope():
    ph = np.full((3, 24, 24), Phase.NMC, np.uint8)
    ph[:, :, 0] = Phase.SSE  # Li+ from one side, e- from another: the combined model varies
    ph[:, 0, 1:] = Phase.CARBON
    soc = np.broadcast_to(np.linspace(0.3, 0.6, 24), ph.shape).ravel()
    att = _att(soc, np.full(ph.size, 2e-3)).reshape(len(ENERGIES), *ph.shape)
    e = np.where(ph == Phase.NMC, 8340.0, np.nan)
    m = network_model_3d(ph, e, voxel_size_um=1.0, attenuation=att, energies=ENERGIES)
    b = m.bins
    full = b["count"] >= 16
    se = b["edge_energy_spectrum_se"]
    assert full.sum() >= 8 and (se[full] > 0).all() and se[~full].isna().all()
    se_shared = b["edge_energy_spectrum_shared_se"]  # the shared-background reading's errors
    assert (se_shared[full] > 0).all() and se_shared[~full].isna().all()
    assert not np.allclose(se_shared[full], se[full])  # its own errors, not the per-bin fit's
    assert se_shared[full].sum() < 0.9 * se[full].sum()  # one shared background: less noise
    for name in ("combined", "core_shell"):
        sub = b[b["model"] == name]
        assert m.slopes[name] == m.slopes[f"{name}_shared_weighted"]  # PRIMARY_READING
        assert m.slopes[f"{name}_weighted"] == pytest.approx(weighted_trend(sub))
        assert m.slopes[name] == pytest.approx(weighted_trend(
            sub, "edge_energy_spectrum_shared", sub["edge_energy_spectrum_shared_se"]))  # fmt: skip
        assert m.slopes[f"{name}_weighted"] == pytest.approx(m.slopes[name], abs=0.3)
    assert primary_reading(b)["trend_slope_reading"] == "lcf_shared weighted"
    assert primary_reading(b)["trend_weights_column"] == "edge_energy_spectrum_shared_se"
