"""The fast paths equal the reference computations they replace.

* absorbance of integer frames through the logarithm table of the dark
  (:class:`~ssb_beamline.analysis.absorbance.CountTable`), for the frame and for
  an integer flat: identical validity, ``I - dark`` and ``flat - dark`` within half
  a count, negligible against Poisson noise;
* the uniform-grid edge-window kernels (:mod:`ssb_beamline.analysis._uniform`)
  against the general kernels.
"""

from __future__ import annotations

import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ssb_beamline.analysis._uniform as uniform_mod
from ssb_beamline.analysis import _kernels as kern
from ssb_beamline.analysis import absorbance, absorbance_with_open_beam, open_beam


def _float_path(frames, dark, beam, saturation=65535.0):
    return absorbance_with_open_beam(frames, dark, beam, saturation=saturation, count_table=False)


def test_count_table_exact_for_integer_dark():
    rng = np.random.default_rng(0)
    dark = rng.integers(90, 110, (32, 48)).astype(np.uint16)
    flat = rng.integers(20000, 60000, (32, 48)).astype(np.uint16)
    frames = rng.integers(0, 65536, (3, 32, 48)).astype(np.uint16)
    beam = open_beam(flat, dark)
    assert beam.counts is not None and beam.counts.offset == 0.0
    fast = absorbance_with_open_beam(frames, dark, beam)
    ref = _float_path(frames, dark, beam)
    np.testing.assert_array_equal(fast.valid, ref.valid)
    np.testing.assert_allclose(fast.values, ref.values, rtol=0, atol=2e-6)
    assert not np.signbit(fast.values[~fast.valid]).any()  # +0.0, never -0.0 or NaN


def test_count_table_rounding_negligible_vs_poisson_noise():
    """A mean-of-darks (fractional) dark: error <= 0.5 / (I - dark) + 0.5 / (flat - dark),
    < 1 % of the noise."""
    rng = np.random.default_rng(1)
    shape = (256, 256)
    dark = (100 + rng.random(shape) * 8).astype(np.float32)  # fractional counts
    flat = (rng.poisson(2e4, shape) + dark).astype(np.uint16)
    signal = 2e4 * np.exp(-rng.uniform(0.0, 3.0, shape))
    frame = (rng.poisson(signal) + np.round(dark)).astype(np.uint16)
    beam = open_beam(flat, dark)
    fast = absorbance_with_open_beam(frame, dark, beam)
    ref = _float_path(frame, dark, beam)
    np.testing.assert_array_equal(fast.valid, ref.valid)
    v = ref.valid
    err = np.abs(fast.values - ref.values)[v]
    net = (frame.astype(np.float64) - dark)[v]
    flat_net = (flat.astype(np.float64) - dark)[v]
    assert np.all(err <= 0.5 / net + 0.5 / flat_net + 1e-5)
    # Poisson noise of ln(I - dark) is sqrt(I) / (I - dark)
    noise = np.sqrt(frame.astype(np.float64)[v]) / net
    assert np.sqrt(np.mean(err**2)) < 0.01 * np.sqrt(np.mean(noise**2))


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    saturation=st.sampled_from([65535.0, 60000.0, 1000.5, 70000.0]),
    dark_scale=st.sampled_from([0.0, 3.0, 150.0]),
)
def test_count_table_validity_equals_float_path(data, saturation, dark_scale):
    """Same valid pixels as the float formula, for any dark fraction and saturation."""
    seed = data.draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    shape = (6, 7)
    dark = (rng.random(shape) * dark_scale).astype(np.float32)
    flat = rng.integers(0, 65536, shape).astype(np.uint16)
    flat[0, 0] = 65535  # at least one valid-ish pixel is not guaranteed; keep one sure one
    flat[1, 1] = 500
    frames = rng.integers(0, 1200, (2, *shape)).astype(np.uint16)
    frames[:, 2, 2] = 65535
    beam = open_beam(flat, dark, saturation=saturation)
    fast = absorbance_with_open_beam(frames, dark, beam, saturation=saturation)
    ref = _float_path(frames, dark, beam, saturation)
    np.testing.assert_array_equal(fast.valid, ref.valid)
    v = ref.valid
    net = (frames.astype(np.float64) - dark)[v]
    flat_net = np.broadcast_to(flat.astype(np.float64) - dark, frames.shape)[v]
    err = np.abs(fast.values - ref.values)[v]
    # the table's I - dark and flat - dark are within 0.5 counts:
    # |ln error| <= ln(net / (net - 0.5)) for each
    sure = (net >= 1.0) & (flat_net >= 1.0)
    bound = 0.5 / (net[sure] - 0.5) + 0.5 / (flat_net[sure] - 0.5)
    assert np.all(err[sure] <= bound + 1e-4)
    assert np.all(np.isfinite(fast.values))
    assert np.all(fast.values[~v] == 0.0)


