"""White line, ratio maps, histogram mixtures, ROI spectra and stack alignment."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from xanes_synth import REFS, mixture, scan_energies

from ssb_beamline.analysis import (
    align_stack,
    histogram_components,
    otsu_mask,
    ratio_map,
    roi_spectra,
    white_line_map,
)

E = scan_energies()


def test_white_line_of_references():
    norm = mixture(E, np.array([0.0, 1.0]))
    wl = white_line_map(norm, E)
    # NiO white line ~1.67 at ~8350 eV, LiNiO2 ~1.59 at ~8352 eV (NIST scale)
    for k, ref in enumerate(REFS):
        fine = np.arange(8340.0, 8365.0, 0.05)
        y = ref.at(fine)
        assert wl.energy[k] == pytest.approx(fine[y.argmax()], abs=0.6)
        assert wl.height[k] == pytest.approx(y.max(), abs=0.05)


def test_ratio_map_exact_and_interpolated():
    rng = np.random.default_rng(0)
    e = np.array([850.0, 853.0, 854.0, 855.5, 858.0])
    st = rng.uniform(0.5, 2.0, (5, 6, 7))
    np.testing.assert_allclose(ratio_map(st, e, 853.0, 855.5), st[3] / st[1], rtol=1e-6)
    got = ratio_map(st, e, 853.5, 855.5)
    np.testing.assert_allclose(got, st[3] / (0.5 * st[1] + 0.5 * st[2]), rtol=1e-6)


def test_ratio_map_masks_zero_denominator():
    st = np.ones((2, 2, 2))
    st[0, 0, 0] = 0.0
    r = ratio_map(st, [1.0, 2.0], 1.0, 2.0, mask=np.array([[True, True], [False, True]]))
    assert np.isnan(r[0, 0]) and np.isnan(r[1, 0])
    assert r[0, 1] == 1.0 and r[1, 1] == 1.0


def test_histogram_components_recovers_mixture():
    rng = np.random.default_rng(1)
    v = np.concatenate([rng.normal(8343.0, 0.3, 20000), rng.normal(8344.6, 0.4, 10000)])
    v = np.append(v, [np.nan] * 10)
    g = histogram_components(v, 2)
    np.testing.assert_allclose(g.means, [8343.0, 8344.6], atol=0.03)
    np.testing.assert_allclose(g.sigmas, [0.3, 0.4], atol=0.03)
    np.testing.assert_allclose(g.weights, [2 / 3, 1 / 3], atol=0.02)
    assert g.converged
    three = histogram_components(v, 3)
    assert three.means.shape == (3,) and np.isclose(three.weights.sum(), 1.0)


def test_roi_spectra_and_otsu():
    st = np.random.default_rng(2).random((5, 8, 8))
    labels = np.zeros((8, 8), int)
    labels[:4] = 3
    labels[5:, 5:] = 7
    r = roi_spectra(st, labels)
    assert r.labels.tolist() == [3, 7] and r.counts.tolist() == [32, 9]
    np.testing.assert_allclose(r.spectra[0], st[:, :4].mean(axis=(1, 2)))
    np.testing.assert_allclose(r.spectra[1], st[:, 5:, 5:].mean(axis=(1, 2)))
    single = roi_spectra(st, labels == 7)
    np.testing.assert_allclose(single.spectra[0], r.spectra[1])
    img = np.zeros((8, 8))
    img[2:5, 2:5] = 1.0
    assert otsu_mask(img).sum() == 9


def _phantom(shape=(96, 96), seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    img = np.zeros(shape)
    for _ in range(12):
        cy, cx = rng.uniform(15, shape[0] - 15, 2)
        r = rng.uniform(4, 9)
        arg = ((yy - cy) ** 2 + (xx - cx) ** 2 - r * r) / (2 * r)
        img += 1.0 / (1 + np.exp(np.clip(arg, -50, 50)))
    return img


@pytest.mark.parametrize("chain", [False, True])
def test_align_stack_recovers_drift(chain):
    rng = np.random.default_rng(4)
    base = _phantom()
    n = 12
    # contrast changes across the edge: the particle absorbance scales with energy
    contrast = np.linspace(0.4, 1.6, n)
    drift = np.cumsum(rng.uniform(-1.7, 1.7, (n, 2)), axis=0)
    drift -= drift[n // 2]
    assert np.abs(drift).max() <= 10
    frames = np.stack(
        [
            np.fft.ifftn(ndimage.fourier_shift(np.fft.fftn(0.2 + c * base), d)).real
            + rng.normal(0, 0.01, base.shape)
            for c, d in zip(contrast, drift, strict=True)
        ]
    )
    res = align_stack(frames, chain=chain)
    assert res.aligned.shape == frames.shape and res.aligned.dtype == np.float32
    err = res.shifts + drift
    assert np.abs(err).max() < 0.2, err
    # aligned frames overlap the reference (interior, away from filled borders)
    inner = (slice(15, -15), slice(15, -15))
    ref = res.aligned[n // 2][inner]
    for i in range(n):
        a = res.aligned[i][inner]
        assert np.corrcoef(a.ravel(), ref.ravel())[0, 1] > 0.98
