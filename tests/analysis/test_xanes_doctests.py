"""Run the docstring examples of the XANES analysis modules."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "ssb_beamline.analysis._fused",
    "ssb_beamline.analysis._kernels",
    "ssb_beamline.analysis._parallel",
    "ssb_beamline.analysis._scratch",
    "ssb_beamline.analysis._uniform",
    "ssb_beamline.analysis._validation",
    "ssb_beamline.analysis._xanes_setup",
    "ssb_beamline.analysis.absorbance",
    "ssb_beamline.analysis.align",
    "ssb_beamline.analysis.edge",
    "ssb_beamline.analysis.edge_fit",
    "ssb_beamline.analysis.lcf",
    "ssb_beamline.analysis.masks",
    "ssb_beamline.analysis.mixture",
    "ssb_beamline.analysis.normalize",
    "ssb_beamline.analysis.pipeline",
    "ssb_beamline.analysis.ratio",
    "ssb_beamline.analysis.soc",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
    assert result.attempted > 0, f"{name} has no docstring examples"
