"""Particle statistics as plain analysis: the rims are re-analysed with the run's references."""

import numpy as np
from xanes_synth import REFS, mu_stack, scan_energies

from ssb_beamline.analysis.particle_statistics import fill_rims


def test_the_rims_are_reanalysed_with_the_references_given():
    e = scan_energies(60)
    frac = np.full((1, 3), 0.25)
    absorbance = mu_stack(e, frac, 0.6).astype(np.float32)
    labels = np.ones((1, 3), np.int32)
    soc = np.array([[0.25, np.nan, np.nan]])  # two rim pixels outside the XANES mask
    edge = np.array([[8345.0, np.nan, np.nan]])
    md: dict = {}
    filled, _ = fill_rims(soc, edge, labels, absorbance, e, REFS, md)
    assert md["pixels_reanalysed"] == 2
    assert np.allclose(filled[0, 1:], 0.25, atol=0.02)
    assert filled[0, 0] == 0.25  # pixels inside the mask are kept
    # the same pixels against the references swapped: the SOC flips, so they are used
    swapped, _ = fill_rims(soc, edge, labels, absorbance, e, REFS[::-1], {})
    assert np.allclose(swapped[0, 1:], 0.75, atol=0.02)
