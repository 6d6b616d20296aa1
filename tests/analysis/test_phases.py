"""Tests for the Phase codes and phase segmentation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from ssb_beamline.analysis.phases import Phase, segment_phases

ABSORBANCE = {Phase.VOID: 0.02, Phase.CARBON: 0.3, Phase.SSE: 0.7, Phase.NMC: 1.6}


def phase_phantom(shape=(128, 128), seed=0) -> np.ndarray:
    """Blobby 4-phase truth map: NMC disks in an SSE matrix with carbon and pores."""
    rng = np.random.default_rng(seed)
    truth = np.full(shape, Phase.SSE, dtype=np.uint8)
    field = ndi.gaussian_filter(rng.normal(size=shape), 4)
    truth[field > 0.08] = Phase.CARBON
    truth[field < -0.1] = Phase.VOID
    yy, xx = np.indices(shape)
    for cy, cx, r in [(30, 30, 15), (90, 40, 20), (60, 100, 18), (110, 110, 10)]:
        truth[(yy - cy) ** 2 + (xx - cx) ** 2 <= r**2] = Phase.NMC
    return truth


def render(truth: np.ndarray, noise: float, seed: int = 1) -> np.ndarray:
    lut = np.array([ABSORBANCE[Phase(k)] for k in range(4)])
    return lut[truth] + np.random.default_rng(seed).normal(0, noise, truth.shape)


def test_phase_codes_are_fixed():
    assert [(p.name, int(p)) for p in Phase] == [
        ("VOID", 0),
        ("NMC", 1),
        ("SSE", 2),
        ("CARBON", 3),
    ]


def test_phase_codes_match_simulator():
    sim = pytest.importorskip("ssb_beamline.sim_devices.phantom_config")
    assert {p.name: int(p) for p in sim.Phase} == {p.name: int(p) for p in Phase}


def test_multi_otsu_recovers_four_phases():
    truth = phase_phantom()
    assert all((truth == p).sum() > 500 for p in Phase)
    out = segment_phases(render(truth, noise=0.05))
    assert out.dtype == np.uint8
    assert np.mean(out == truth) > 0.99


def test_median_prefilter_helps_noisy_image():
    truth = phase_phantom()
    image = render(truth, noise=0.12)
    raw = np.mean(segment_phases(image) == truth)
    smooth = np.mean(segment_phases(image, median_size=3) == truth)
    assert raw < 0.9
    assert smooth > 0.98


def test_without_void_and_explicit_thresholds():
    truth = phase_phantom()
    truth[truth == Phase.VOID] = Phase.SSE
    image = render(truth, noise=0.03)
    assert np.mean(segment_phases(image, has_void=False) == truth) > 0.99
    out = segment_phases(image, has_void=False, thresholds=[0.5, 1.2])
    assert np.mean(out == truth) > 0.99


def test_below_edge_jump_identifies_nmc():
    truth = phase_phantom()
    below = render(truth, noise=0.03)
    below[truth == Phase.NMC] = 0.7  # NMC looks like SSE below the Ni edge ...
    above = below + np.where(truth == Phase.NMC, 1.0, 0.0)  # ... but has the edge jump
    out = segment_phases(above, below_edge=below)
    assert np.mean(out == truth) > 0.99


def test_texture_splits_carbon_from_sse_with_equal_absorbance():
    truth = phase_phantom()
    rng = np.random.default_rng(5)
    image = render(truth, noise=0.01)
    carbon = truth == Phase.CARBON
    image[carbon] = 0.7 + rng.normal(0, 0.15, carbon.sum())  # wrinkled, same mean as SSE
    out = segment_phases(image, texture=True, thresholds=[0.2, 0.5, 1.2], texture_size=5)
    low = (truth == Phase.CARBON) | (truth == Phase.SSE)
    assert np.mean(out[low] == truth[low]) > 0.9
    assert np.mean(out[truth == Phase.NMC] == Phase.NMC) > 0.99


def test_mask_and_nan_are_void():
    truth = phase_phantom()
    image = render(truth, noise=0.03)
    image[:5] = np.nan
    mask = np.ones(truth.shape, bool)
    mask[:, :10] = False
    out = segment_phases(image, mask=mask)
    assert np.all(out[:5] == Phase.VOID) and np.all(out[:, :10] == Phase.VOID)


@pytest.mark.parametrize(
    ("image", "kwargs", "message"),
    [
        (np.ones((8, 8)), {}, r"fewer than 4 distinct values.*thresholds="),
        (np.ones((8, 8)), {"mask": np.zeros((8, 8), bool)}, r"mask selects no pixels"),
        (np.ones((8, 8)), {"below_edge": np.ones((8, 9))}, r"below_edge has shape \(8, 9\)"),
        (np.ones(8), {}, r"must be 2-D or 3-D"),
        (np.full((8, 8), np.nan), {}, r"no finite pixels.*NaN"),
        (np.arange(64.0).reshape(8, 8), {"thresholds": [1, 0.5, 2]}, r"strictly increasing"),
        (
            np.arange(64.0).reshape(8, 8),
            {"below_edge": np.ones((8, 8)), "thresholds": [1, 2, 3]},
            r"only supported in single-image mode",
        ),
    ],
)
def test_segment_phases_bad_input(image, kwargs, message):
    with pytest.raises(ValueError, match=message):
        segment_phases(image, **kwargs)
