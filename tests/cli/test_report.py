"""Particle figures of a stored result (the ``report`` command's drawing code).

The command itself runs against a stored demo run in ``test_cli.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from ssb_beamline.analysis.phases import Phase
from ssb_beamline.callbacks.particles_live import ParticleStatistics
from ssb_beamline.callbacks.xanes_live import MapContext
from ssb_beamline.report.particles import write_particle_figures

NAMES = ("particles_maps", "particles_size", "particles_network")


def _stored_like(network: bool):
    """Arrays, tables and metadata as read_results returns them, for 6 discs."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:120, :180]
    labels = np.zeros(yy.shape, int)
    for k, (cy, cx, r) in enumerate([(30, 30, 8), (30, 90, 14), (30, 150, 20),
                                     (90, 30, 20), (90, 90, 9), (90, 150, 16)]):  # fmt: skip
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = k + 1
    disc = labels > 0
    soc = np.where(disc, 0.6 - 0.01 * np.sqrt(np.bincount(labels.ravel())[labels]) / 3, np.nan)
    soc = soc + np.where(disc, 0.002 * xx % 0.1 + rng.normal(0, 0.01, yy.shape), 0)
    maps = {
        "edge_step": disc + 0.01 * rng.standard_normal(yy.shape),
        "soc": soc,
        "edge_energy": 8340 + 4 * soc,
        "mask": disc,
    }
    phases = np.where(disc, Phase.NMC, Phase.VOID).astype(np.uint8)
    phases[:, :6] = Phase.SSE
    ring = ~disc & (np.abs(yy % 60 - 30) < 2)
    phases[ring & (xx % 60 < 30)] = Phase.SSE
    phases[ring & (xx % 60 >= 30)] = Phase.CARBON
    context = MapContext(
        "u", {"pixel_size_um": 0.1}, np.linspace(8300, 8400, 4), np.zeros((4, *yy.shape))
    )
    source = (lambda ctx: phases) if network else None
    result = ParticleStatistics(phase_source=source, fill_particles=False)(maps, context)
    return {**maps, **result.arrays}, result.tables, {"particles": result.metadata}


@pytest.mark.parametrize("fmt", ["png", "pdf"])
@pytest.mark.parametrize("network", [True, False])
def test_particle_figures_are_written(tmp_path, fmt, network):
    arrays, tables, metadata = _stored_like(network)
    files = write_particle_figures(tmp_path, arrays, tables, metadata, title="t", fmt=fmt)
    assert [f.name for f in files] == [f"{name}.{fmt}" for name in NAMES]
    for path in files:
        assert path.stat().st_size > 5_000


def test_a_result_without_particle_statistics_is_a_clear_error(tmp_path):
    with pytest.raises(KeyError, match="ParticleStatistics"):
        write_particle_figures(tmp_path, {"soc": np.zeros((4, 4))}, {}, {})
