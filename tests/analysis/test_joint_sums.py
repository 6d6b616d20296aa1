"""Joint-fit sums accumulated frame by frame give the maps of the full pass."""

from __future__ import annotations

import numpy as np
import pytest

from ssb_beamline.analysis import (
    JointFitAccumulator,
    analyse_xanes_stack,
    normalized_stack,
)
from ssb_beamline.reference_data import ni_k_edge_references

REFS = ni_k_edge_references()


def _stack(n: int = 40, shape: tuple[int, int] = (24, 32), seed: int = 3):
    """Mixtures of the references with a particle-like edge step, background and noise."""
    pre = np.linspace(8300, 8330, 6, endpoint=False)
    edge = np.linspace(8330, 8360, n - 14, endpoint=False)
    e = np.concatenate([pre, edge, np.linspace(8360, 8450, 8)])
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    step = np.where((yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (h / 3) ** 2, 0.6, 0.02)
    frac = xx / (w - 1)
    r0, r1 = REFS[0].at(e), REFS[1].at(e)
    mu = 0.3 + step * (r0[:, None, None] * (1 - frac) + r1[:, None, None] * frac)
    mu += rng.normal(0, 0.004, mu.shape)
    return mu.astype(np.float32), e


def _accumulate(stack, e, order, batch=5):
    acc = JointFitAccumulator(stack, e, REFS, batch=batch)
    for k in order:
        acc.add(int(k))
    return acc


def test_sums_in_any_order_give_the_full_pass_maps():
    stack, e = _stack()
    order = np.random.default_rng(0).permutation(e.size)
    sums = _accumulate(stack, e, order).result()
    assert sums is not None
    full = analyse_xanes_stack(stack, e, REFS)
    fast = analyse_xanes_stack(stack, e, REFS, joint_sums=sums)
    np.testing.assert_array_equal(full.mask, fast.mask)
    m = full.mask
    assert m.sum() > 100
    np.testing.assert_allclose(fast.edge_step, full.edge_step, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast.soc[m], full.soc[m], atol=1e-4)
    # the sums give the residual as |y|^2 - 2 b.x + x.A.x in float32: a cancellation whose
    # error scales with |y|^2, not with the (small) residual; seen 6e-5 on one of 193 pixels
    np.testing.assert_allclose(fast.residual[m], full.residual[m], rtol=1e-2, atol=1e-4)
    # a float32 flip of one sample's side of the half step moves the local line fit
    # by much less than the energy step
    np.testing.assert_allclose(fast.edge_energy[m], full.edge_energy[m], atol=0.05)
    assert np.nanmedian(np.abs(fast.edge_energy[m] - full.edge_energy[m])) < 1e-3
    # and the recovered SOC follows the truth (oxidised fraction = x / (w - 1))
    truth = np.broadcast_to(np.arange(32) / 31.0, m.shape)[m]
    assert np.sqrt(np.mean((fast.soc[m] - truth) ** 2)) < 0.05


def test_normalized_stack_from_maps_equals_the_fused_output():
    stack, e = _stack(seed=5)
    maps = analyse_xanes_stack(stack, e, REFS, return_norm=True)
    later = normalized_stack(stack, e, maps)
    m = maps.mask
    np.testing.assert_allclose(later[:, m], maps.norm[:, m], atol=2e-5)
    # post-edge of the normalised spectra is about 1, pre-edge about 0
    assert abs(float(np.median(later[-1][m])) - 1.0) < 0.1
    assert abs(float(np.median(later[0][m]))) < 0.05


def test_incomplete_or_repeated_frames_give_no_sums():
    stack, e = _stack()
    assert _accumulate(stack, e, range(e.size - 1)).result() is None
    acc = _accumulate(stack, e, [*range(e.size), 3])
    assert acc.result() is None
    assert "twice" in acc.broken


def test_sums_that_do_not_fit_the_stack_are_refused():
    stack, e = _stack()
    sums = _accumulate(stack, e, range(e.size)).result()
    with pytest.raises(ValueError, match="other energies"):
        analyse_xanes_stack(stack, e + 0.5, REFS, joint_sums=sums)
    with pytest.raises(ValueError, match="lcf_range"):
        analyse_xanes_stack(stack, e, REFS, joint_sums=sums, lcf_range=(8320.0, 8400.0))
    with pytest.raises(ValueError, match="normalization='references'"):
        analyse_xanes_stack(stack, e, REFS, joint_sums=sums, normalization="edge_fit")
    with pytest.raises(ValueError, match="one row per energy"):
        JointFitAccumulator(stack[:-1], e, REFS)
    with pytest.raises(ValueError, match="C-contiguous"):
        JointFitAccumulator(stack[:, :, ::2], e, REFS)
