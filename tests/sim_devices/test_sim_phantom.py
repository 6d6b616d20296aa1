"""Statistics of the synthetic composite-cathode phantom."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ssb_beamline.sim_devices import PhantomConfig, Phase, make_phantom
from ssb_beamline.sim_devices.phantom import SOC_CLIP


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(PhantomConfig())


def test_phase_codes_and_maps(phantom):
    assert phantom.phase.dtype == np.uint8
    assert phantom.labels.dtype == np.int32
    assert phantom.soc.dtype == np.float32
    assert set(np.unique(phantom.phase)) == {int(p) for p in Phase}
    np.testing.assert_array_equal(phantom.phase == Phase.NMC, phantom.labels > 0)
    assert np.all(phantom.thickness_nmc_um[phantom.labels == 0] == 0)
    assert np.all(phantom.thickness_sse_um[phantom.phase != Phase.SSE] == 0)
    assert np.all(phantom.thickness_carbon_um[phantom.phase != Phase.CARBON] == 0)
    frac = np.bincount(phantom.phase.ravel(), minlength=4) / phantom.phase.size
    cfg = phantom.config
    assert frac[Phase.SSE] == pytest.approx(cfg.sse_fraction, abs=0.03)
    assert frac[Phase.CARBON] == pytest.approx(cfg.carbon_fraction, abs=0.02)
    assert 0.1 < frac[Phase.NMC] < 0.5


def test_particles_radius_and_thickness(phantom):
    cfg = phantom.config
    assert phantom.n_particles == cfg.n_particles
    r = phantom.particle_radius_um[1:]
    assert r.min() >= cfg.radius_range_um[0]
    assert r.max() <= cfg.radius_range_um[1]
    assert r.max() - r.min() > 3.0
    # Projected sphere chord: 2r at the centre.
    for lab in range(1, phantom.n_particles + 1):
        cy, cx = np.round(phantom.particle_center_px[lab]).astype(int)
        assert phantom.thickness_nmc_um[cy, cx] == pytest.approx(
            2 * phantom.particle_radius_um[lab], rel=0.05
        )
    assert np.isnan(phantom.particle_radius_um[0])


def test_mostly_separated_a_few_touching(phantom):
    assert 1 <= len(phantom.touching_pairs) <= phantom.n_particles // 3
    # Touching pairs share a boundary; the rest are isolated connected components.
    n_components = ndimage.label(phantom.labels > 0)[1]
    assert n_components >= phantom.n_particles - len(phantom.touching_pairs)
    assert n_components < phantom.n_particles
    for a, b in phantom.touching_pairs:
        grown = ndimage.binary_dilation(phantom.labels == a, iterations=2)
        assert np.any(grown & (phantom.labels == b))


def test_soc_range_and_background(phantom):
    inside = phantom.labels > 0
    assert phantom.soc[inside].min() >= SOC_CLIP[0]
    assert phantom.soc[inside].max() <= SOC_CLIP[1]
    assert np.all(phantom.soc[~inside] == 0)
    ox = phantom.oxidation_state
    assert np.nanmin(ox) >= 2.0 and np.nanmax(ox) <= 3.0
    assert np.all(np.isnan(ox[~inside]))


def test_size_dependence_matches_documented_slope(phantom):
    cfg = phantom.config
    r = phantom.particle_radius_um[1:]
    slope, _ = np.polyfit(r, phantom.particle_soc_mean[1:], 1)
    assert slope == pytest.approx(cfg.soc_size_slope_per_um, abs=0.015)
    # Smaller particles more charged.
    small = phantom.particle_soc_mean[1:][r < 2.0].mean()
    large = phantom.particle_soc_mean[1:][r > 4.0].mean()
    assert small > large + 0.08
    np.testing.assert_allclose(
        phantom.particle_soc_target[1:] - cfg.designed_particle_soc(r),
        0,
        atol=4 * cfg.soc_particle_sigma,
    )


def test_polarisation_towards_contacts():
    """The linear polarisation model (``soc_model="linear"``)."""
    phantom = make_phantom(PhantomConfig(soc_model="linear"))
    cfg = phantom.config
    px = cfg.pixel_size_um
    labs = np.arange(1, phantom.n_particles + 1)
    geo = np.array(ndimage.center_of_mass(phantom.labels > 0, phantom.labels, labs))
    wtd = np.array(ndimage.center_of_mass(phantom.soc, phantom.labels, labs))
    shift = wtd - geo
    along = np.sum(shift * phantom.polarisation_direction[1:], axis=1)
    assert np.all(along > 0)
    np.testing.assert_allclose(
        np.hypot(*shift.T) * px, phantom.polarisation_offset_um[1:], rtol=1e-6
    )
    r = phantom.particle_radius_um[1:]
    predicted = cfg.polarisation_amplitude * r / (4 * phantom.particle_soc_mean[1:])
    np.testing.assert_allclose(phantom.polarisation_offset_um[1:], predicted, rtol=0.2)
    # The gradient points to where the contacts are.
    contacts = phantom.contact_sse | phantom.contact_carbon
    rows, cols = np.nonzero(contacts)
    lab = phantom.labels[rows, cols]
    vec = np.stack([rows, cols], axis=1) - phantom.particle_center_px[lab]
    unit = vec / np.hypot(*vec.T)[:, None]
    dots = np.sum(unit * phantom.polarisation_direction[lab], axis=1)
    mean_dot = ndimage.mean(dots, lab, np.unique(lab))
    assert np.all(mean_dot > 0)


def test_intra_particle_std_from_polarisation(phantom):
    std = phantom.particle_soc_std[1:]
    assert np.all(std > phantom.config.soc_noise_sigma)
    assert np.all(std < 0.15)


def test_deterministic():
    cfg = PhantomConfig(seed=11)
    a = make_phantom(cfg)
    b = make_phantom(cfg)
    np.testing.assert_array_equal(a.soc, b.soc)
    np.testing.assert_array_equal(a.phase, b.phase)
    c = make_phantom(PhantomConfig(seed=12))
    assert not np.array_equal(a.labels, c.labels)


def test_config_validation():
    with pytest.raises(ValueError, match="radius_range_um"):
        PhantomConfig(radius_range_um=(3.0, 1.0))
    with pytest.raises(ValueError, match="sse_fraction"):
        PhantomConfig(sse_fraction=0.8, carbon_fraction=0.3)


def test_overfull_field_places_fewer_particles(caplog):
    ph = make_phantom(PhantomConfig(shape=(64, 64), n_particles=50, seed=1))
    assert 0 < ph.n_particles < 50
    assert "Placed" in caplog.text