@pytest.mark.parametrize("flat_dtype", [np.uint16, np.uint8])
def test_table_flat_keeps_only_its_indices(flat_dtype):
    """A table-path flat drops its frame; its validity and log equal the float preparation."""
    rng = np.random.default_rng(5)
    top = np.iinfo(flat_dtype).max
    dark = (rng.random((9, 11)) * 40).astype(np.float32)
    flat = rng.integers(0, top + 1, (9, 11)).astype(flat_dtype)
    flat[0, :3] = (0, 30, top)  # below the dark, near it, saturated
    expected = open_beam(flat.copy(), dark, saturation=top, count_table=False)
    frame = weakref.ref(flat)
    beam = open_beam(flat.copy(), dark, saturation=top)
    beam_of_frame = open_beam(flat, dark, saturation=top)
    del flat
    assert frame() is None  # a replay's flat frame goes back to its reader's pool
    for prepared in (beam, beam_of_frame):
        assert prepared.counts is not None and prepared.flat_counts.dtype == np.uint16
        np.testing.assert_array_equal(prepared.valid, expected.valid)
        np.testing.assert_array_equal(prepared.log_open, expected.log_open)


def test_count_table_only_for_its_own_dark():
    dark = np.full((2, 2), 100.5, np.float32)
    beam = open_beam(np.full((2, 2), 1000, np.uint16), dark)
    frame = np.full((2, 2), 550, np.uint16)
    exact = np.log(899.5) - np.log(449.5)
    same = absorbance_with_open_beam(frame, dark, beam).values  # table, offset 0.5
    other = absorbance_with_open_beam(frame, dark.copy(), beam).values  # float path
    np.testing.assert_allclose(other, exact, rtol=1e-6)
    np.testing.assert_allclose(same, exact, rtol=1e-6)
    # no table for a dark outside [0, 65535) or for float frames
    assert open_beam(np.full((2, 2), 10.0), np.full((2, 2), -1.0)).counts is None
    res = absorbance(frame.astype(np.float32), dark, np.full((2, 2), 1000, np.uint16))
    np.testing.assert_allclose(res.values, exact, rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_uniform_kernels_equal_general(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    m, p = 39, 3000
    e = 8332.0 + 0.4286 * np.arange(m)
    centre = 8341.0 + rng.normal(0, 2, p)
    y = 1 / (1 + np.exp(-(e[:, None] - centre) / 1.5)) + rng.normal(0, 0.03, (m, p))
    y = y.astype(np.float32)
    p0 = rng.normal(0, 0.01, p).astype(np.float32)
    p1 = rng.normal(0, 0.01, p).astype(np.float32)
    inv = rng.uniform(0.9, 1.1, p).astype(np.float32)
    xl = (e - 8341.0) / 50.0
    count = kern.count_below(y, np.float32(0.5))
    fast_e0 = kern.derivative_max_block(y, e)
    fast_half = kern.half_step_from_count(count, y, e, line=(p0, p1, xl, inv))
    monkeypatch.setattr(uniform_mod, "uniform_step", lambda _e: None)
    slow_e0 = kern.derivative_max_block(y, e)
    slow_half = kern.half_step_from_count(count, y, e, line=(p0, p1, xl, inv))
    np.testing.assert_allclose(fast_e0, slow_e0, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(np.isnan(fast_half), np.isnan(slow_half))
    np.testing.assert_allclose(fast_half, slow_half, rtol=0, atol=1e-4)


@settings(max_examples=30, deadline=None)
@given(
    h=st.floats(0.1, 2.0),
    n=st.integers(6, 60),
    centre=st.floats(0.2, 0.8),
    seed=st.integers(0, 1000),
)
def test_uniform_half_step_property(h, n, centre, seed):
    """On any uniform grid the fast half step equals the general one (no line)."""
    rng = np.random.default_rng(seed)
    e = 100.0 + h * np.arange(n)
    c = e[0] + centre * (e[-1] - e[0]) + rng.normal(0, h, 50)
    y = (1 / (1 + np.exp(-(e[:, None] - c) / (2 * h))) + rng.normal(0, 0.02, (n, 50))).astype(
        np.float32
    )
    count = kern.count_below(y, np.float32(0.5))
    fast = uniform_mod.half_step_uniform(count, y, float(e[0]), h)
    orig = uniform_mod.uniform_step
    try:
        uniform_mod.uniform_step = lambda _e: None
        slow = kern.half_step_from_count(count, y, e)
    finally:
        uniform_mod.uniform_step = orig
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(slow))
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-4 * h)


def test_analyse_without_derivative_e0_keeps_other_maps():
    from xanes_synth import REFS, mu_stack, scan_energies

    from ssb_beamline.analysis import analyse_xanes_stack

    e = scan_energies()
    rng = np.random.default_rng(3)
    frac = rng.uniform(0, 1, (16, 16))
    step = np.where(rng.random((16, 16)) > 0.3, 0.6, 0.02)
    mu = mu_stack(e, frac, step).astype(np.float32)
    full = analyse_xanes_stack(mu, e, REFS)
    lean = analyse_xanes_stack(mu, e, REFS, derivative_e0=False)
    assert np.isnan(lean.e0).all() and np.isfinite(full.e0[full.mask]).all()
    for name in ("edge_step", "edge_energy", "fractions", "residual", "soc", "mask"):
        np.testing.assert_array_equal(getattr(lean, name), getattr(full, name))


def test_otsu_of_an_almost_constant_map_is_not_a_numpy_error():
    from ssb_beamline.analysis import otsu_threshold

    v = np.float32(0.6) + np.arange(100, dtype=np.float32) * np.float32(1e-8)
    assert otsu_threshold(v) == pytest.approx(0.6)


@pytest.mark.parametrize("count_table", [True, False])
def test_validity_is_anded_into_a_given_mask(count_table):
    """``valid=``: the scan's mask keeps only pixels valid in every frame (both paths)."""
    dark = np.full((3, 4), 100, np.uint16)
    flat = np.full((3, 4), 20000, np.uint16)
    flat[0, 0] = 65535  # saturated flat pixel: never valid
    beam = open_beam(flat, dark)
    first = np.full((3, 4), 5000, np.uint16)
    first[1, 1] = 50  # below the dark in the first frame only
    second = np.full((3, 4), 6000, np.uint16)
    second[2, 3] = 65535  # saturated in the second frame only
    mask = np.ones((3, 4), bool)
    for frame in (first, second):
        res = absorbance_with_open_beam(frame, dark, beam, valid=mask, count_table=count_table)
        assert res.valid is mask
    expected = np.ones((3, 4), bool)
    expected[0, 0] = expected[1, 1] = expected[2, 3] = False
    np.testing.assert_array_equal(mask, expected)
    # the values are those of the last frame alone (0 where it is invalid)
    alone = absorbance_with_open_beam(second, dark, beam, count_table=count_table)
    np.testing.assert_array_equal(res.values, alone.values)


def test_a_mask_of_the_wrong_shape_is_refused():
    dark = np.full((3, 4), 100, np.uint16)
    beam = open_beam(np.full((3, 4), 20000, np.uint16), dark)
    with pytest.raises(ValueError, match=r"valid must be a C-contiguous bool array.*np\.ones"):
        absorbance_with_open_beam(dark + 5, dark, beam, valid=np.ones((4, 3), bool))
