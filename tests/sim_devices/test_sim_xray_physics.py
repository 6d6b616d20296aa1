"""Absorption model and edge-energy ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from ssb_beamline.sim_devices import (
    PhantomConfig,
    absorbance,
    absorption_coefficients,
    make_phantom,
    transmission,
    truth_edge_energy,
    truth_edge_energy_map,
)
from ssb_beamline.sim_devices.xray_physics import (
    SOC_GRID,
    ni_edge_jump_per_um,
    normalised_ni_spectrum,
)


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(PhantomConfig(shape=(256, 256), n_particles=12, seed=5))


def test_edge_jump_realistic():
    jump = ni_edge_jump_per_um()
    assert 0.05 < jump < 0.08
    # A 5 um radius particle (10 um chord) has an edge step of 0.3-1.5.
    pre = absorption_coefficients(8300.0).nmc(0.5) * 10
    post = absorption_coefficients(8450.0).nmc(0.5) * 10
    assert 0.3 < post - pre < 1.5
    assert 0.1 < pre < 0.5


def test_coefficients_ordering_and_smoothness():
    c = absorption_coefficients(8400.0)
    assert c.nmc(0.5) > c.sse > c.carbon > 0
    e = np.linspace(8200, 8500, 31)
    sse = np.array([absorption_coefficients(x).sse for x in e])
    smooth = np.array([absorption_coefficients(x).nmc_smooth for x in e])
    assert np.all(np.diff(sse) < 0) and np.all(np.diff(smooth) < 0)
    with pytest.raises(ValueError, match="positive"):
        absorption_coefficients(-1.0)


@pytest.mark.parametrize("energy_ev", [11000.0, 17000.0, 33600.0])
def test_nmc_absorption_falls_off_above_the_references_like_xraydb(energy_ev):
    """Above the measured spectra (~9 keV) the Ni resonance follows Ni's K-shell fall-off:
    NMC811 stays within 20 % of xraydb's compound value instead of keeping the edge's."""
    import xraydb

    tabulated = xraydb.material_mu("LiNi0.8Co0.1Mn0.1O2", energy_ev, density=4.7) * 1e-4
    simulated = float(absorption_coefficients(energy_ev).nmc(0.35))
    assert abs(simulated / tabulated - 1) < 0.2


def test_nmc_absorption_is_continuous_at_the_end_of_the_references():
    from ssb_beamline.reference_data import ni_k_edge_references

    end = min(float(ref.energy_ev[-1]) for ref in ni_k_edge_references())
    below, above = (absorption_coefficients(end + d).nmc(0.5) for d in (-0.5, 0.5))
    assert abs(above / below - 1) < 1e-3


def test_transmission_range_and_phases(phantom):
    t = transmission(phantom, 8350.0)
    assert t.shape == phantom.shape and t.dtype == np.float32
    assert np.all(t > 0) and np.all(t <= 1)
    assert np.all(t[phantom.phase == 0] == 1)
    a_pre, a_post = absorbance(phantom, 8300.0), absorbance(phantom, 8450.0)
    nmc = phantom.labels > 0
    assert np.all(a_post[nmc] >= a_pre[nmc])
    sse = phantom.phase == 2
    np.testing.assert_allclose(
        a_post[sse], a_pre[sse] * (a_post[sse] / a_pre[sse]).mean(), rtol=0.01
    )


def test_truth_edge_energy_monotonic_and_range():
    e = truth_edge_energy(SOC_GRID)
    assert np.all(np.diff(e) >= 0)
    assert 8340 < e[0] < e[-1] < 8350
    assert e[-1] - e[0] > 1.0
    assert np.isnan(truth_edge_energy(np.nan))


def test_truth_edge_matches_simulated_spectrum(phantom):
    """The 0.5 crossing of a pixel's normalised absorbance equals the truth."""
    energies = np.arange(8320.0, 8370.0, 0.05)
    nmc = phantom.labels > 0
    idx = np.flatnonzero(nmc.ravel())[:: max(1, nmc.sum() // 5)][:5]
    spectra = np.array([absorbance(phantom, e).ravel()[idx] for e in energies])
    pre = np.array([absorbance(phantom, 8300.0).ravel()[idx]])
    step = ni_edge_jump_per_um() * phantom.thickness_nmc_um.ravel()[idx]
    smooth = np.array(
        [
            (absorption_coefficients(e).nmc_smooth - absorption_coefficients(8300.0).nmc_smooth)
            * phantom.thickness_nmc_um.ravel()[idx]
            for e in energies
        ]
    )
    sse_c = np.array(
        [
            (absorption_coefficients(e).sse - absorption_coefficients(8300.0).sse)
            * phantom.thickness_sse_um.ravel()[idx]
            for e in energies
        ]
    )
    norm = (spectra - pre - smooth - sse_c) / step
    # Remove the tiny pre-edge of the references at 8300 eV.
    soc = phantom.soc.ravel()[idx]
    norm += (
        normalised_ni_spectrum(8300.0, 0.0)[()] * (1 - soc)
        + normalised_ni_spectrum(8300.0, 1.0)[()] * soc
    )
    for k in range(len(idx)):
        crossing = energies[np.argmax(norm[:, k] >= 0.5)]
        assert crossing == pytest.approx(truth_edge_energy(soc[k]), abs=0.06)


def test_truth_map(phantom):
    m = truth_edge_energy_map(phantom)
    assert m.dtype == np.float32
    assert np.all(np.isnan(m[phantom.labels == 0]))
    inside = phantom.labels > 0
    np.testing.assert_allclose(m[inside], truth_edge_energy(phantom.soc[inside]), atol=1e-3)
    # Higher SOC -> higher edge energy.
    assert np.corrcoef(m[inside], phantom.soc[inside])[0, 1] > 0.99
