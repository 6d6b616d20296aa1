"""A field of view without particles: an empty mask and errors that say so.

The automatic (Otsu) threshold always splits a map in two, so an edge-step map of
noise alone used to give a mask of half its noise. The noise is measured on the
negative edge steps (Ni only adds a positive step); a field holds particles when
the mean step above Otsu's threshold is at least ``EDGE_JUMP_SNR_MIN`` noise sigmas.
"""

from __future__ import annotations

import numpy as np
import pytest
from xanes_synth import REFS, mu_stack, poisson_absorbance, random_mixture_stack, scan_energies

from ssb_beamline.analysis import (
    analyse_xanes_stack,
    auto_edge_threshold,
    edge_jump_contrast,
    edge_jump_mask,
    find_e0,
    otsu_threshold,
)
from ssb_beamline.analysis.masks import EDGE_JUMP_SNR_MIN

E = scan_energies(40)
#: Edge-step noise of the simulated empty 16 x 16 demo field (absorbance).
NOISE = 0.0067


def disc_step(shape=(64, 64), step=0.3, seed=0) -> np.ndarray:
    """Two discs of edge step ``step`` on a zero background, with edge-step noise."""
    yy, xx = np.indices(shape)
    h, w = shape
    discs = ((yy - h / 3) ** 2 + (xx - w / 3) ** 2 < (h / 5) ** 2) | (
        (yy - 2 * h / 3) ** 2 + (xx - 2 * w / 3) ** 2 < (h / 8) ** 2
    )
    rng = np.random.default_rng(seed)
    return (np.where(discs, step, 0.0) + rng.normal(0.0, NOISE, shape)).astype(np.float32)


@pytest.mark.parametrize("shape", [(16, 16), (64, 64), (512, 512)])
def test_noise_alone_gives_an_empty_mask(shape):
    rng = np.random.default_rng(19)
    for _ in range(20 if shape[0] < 512 else 2):
        noise = rng.normal(0.0, NOISE, shape).astype(np.float32)
        contrast = edge_jump_contrast(noise)
        assert not contrast.has_particles
        assert contrast.noise == pytest.approx(NOISE, rel=0.25)
        assert contrast.snr < 2.0  # measured: 0.8 typical, <= 1.5 for 16 x 16
        assert auto_edge_threshold(noise) == np.inf
        assert not edge_jump_mask(noise).any()
        assert not edge_jump_mask(noise, "otsu").any()


def test_noise_with_nan_pixels_gives_an_empty_mask():
    noise = np.random.default_rng(3).normal(0.0, NOISE, (32, 32))
    noise[::5, ::3] = np.nan
    assert not edge_jump_mask(noise).any()


@pytest.mark.parametrize(
    "step",
    [
        disc_step(),
        disc_step((128, 96), step=0.05, seed=1),  # faint: 7.5 noise sigmas
        disc_step((16, 16), seed=2),
        np.random.default_rng(5).uniform(0.0, 1.0, (6, 7))
        * (np.random.default_rng(6).uniform(size=(6, 7)) > 0.3),
    ],
    ids=["discs", "faint discs", "small field", "random mixtures"],
)
def test_particle_maps_keep_the_otsu_mask(step):
    expected = step > otsu_threshold(step)
    assert expected.any()
    assert edge_jump_contrast(step).has_particles
    assert auto_edge_threshold(step) == otsu_threshold(step)
    np.testing.assert_array_equal(edge_jump_mask(step), expected)


def test_the_particle_margin_is_wide():
    # the demo field and the tests' particle maps give 28-1300 sigma; the criterion is 3
    c = edge_jump_contrast(disc_step())
    assert c.snr > 10 * EDGE_JUMP_SNR_MIN
    assert c.max_step > 0.3


def test_a_field_covered_by_ni_keeps_otsu_without_a_noise_estimate():
    """Too few negative steps to measure the noise: the field is taken to hold particles."""
    rng = np.random.default_rng(7)
    step = rng.uniform(0.2, 0.6, (40, 40))  # thickness varies, no background
    step[:2, :5] = rng.normal(0.0, NOISE, (2, 5))  # a few background pixels
    c = edge_jump_contrast(step)
    assert np.isnan(c.noise) and np.isnan(c.snr) and c.has_particles
    np.testing.assert_array_equal(edge_jump_mask(step), step > otsu_threshold(step))


def test_explicit_thresholds_and_fractions_are_unchanged():
    noise = np.random.default_rng(8).normal(0.0, NOISE, (16, 16))
    assert edge_jump_mask(noise, 0.0).sum() == (noise > 0).sum()
    assert edge_jump_mask(noise, fraction=0.5).any()


def test_analysis_of_an_empty_field_has_an_empty_mask():
    rng = np.random.default_rng(11)
    mu = (0.3 + rng.normal(0.0, 0.01, (E.size, 16, 16))).astype(np.float32)
    maps = analyse_xanes_stack(mu, E, REFS, e0=8345.0)  # e0 given: no edge to find
    assert not maps.mask.any()
    assert maps.mask_threshold == np.inf
    assert np.isnan(maps.soc).all() and np.isnan(maps.edge_energy).all()
    assert np.isfinite(maps.edge_step).all()  # still there to show the noise


@pytest.mark.parametrize("normalization", ["references", "edge_fit"])
def test_analysis_of_particles_keeps_the_otsu_mask(normalization):
    yy, xx = np.mgrid[0:24, 0:32]
    particle = (xx - 16) ** 2 / 14**2 + (yy - 12) ** 2 / 10**2 < 1
    mu = mu_stack(E, np.where(particle, 0.4, 0.0), np.where(particle, 0.5, 0.0))
    maps = analyse_xanes_stack(poisson_absorbance(mu, seed=5), E, REFS, normalization=normalization)
    assert maps.mask_threshold == otsu_threshold(maps.edge_step)
    np.testing.assert_array_equal(maps.mask, particle)
    mixed = analyse_xanes_stack(random_mixture_stack(3, E), E, REFS)
    assert mixed.mask_threshold == otsu_threshold(mixed.edge_step)
    assert mixed.mask.any()


# ----------------------------------------------------- no edge in the mean spectrum
def test_a_scan_over_the_edge_without_contrast_says_so():
    rng = np.random.default_rng(0)
    for e in (np.linspace(8300.0, 8450.0, 21), E):
        for mu in (0.3 + rng.normal(0.0, 0.01, e.size), np.zeros(e.size)):
            with pytest.raises(ValueError, match="no edge contrast") as info:
                find_e0(e, mu)
            message = str(info.value)
            assert "missing the edge" not in message and "Scan across" not in message
            assert "out of the beam" in message and "check the flats" in message


@pytest.mark.parametrize(
    "e",
    [
        np.arange(8205.0, 8320.0, 2.0),  # below the edge
        np.arange(8350.0, 8450.0, 2.0),  # above it
        np.array([8330.0, 8340.0, 8345.0, 8350.0, 8360.0, 8380.0]),  # starts on it
    ],
    ids=["below", "above", "starts on the edge"],
)
def test_a_scan_that_misses_the_edge_still_says_so(e):
    for mu in (0.3 + 1e-4 * (e - e[0]), mu_stack(e, 0.5, 0.5)):  # a line; the references
        with pytest.raises(ValueError, match=r"energy range missing the edge.*Scan across"):
            find_e0(e, mu)


def test_a_scan_over_the_edge_with_an_edge_finds_it():
    assert 8340.0 < find_e0(E, mu_stack(E, 0.5, 0.5)) < 8350.0
