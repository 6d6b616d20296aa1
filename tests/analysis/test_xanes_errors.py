"""Bad input raises ValueError/TypeError whose message names the problem and the fix."""

from __future__ import annotations

import numpy as np
import pytest
from xanes_synth import REFS, mixture, mu_stack, scan_energies

from ssb_beamline.analysis import (
    SocCalibration,
    absorbance,
    align_stack,
    analyse_xanes_stack,
    edge_energy_map,
    edge_jump_mask,
    histogram_components,
    lcf_map,
    normalize_stack,
    ratio_map,
    roi_spectra,
    soc_map,
    white_line_map,
)
from ssb_beamline.analysis.edge_fit import find_e0
from ssb_beamline.plans.energy_grids import NI_K_EDGE_REGIONS_EV, edge_grid

E = scan_energies()
MU = mu_stack(E, np.full((3, 4), 0.5), np.full((3, 4), 0.6)).astype(np.float32)


def test_energies_not_increasing():
    e = E.copy()
    e[[7, 8]] = e[[8, 7]]
    with pytest.raises(ValueError, match=r"strictly increasing.*index 8.*Sort the energies"):
        normalize_stack(MU, e)


def test_energies_repeated():
    e = E.copy()
    e[5] = e[4]
    with pytest.raises(ValueError, match="repeated value at index 5"):
        edge_energy_map(MU, e)


def test_energies_not_finite():
    e = E.copy()
    e[3] = np.nan
    with pytest.raises(ValueError, match="must be finite"):
        analyse_xanes_stack(MU, e, REFS)


def test_shape_mismatch_energies_vs_frames():
    with pytest.raises(ValueError, match=r"has 99 values but the stack has 100 frames"):
        normalize_stack(MU, E[:-1])
    with pytest.raises(ValueError, match="must be 1-D"):
        normalize_stack(MU, np.stack([E, E]))


def test_shape_mismatch_dark_flat_mask_out():
    frames = np.ones((2, 4, 4), np.uint16)
    with pytest.raises(ValueError, match=r"dark has shape \(3, 4\).*Pass a dark image"):
        absorbance(frames, np.ones((3, 4)), np.ones((4, 4)))
    with pytest.raises(ValueError, match="frames must have shape"):
        absorbance(np.ones(4), np.ones(4), np.ones(4))
    with pytest.raises(ValueError, match="out must be float32"):
        absorbance(frames, np.zeros((4, 4)), np.ones((4, 4)), out=np.empty((2, 4, 4)))
    with pytest.raises(ValueError, match=r"mask has shape \(2, 2\) but the image shape is"):
        normalize_stack(MU, E, mask=np.ones((2, 2), bool))
    with pytest.raises(ValueError, match="labels_or_mask has shape"):
        roi_spectra(MU, np.ones((2, 2), int))


def test_wrong_dtypes():
    with pytest.raises(TypeError, match="integer or float image"):
        absorbance(np.array([["a"]]), np.zeros((1, 1)), np.ones((1, 1)))
    with pytest.raises(TypeError, match="mask must be boolean"):
        normalize_stack(MU, E, mask=np.ones((3, 4), float))
    with pytest.raises(TypeError, match="references must be"):
        lcf_map(MU, E, 3.0)
    with pytest.raises(TypeError, match="calibration must be a SocCalibration"):
        soc_map(np.zeros(2), calibration={"a": 1})


def test_too_few_points():
    with pytest.raises(ValueError, match=r"too few points.*at least 5"):
        normalize_stack(MU[:4], E[:4])
    e = np.array([8330.0, 8340.0, 8345.0, 8350.0, 8360.0, 8380.0])
    with pytest.raises(ValueError, match=r"too few points|energy range missing the edge"):
        edge_energy_map(mu_stack(e, 0.5, 0.5), e)
    with pytest.raises(ValueError, match="too few points: 3 finite values"):
        histogram_components(np.array([1.0, 2.0, 3.0, np.nan]), 2)


def test_energy_range_missing_the_edge():
    e = np.arange(8205.0, 8320.0, 2.0)  # all below the Ni K-edge
    mu = mu_stack(e, 0.5, 0.5)
    with pytest.raises(ValueError, match="energy range missing the edge"):
        normalize_stack(mu, e)
    with pytest.raises(ValueError, match=r"energy range missing the edge.*outside the scan"):
        normalize_stack(mu, e, e0=8345.0)
    e2 = np.arange(8340.0, 8450.0, 1.0)  # starts on the edge: no pre-edge
    with pytest.raises(ValueError, match=r"no pre-edge region.*Start the scan"):
        normalize_stack(mu_stack(e2, 0.5, 0.5), e2, e0=8346.0)


def test_references_missing_scan_range():
    e = np.arange(8100.0, 8450.0, 1.0)
    with pytest.raises(ValueError, match="reference covers"):
        lcf_map(np.zeros((e.size, 2)), e, REFS)
    with pytest.raises(ValueError, match="fits exactly 2 references"):
        analyse_xanes_stack(MU, E, [REFS[0]])


