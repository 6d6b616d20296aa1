"""The three steps of analyse_xanes_stack, each run alone (operators, chunk kernels, finish)."""

import numpy as np
import pytest
from xanes_synth import REFS, mu_stack, scan_energies

from ssb_beamline.analysis._xanes_chunks import (
    XanesOutputs,
    chunk_kernel,
    joint_fit_chunk,
)
from ssb_beamline.analysis._xanes_setup import XanesSettings, build_operators, lcf_slice
from ssb_beamline.analysis.pipeline import analyse_xanes_stack, finish_maps

E = scan_energies(60)
FRAC = np.array([[0.1, 0.4], [0.7, 0.9]])
STEP = np.array([[0.5, 0.8], [1.0, 0.6]])
MU = mu_stack(E, FRAC, STEP).astype(np.float32)
MU2 = MU.reshape(E.size, -1)


@pytest.mark.parametrize("normalization", ["references", "edge_fit"])
def test_operators_kernel_and_finish_alone_give_the_maps(normalization):
    settings = XanesSettings(e0=8345.0, normalization=normalization)
    ops = build_operators(MU2, E, REFS, settings)
    assert ops.by_refs == (normalization == "references")
    assert ops.weights.shape == (8, E.size) and ops.n == E.size and ops.p == 4
    out = XanesOutputs.allocate(ops.p)
    kernel = chunk_kernel(ops, MU2, None)  # the kernel analyse_xanes_stack runs
    kernel(ops, out, MU2, slice(0, 2))  # two chunks, in any order
    kernel(ops, out, MU2, slice(2, 4))
    if ops.by_refs:  # the joint fit sees the true edge step and fraction directly
        assert np.allclose(out.step, STEP.ravel(), rtol=1e-3)
        assert np.allclose(out.frac_ox, FRAC.ravel(), atol=2e-3)
    maps = finish_maps(ops, out, (2, 2), mask=np.ones((2, 2), bool))
    assert np.allclose(maps.fractions[1], FRAC, atol=2e-3)
    whole = analyse_xanes_stack(
        MU, E, REFS, e0=8345.0, normalization=normalization, mask=np.ones((2, 2), bool)
    )
    for name in ("edge_step", "edge_energy", "soc", "residual", "e0"):
        assert np.array_equal(getattr(maps, name), getattr(whole, name), equal_nan=True), name


def test_the_finish_masks_by_the_edge_step_threshold():
    ops = build_operators(MU2, E, REFS, XanesSettings(e0=8345.0))
    out = XanesOutputs.allocate(ops.p)
    joint_fit_chunk(ops, out, MU2, slice(0, 4))
    maps = finish_maps(ops, out, (2, 2), mask_threshold=0.55)
    assert maps.mask.tolist() == [[False, True], [True, True]]
    assert np.isnan(maps.soc[0, 0]) and np.isfinite(maps.soc[1, 1])


def test_the_lcf_range_and_normalization_are_checked_while_building():
    assert lcf_slice(E, None) == slice(0, E.size)
    with pytest.raises(ValueError, match="Widen lcf_range"):
        lcf_slice(E, (8300.0, 8301.0))
    with pytest.raises(ValueError, match="normalization must be"):
        build_operators(MU2, E, REFS, XanesSettings(normalization="bogus"))
