"""The phantom's ground-truth distances (k-d tree) agree with the analysis' (EDT)."""

import numpy as np
import pytest

from ssb_beamline.analysis.diffusion import diffusion_distance_maps
from ssb_beamline.physics import Phase
from ssb_beamline.sim_devices.phantom import PhantomConfig, make_phantom
from ssb_beamline.sim_devices.truth_distance import truth_distances

FIELDS = ("li_distance_um", "e_distance_um", "li_norm", "e_norm", "combined", "core_shell")


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(PhantomConfig(shape=(128, 128), n_particles=12, seed=3))


def test_the_truth_agrees_with_the_analysis_where_both_apply(phantom):
    px = phantom.config.pixel_size_um
    truth = truth_distances(phantom.phase, phantom.labels, px)
    measured = diffusion_distance_maps(phantom.phase, pixel_size_um=px, labels=phantom.labels)
    compared = 0
    for name in FIELDS:
        t, m = getattr(truth, name), getattr(measured, name)
        assert (t is None) == (m is None), name
        if t is None:
            continue
        both = np.isfinite(t) & np.isfinite(m)
        assert np.array_equal(np.isfinite(t), np.isfinite(m)), name
        assert np.allclose(t[both], m[both], atol=1e-5), name
        compared += int(both.sum())
    assert compared > 1000
    # the phantom stores these truth maps
    assert np.array_equal(phantom.combined_impedance, truth.combined, equal_nan=True)


def test_the_truth_is_exact_on_a_hand_checked_particle():
    # an L-shaped particle: Euclidean distance, not the path along the L
    ph = np.full((5, 5), Phase.VOID, np.uint8)
    ph[0:4, 1] = Phase.NMC
    ph[3, 1:5] = Phase.NMC
    ph[0, 0] = Phase.SSE  # contact at (0, 1)
    ph[4, 4] = Phase.CARBON  # contact at (3, 4)
    lab = (ph == Phase.NMC).astype(np.int32)
    t = truth_distances(ph, lab, 2.0)
    assert t.li_distance_um[3, 4] == pytest.approx(2.0 * np.hypot(3, 3))
    assert t.e_distance_um[0, 1] == pytest.approx(2.0 * np.hypot(3, 3))
    assert np.nanmax(t.li_norm) == 1.0 and np.nanmin(t.combined) == 0.0
    assert np.isnan(t.li_distance_um[ph != Phase.NMC]).all()


def test_a_phase_map_without_carbon_has_no_e_or_combined_map():
    ph = np.full((4, 6), Phase.NMC, np.uint8)
    ph[:, 0] = Phase.SSE
    t = truth_distances(ph, (ph == Phase.NMC).astype(np.int32), 1.0)
    assert t.e_distance_um is None and t.combined is None
    assert t.li_distance_um[0].tolist()[1:] == [0.0, 1.0, 2.0, 3.0, 4.0]