def test_all_zero_flats():
    frames = np.full((2, 4, 4), 1000, np.uint16)
    with pytest.raises(ValueError, match=r"no pixel of the flat lies above the dark.*beam on"):
        absorbance(frames, np.zeros((4, 4), np.uint16), np.zeros((4, 4), np.uint16))


def test_no_edge_anywhere_is_reported_not_nan_map():
    flat_mu = np.full((E.size, 3, 3), 0.4, np.float32)
    with pytest.raises(ValueError, match=r"all values are equal|no finite values"):
        edge_jump_mask(np.full((3, 3), np.nan))
    res = normalize_stack(flat_mu + np.linspace(0, 1e-3, E.size)[:, None, None], E, e0=8345.0)
    assert np.isfinite(res.norm).all()


def test_misc_argument_errors():
    with pytest.raises(ValueError, match="method must be 'half_step' or 'derivative'"):
        edge_energy_map(MU, E, method="inflection")
    with pytest.raises(ValueError, match="outside the scan"):
        ratio_map(MU, E, 8000.0, 8400.0)
    with pytest.raises(TypeError, match="exactly one of edge_energy or fractions"):
        soc_map()
    with pytest.raises(ValueError, match="are equal"):
        SocCalibration(reduced_edge_ev=8343.0, oxidised_edge_ev=8343.0)
    with pytest.raises(ValueError, match="stack must have shape"):
        align_stack(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="fraction must be in"):
        edge_jump_mask(np.ones((2, 2)), fraction=2.0)
    with pytest.raises(ValueError, match="nnorm must be"):
        normalize_stack(MU, E, nnorm=5)
    with pytest.raises(ValueError, match=r"pre range.*reversed"):
        normalize_stack(MU, E, pre=(8330.0, 8300.0))
    with pytest.raises(ValueError, match="too few points"):
        white_line_map(MU, E, e0=8345.0, window=(0.0, 0.1))


def test_explicit_pre_range_with_too_few_points():
    with pytest.raises(ValueError, match=r"only 1 energies in the pre-edge range.*pass pre="):
        normalize_stack(MU, E, pre=(8300.0, 8301.0))


ENTRY_POINTS = {
    "normalize_stack": normalize_stack,
    "edge_energy_map": edge_energy_map,
    "edge_energy_map derivative": lambda mu, e: edge_energy_map(mu, e, method="derivative"),
    "white_line_map": white_line_map,
    "lcf_map": lambda mu, e: lcf_map(mu, e, REFS),
    "ratio_map": lambda mu, e: ratio_map(mu, e, 8340.0, 8350.0),
    "analyse_xanes_stack": lambda mu, e: analyse_xanes_stack(mu, e, REFS),
}


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_stack_function_rejects_bad_energies_and_shapes(name):
    """The same clear errors from every public function that takes (stack, energies)."""
    fn = ENTRY_POINTS[name]
    e = E.copy()
    e[[7, 8]] = e[[8, 7]]
    with pytest.raises(ValueError, match="strictly increasing"):
        fn(MU, e)
    with pytest.raises(ValueError, match="values but the stack has 100 frames"):
        fn(MU, E[:-1])
    e_dec = E[::-1].copy()
    with pytest.raises(ValueError, match="strictly increasing"):
        fn(MU, e_dec)


def test_open_beam_path_errors():
    from ssb_beamline.analysis import absorbance_with_open_beam, open_beam

    dark = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="no pixel of the flat lies above the dark"):
        open_beam(np.zeros((4, 4), np.uint16), dark)
    beam = open_beam(np.full((4, 4), 100, np.uint16), dark)
    with pytest.raises(ValueError, match="out must be float32"):
        absorbance_with_open_beam(
            np.ones((4, 4), np.uint16), dark, beam, out=np.empty((4, 4), np.float64)
        )
    with pytest.raises(TypeError, match="integer or float image"):
        absorbance_with_open_beam(np.array([["a"]]), dark, beam)


@pytest.mark.parametrize(("n_pre", "n_edge", "n_post"), [(4, 60, 4), (3, 9, 3), (8, 25, 8)])
def test_a_scan_dense_on_the_edge_is_not_taken_for_one_missing_it(n_pre, n_edge, n_post):
    # 60 of 68 points on the edge: their median slope is the edge's (2.9 x, under the 4 x
    # asked) unless the spectrum is weighed by energy span (34 x on the Ni K references)
    e = edge_grid(*NI_K_EDGE_REGIONS_EV, n_pre=n_pre, n_edge=n_edge, n_post=n_post)
    assert 8335.0 < find_e0(e, mixture(e, 0.5)) < 8355.0


def test_a_scan_that_stopped_after_the_edge_still_finds_it():
    # the first 29 of 32 points (5 pre-edge, 22 on the edge, 2 post-edge): 3.7 x before
    e = np.concatenate(
        [np.arange(8300, 8330, 6.0), np.arange(8330, 8362, 1.5), np.arange(8370, 8451, 20.0)]
    )[:29]
    assert 8335.0 < find_e0(e, mixture(e, 0.5)) < 8355.0
