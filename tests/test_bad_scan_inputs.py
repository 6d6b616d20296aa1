"""Bad scan and analysis inputs: errors of a known type whose message names the problem
and the fix (issue 5; the storage and replay cases are in test_bad_inputs.py)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from ssb_beamline.analysis import absorbance, analyse_xanes_stack, lcf_map
from ssb_beamline.cli import main
from ssb_beamline.plans import ni_k_edge_grid, xanes_scan
from ssb_beamline.plans.energy_grids import edge_grid
from ssb_beamline.reference_data import ni_k_edge_references

ENERGIES = [8300.0, 8320.0, 8340.0, 8360.0, 8400.0]


# -- plans ---------------------------------------------------------------------------------
def scan(energies=ENERGIES, **options):
    """Build a xanes_scan; the checks run before any device is touched."""
    return xanes_scan(*[None] * 7, energies, sample_out=0.0, focus=None, **options)


@pytest.mark.parametrize(
    ("energies", "message"),
    [
        ([], r"energy list is empty\. Pass energies in eV"),
        ([8300.0, 8350.0, 8340.0], r"strictly increasing; they go down at index 2.*np\.sort"),
        ([8300.0, 8340.0, 8340.0], r"listed twice \(indices 1 and 2\)\. Remove the duplicate"),
        ([8300.0, math.nan, 8400.0], r"must be finite numbers \(eV\); entries \[1\]"),
    ],
    ids=["empty", "non-monotonic", "duplicate", "nan"],
)
def test_bad_energy_lists(energies, message):
    with pytest.raises(ValueError, match=message):
        scan(energies)


def test_energies_outside_the_monochromator_limits(RE, make_txm):
    txm = make_txm()
    plan = xanes_scan(
        txm.detector, txm.energy, txm.zp_z, txm.det_z, txm.sample.x, txm.shutter, txm.i0,
        [10990.0, 11000.0, 11010.0], sample_out=txm.sample_out_x_um, focus=None,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"energy would move to .* outside its limits .*nothing"):
        RE(plan)


@pytest.mark.parametrize("exposure", [0.0, -0.1, math.nan, math.inf])
def test_exposure_that_is_not_positive(exposure):
    with pytest.raises(ValueError, match=r"exposure_time must be a positive number of seconds"):
        scan(exposure_time=exposure)


@pytest.mark.parametrize(
    ("option", "message"),
    [({"n_dark": 0}, r"n_dark must be >= 1"), ({"flat_every": 0}, r"flat_every must be >= 1")],
)
def test_dark_and_flat_counts(option, message):
    with pytest.raises(ValueError, match=message):
        scan(**option)


def test_unknown_grid_preset(capsys):
    with pytest.raises(ValueError, match=r"Unknown energy-grid preset 'superfine'; choose one"):
        ni_k_edge_grid("superfine")
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--preset", "superfine"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'superfine'" in capsys.readouterr().err


def test_grid_regions_out_of_order():
    with pytest.raises(ValueError, match=r"start < edge_start < edge_stop < stop"):
        edge_grid(8300, 8360, 8328, 8450, n_pre=3, n_edge=5, n_post=3)


# -- analysis -------------------------------------------------------------------------------
GRID = ni_k_edge_grid("quick")


def stack(n: int = GRID.size) -> np.ndarray:
    return np.random.default_rng(0).random((n, 6, 5), dtype=np.float32)


def test_stack_and_energies_of_different_lengths():
    with pytest.raises(ValueError, match=r"has 20 values but the stack has 21 frames"):
        analyse_xanes_stack(stack(), GRID[:-1], ni_k_edge_references())


def test_stack_with_an_all_nan_frame():
    mu = stack()
    mu[4] = np.nan
    message = rf"frame 4 \({re.escape(str(GRID[4]))} eV\) of mu has no finite value.*Drop"
    with pytest.raises(ValueError, match=message):
        analyse_xanes_stack(mu, GRID, ni_k_edge_references())


def test_flat_not_above_the_dark():
    frames = np.full((2, 4, 4), 500, np.uint16)
    dark = np.full((4, 4), 300, np.uint16)
    with pytest.raises(ValueError, match=r"no pixel of the flat lies above the dark.*beam"):
        absorbance(frames, dark, dark - 10)


def test_references_that_do_not_cover_the_scan():
    energies = np.arange(8000.0, 8450.0, 10.0)
    with pytest.raises(ValueError, match="reference covers"):
        lcf_map(np.zeros((energies.size, 2)), energies, ni_k_edge_references())
