"""The holotomography slice figure keeps every axis label inside, whatever the volume's shape."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from figure_checks import check_figure

from ssb_beamline.report import tomo

matplotlib.use("Agg")


@pytest.mark.parametrize("shape", [(16, 32, 32), (16, 48, 48), (16, 46, 46), (8, 64, 64)])
def test_holo_slices_labels_stay_inside(shape):
    density = np.random.default_rng(0).random(shape)
    labels = np.zeros(shape, int)
    labels[2:5, 10:20, 10:20] = 1
    figures = {}
    tomo._holo_slices(
        {"electron_density": density, "particle_labels": labels},
        0.1,
        lambda fig, name, *_: figures.setdefault(name, fig),
    )
    check_figure("holo_slices", figures["holo_slices"])  # (16, 48, 48) cut 'y (µm)' before
