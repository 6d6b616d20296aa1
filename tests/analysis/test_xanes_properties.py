"""Property-based tests (hypothesis): shapes, dtypes, masks, invariances, monotonic energies."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from xanes_synth import REFS, mu_stack

from ssb_beamline.analysis import (
    absorbance,
    edge_energy_map,
    histogram_components,
    lcf_map,
    normalize_stack,
    roi_spectra,
    soc_map,
)
from ssb_beamline.analysis._validation import check_energies

FAST = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

shapes = st.tuples(st.integers(1, 5), st.integers(1, 6))


@st.composite
def scan_grids(draw):
    """Strictly increasing energies across the Ni K-edge, random spacing."""
    n_pre = draw(st.integers(4, 12))
    n_edge = draw(st.integers(25, 70))
    n_post = draw(st.integers(5, 20))
    start = draw(st.floats(8280.0, 8305.0))
    stop = draw(st.floats(8400.0, 8500.0))
    jitter = draw(st.floats(0.0, 0.3))
    pre = np.linspace(start, 8328.0, n_pre, endpoint=False)
    edge = np.linspace(8328.0, 8365.0, n_edge, endpoint=False)
    edge = edge + jitter * (edge[1] - edge[0]) * np.sin(np.arange(n_edge))
    post = np.linspace(8365.0, stop, n_post)
    return np.concatenate([pre, edge, post])


@FAST
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5)),
    data=st.data(),
)
def test_absorbance_properties(shape, data):
    ints = hnp.arrays(np.uint16, shape, elements=st.integers(0, 65535))
    frames = data.draw(ints)
    dark = data.draw(hnp.arrays(np.uint16, shape[1:], elements=st.integers(0, 300)))
    flat = data.draw(hnp.arrays(np.uint16, shape[1:], elements=st.integers(0, 65535)))
    if not np.any(flat.astype(int) > dark):
        flat[(0,) * flat.ndim] = 65000
        dark[(0,) * dark.ndim] = 0
    res = absorbance(frames, dark, flat)
    assert res.values.shape == shape and res.values.dtype == np.float32
    assert res.valid.dtype == bool and np.isfinite(res.values).all()
    i, d, f = frames.astype(float), dark.astype(float), flat.astype(float)
    expect_valid = (i - d > 0) & (f - d > 0) & (i < 65535) & (f < 65535)
    assert np.array_equal(res.valid, expect_valid)
    assert np.all(res.values[~res.valid] == 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        expect = -np.log((i - d) / (f - d))
    np.testing.assert_allclose(res.values[res.valid], expect[res.valid], rtol=1e-5, atol=1e-5)


@FAST
@given(
    values=hnp.arrays(
        np.float64, st.integers(2, 12), elements=st.floats(8000, 9000, allow_nan=False)
    )
)
def test_check_energies_accepts_exactly_strictly_increasing(values):
    increasing = bool(np.all(np.diff(values) > 0))
    if increasing:
        assert np.array_equal(check_energies(values), values)
    else:
        with pytest.raises(ValueError, match="strictly increasing"):
            check_energies(values)


@FAST
@given(
    e=scan_grids(),
    shape=shapes,
    params=st.tuples(
        st.floats(0.0, 1.0), st.floats(0.05, 2.0), st.floats(-0.5, 3.0), st.floats(0.2, 5.0)
    ),
)
def test_normalize_shapes_and_affine_invariance(e, shape, params):
    frac, step, base, gain = params
    mu = mu_stack(e, np.full(shape, frac), np.full(shape, step), base=base).astype(np.float32)
    res = normalize_stack(mu, e)
    assert res.norm.shape == mu.shape and res.norm.dtype == np.float32
    assert res.e0.shape == shape and res.edge_step.shape == shape and res.valid.all()
    assert e[0] <= res.pre_range[0] < res.pre_range[1] < res.e0_global < res.post_range[0]
    scaled = normalize_stack(np.float32(gain) * mu + np.float32(1.0), e, e0=res.e0_global)
    np.testing.assert_allclose(scaled.norm, res.norm, atol=2e-3 / min(step, 1.0))
    np.testing.assert_allclose(scaled.edge_step, gain * res.edge_step, rtol=1e-3)


@FAST
@given(e=scan_grids(), shape=shapes, data=st.data())
def test_edge_map_nan_exactly_outside_mask(e, shape, data):
    mask = data.draw(hnp.arrays(bool, shape))
    frac = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(0.0, 1.0)))
    mu = mu_stack(e, frac, np.full(shape, 0.6))
    out = edge_energy_map(mu, e, mask=mask)
    assert out.shape == shape and out.dtype == np.float32
    assert np.array_equal(np.isnan(out), ~mask)
    assert np.all((out[mask] > 8335.0) & (out[mask] < 8355.0))


@FAST
@given(e=scan_grids(), shape=shapes, data=st.data())
def test_lcf_fractions_bounded_and_sum_to_one(e, shape, data):
    frac = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-0.3, 1.3)))
    norm = REFS[0].at(e)[:, None, None] * (1 - frac) + REFS[1].at(e)[:, None, None] * frac
    res = lcf_map(norm, e, REFS)
    assert res.fractions.shape == (2, *shape) and res.residual.shape == shape
    assert np.all(res.fractions >= 0) and np.all(res.fractions <= 1)
    np.testing.assert_allclose(res.fractions.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(res.fractions[1], np.clip(frac, 0, 1), atol=1e-3)
    soc = soc_map(fractions=res.fractions).soc
    np.testing.assert_allclose(soc, np.clip(frac, 0, 1), atol=1e-3)


@FAST
@given(data=st.data(), n=st.integers(1, 6), shape=shapes)
def test_roi_spectra_equals_naive_means(data, n, shape):
    stack = data.draw(hnp.arrays(np.float64, (n, *shape), elements=st.floats(-5, 5)))
    labels = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 3)))
    if not np.any(labels > 0):
        labels[(0,) * len(shape)] = 1
    res = roi_spectra(stack, labels)
    for lab, spec, cnt in zip(res.labels, res.spectra, res.counts, strict=True):
        sel = labels == lab
        assert cnt == sel.sum()
        np.testing.assert_allclose(spec, stack[:, sel].mean(axis=1), atol=1e-9)


@FAST
@given(
    values=hnp.arrays(np.float64, st.integers(20, 200), elements=st.floats(-10, 10)),
    k=st.integers(1, 3),
)
def test_histogram_components_well_formed(values, k):
    if np.ptp(values) == 0:
        values[0] += 1.0
    g = histogram_components(values, k)
    assert g.means.shape == g.sigmas.shape == g.weights.shape == (k,)
    assert np.all(np.diff(g.means) >= 0) and np.all(g.sigmas > 0)
    assert np.isclose(g.weights.sum(), 1.0)
