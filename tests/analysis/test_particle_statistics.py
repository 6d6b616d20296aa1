"""Particle statistics as plain analysis: rims re-analysed, faster steps with the same results."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.segmentation import expand_labels, relabel_sequential
from xanes_synth import REFS, mu_stack, scan_energies

from ssb_beamline.analysis.particle_statistics import _grow_phases, fill_rims
from ssb_beamline.analysis.particles import _drop_small, _fill_holes, _inside_distance
from ssb_beamline.analysis.phase_map import below_edge_image, phases_from_absorbance
from ssb_beamline.analysis.phases import Phase


def test_the_rims_are_reanalysed_with_the_references_given():
    e = scan_energies(60)
    frac = np.full((1, 3), 0.25)
    absorbance = mu_stack(e, frac, 0.6).astype(np.float32)
    labels = np.ones((1, 3), np.int32)
    soc = np.array([[0.25, np.nan, np.nan]])  # two rim pixels outside the XANES mask
    edge = np.array([[8345.0, np.nan, np.nan]])
    md: dict = {}
    filled, _ = fill_rims(soc, edge, labels, absorbance, e, REFS, md)
    assert md["pixels_reanalysed"] == 2
    assert np.allclose(filled[0, 1:], 0.25, atol=0.02)
    assert filled[0, 0] == 0.25  # pixels inside the mask are kept
    # the same pixels against the references swapped: the SOC flips, so they are used
    swapped, _ = fill_rims(soc, edge, labels, absorbance, e, REFS[::-1], {})
    assert np.allclose(swapped[0, 1:], 0.75, atol=0.02)


# ---------------------------------------------------------------- faster, same results
def _blobs(rng, shape, level):
    return ndi.gaussian_filter(rng.random(shape), 1.5) > level


@pytest.mark.parametrize("ndim", [2, 3])
def test_segmentation_steps_equal_the_library_calls_they_replace(ndim):
    rng = np.random.default_rng(ndim)
    for trial in range(60):
        shape = tuple(int(n) for n in rng.integers(1, 30 if ndim == 2 else 14, size=ndim))
        fg = _blobs(rng, shape, rng.uniform(0.42, 0.58))
        if trial == 0:
            fg[:] = True  # no background at all
        np.testing.assert_array_equal(_fill_holes(fg), ndi.binary_fill_holes(fg))
        cc, _ = ndi.label(fg)
        np.testing.assert_array_equal(_inside_distance(cc), ndi.distance_transform_edt(fg))
        labels = cc.astype(np.int32)
        pixel, min_area = 0.13**ndim, float(rng.uniform(0.0, 0.3))
        small = np.bincount(labels.ravel()) * pixel < min_area
        small[0] = True
        expected = np.where(small[labels], 0, labels)
        expected = relabel_sequential(expected)[0].astype(np.int32)
        np.testing.assert_array_equal(_drop_small(labels, pixel, min_area), expected)


@pytest.mark.parametrize("nmc_outside_labels", [False, True])
def test_grown_labels_equal_expand_labels(nmc_outside_labels):
    rng = np.random.default_rng(3)
    labels = ndi.label(_blobs(rng, (80, 90), 0.55))[0].astype(np.int32)
    phases = np.where(rng.random(labels.shape) < 0.5, Phase.SSE, Phase.VOID).astype(np.uint8)
    phases[labels > 0] = Phase.NMC
    if nmc_outside_labels:  # a phase map from elsewhere, with NMC rims and debris
        phases[ndi.binary_dilation(labels > 0, iterations=2) & (labels == 0)] = Phase.NMC
        phases[:3, :3] = Phase.NMC
    grown_phases, grown = _grow_phases(phases, labels)
    nmc = (phases == Phase.NMC) | (labels > 0)
    expected = np.where(nmc, expand_labels(labels, distance=3), 0).astype(np.int32)
    np.testing.assert_array_equal(grown, expected)
    assert grown.dtype == np.int32
    expected_phases = phases.copy()
    expected_phases[expected > 0] = Phase.NMC
    expected_phases[(expected_phases == Phase.NMC) & (expected == 0)] = Phase.VOID
    np.testing.assert_array_equal(grown_phases, expected_phases)


def test_the_phase_map_from_a_below_edge_image_made_before_is_the_same():
    rng = np.random.default_rng(4)
    e = scan_energies(40)
    absorbance = (0.01 * rng.random((e.size, 48, 40)) + 0.05).astype(np.float32)
    absorbance[:, 20:, :] += 0.02  # electrolyte in the lower half
    absorbance[3, :2, :2] = np.nan
    labels = np.zeros((48, 40), np.int32)
    labels[5:12, 5:12] = 1
    image = below_edge_image(absorbance, e)
    for carbon in (False, True):
        direct = phases_from_absorbance(absorbance, e, labels, carbon=carbon)
        given = phases_from_absorbance(absorbance, e, labels, carbon=carbon, below_edge=image)
        np.testing.assert_array_equal(given[0], direct[0])
        assert repr(given[1]) == repr(direct[1])
    assert (direct[0] == Phase.SSE).any()
    other = below_edge_image(absorbance[1:], e[1:])  # made without the first frame
    with pytest.raises(ValueError, match="below_edge_image"):
        phases_from_absorbance(absorbance, e, labels, below_edge=other)
