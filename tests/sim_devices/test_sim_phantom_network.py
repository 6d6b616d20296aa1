"""The phantom's conductive network: point contacts and the diffusion-model SOC field."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ssb_beamline.analysis import impedance_bins
from ssb_beamline.analysis.phases import Phase as AnalysisPhase
from ssb_beamline.sim_devices import PhantomConfig, Phase, make_phantom


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(PhantomConfig())


def test_one_phase_enum_for_simulator_and_analysis():
    assert Phase is AnalysisPhase


def test_contacts_are_point_like_patches(phantom):
    n = phantom.n_particles
    labels = phantom.labels
    idx = np.arange(1, n + 1)
    with_sse = ndimage.sum(phantom.contact_sse, labels, idx) > 0
    with_carbon = ndimage.sum(phantom.contact_carbon, labels, idx) > 0
    assert with_sse.all()  # every particle has its Li+ channel
    assert 0.7 < with_carbon.mean() < 1.0  # most have an e- channel, some none
    # each contact covers a small part of the particle's perimeter
    surface = labels * (ndimage.binary_erosion(labels > 0) == 0) * (labels > 0)
    perimeter = np.bincount(surface.ravel(), minlength=n + 1)[1:]
    contact = np.bincount(labels[phantom.contact_sse].ravel(), minlength=n + 1)[1:]
    assert np.median(contact / perimeter) < 0.3


def test_truth_maps_of_the_diffusion_model_are_exposed(phantom):
    nmc = phantom.labels > 0
    for array in (phantom.li_distance_um, phantom.combined_impedance, phantom.core_shell):
        assert array.shape == phantom.shape
        assert np.all(np.isnan(array[~nmc]))
        assert not np.isinf(array).any()
    c = phantom.combined_impedance[nmc]
    assert np.nanmin(c) == 0.0 and np.nanmax(c) == 1.0


def test_soc_rises_with_combined_impedance_and_not_with_core_shell(phantom):
    soc = np.where(phantom.labels > 0, phantom.soc, np.nan)
    bins = impedance_bins(phantom.combined_impedance, soc, core_shell=phantom.core_shell)
    combined = bins.loc[bins["model"] == "combined", "edge_energy_mean"].to_numpy()
    core_shell = bins.loc[bins["model"] == "core_shell", "edge_energy_mean"].to_numpy()
    assert np.all(np.diff(combined) > 0)
    assert combined[-1] - combined[0] > 0.5 * phantom.config.impedance_amplitude
    assert core_shell[-1] - core_shell[0] < 0.1 * (combined[-1] - combined[0])


def test_known_size_dependence(phantom):
    r = phantom.particle_radius_um[1:]
    expected = np.corrcoef(r, phantom.particle_soc_mean[1:])[0, 1]
    assert phantom.soc_size_pearson_r == pytest.approx(expected)
    assert -0.95 < phantom.soc_size_pearson_r < -0.5
    # the impedance term has zero particle mean: the size law holds as designed
    np.testing.assert_allclose(
        phantom.particle_soc_mean[1:], phantom.particle_soc_target[1:], atol=0.01
    )


def test_polarisation_points_away_from_the_contacts(phantom):
    """Regions far from the contacts stay charged, so the SOC centroid moves away."""
    labels = phantom.labels
    rows, cols = np.nonzero(phantom.contact_sse | phantom.contact_carbon)
    lab = labels[rows, cols]
    vec = np.stack([rows, cols], axis=1) - phantom.particle_center_px[lab]
    unit = vec / np.hypot(*vec.T)[:, None]
    dots = np.sum(unit * phantom.polarisation_direction[lab], axis=1)
    mean_dot = ndimage.mean(dots, lab, np.unique(lab))
    assert np.mean(mean_dot < 0) > 0.8
    assert np.all(phantom.polarisation_offset_um[1:] > 0)


def test_linear_model_and_free_contacts_still_available():
    ph = make_phantom(PhantomConfig(soc_model="linear", point_contacts=False, seed=2))
    assert ph.combined_impedance is None
    assert ph.soc_size_pearson_r < 0
    with pytest.raises(ValueError, match="soc_model"):
        PhantomConfig(soc_model="core_shell")
