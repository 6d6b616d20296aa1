"""Particle figures of a stored result (the ``report`` command's drawing code).

The command itself runs against a stored demo run in ``test_cli.py``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from ssb_beamline.analysis.phases import Phase
from ssb_beamline.callbacks.particles_live import ParticleStatistics
from ssb_beamline.callbacks.xanes_live import MapContext
from ssb_beamline.reference_data import ni_k_edge_references
from ssb_beamline.report.figures import pick_rois, write_xanes_figures
from ssb_beamline.report.pages import FigureSink
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
def test_particle_figures_are_written(tmp_path, fmt):
    arrays, tables, metadata = _stored_like(True)
    files = write_particle_figures(tmp_path, arrays, tables, metadata, title="t", fmt=fmt)
    assert [f.name for f in files] == [f"{name}.{fmt}" for name in NAMES]
    for path in files:
        assert path.stat().st_size > 5_000


@pytest.mark.parametrize("network", [True, False])
def test_particle_figures_have_units_colour_bars_legends(tmp_path, network, check_figure):
    arrays, tables, metadata = _stored_like(network)
    key = "particle_soc" if "particle_soc" in arrays else "soc"
    arrays[key] = np.where(arrays["particle_labels"] == 1, 1.0, arrays[key])  # clipped at 1
    sink = FigureSink(tmp_path, keep=True)
    write_particle_figures(tmp_path, arrays, tables, metadata, sink=sink, pixel_size_um=0.1)
    captions = {n: " ".join(" ".join(t.get_text().split()) for t in f.texts)
                for n, f in sink.figures.items()}  # fmt: skip
    # clipped pixels are left out of the histogram and its fit, and counted
    hist = sink.figures["particles_maps"].axes[1]
    assert max(p.get_x() + p.get_width() for p in hist.patches) < 1.0
    assert re.search(r"\d+ pixels clipped at SOC 0 and [1-9]\d* at 1", captions["particles_maps"])
    if network:
        assert "FWHM/10" in captions["particles_network"]
    else:  # no phase map: the (e-, Li+) panel is left out, and the caption says why
        assert len(sink.figures["particles_network"].axes) == 1
        assert "2D (e-, Li+) map left out" in captions["particles_network"]
    assert "code" not in " ".join(captions.values())
    size = sink.figures["particles_size"]
    # one colour per size class, the same in both panels, with a legend in each
    scatter_colours = {tuple(c) for c in size.axes[0].collections[-1].get_facecolors().round(3)}
    box_colours = {tuple(np.round(b.get_facecolor()[:3], 3)) for b in size.axes[1].patches}
    assert {c[:3] for c in scatter_colours} <= box_colours | {(0.5, 0.5, 0.5)}
    for name, fig in sink.figures.items():
        check_figure(name, fig)


def _xanes_maps(shape=(40, 60)):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask = (yy - 20) ** 2 + (xx - 30) ** 2 < 15**2
    soc = np.where(mask, 0.3 + 0.3 * xx / shape[1], np.nan)
    energies = np.linspace(8300, 8450, 12)
    step = 1 / (1 + np.exp(-(energies[:, None, None] - 8340 - 4 * soc) / 2))
    normalized = np.where(mask, step + rng.normal(0, 0.03, (12, *shape)), 0)
    return {"soc": soc, "edge_energy": 8340 + 4 * soc, "mask": mask,
            "normalized": normalized, "energies": energies}  # fmt: skip


def test_xanes_figures_have_units_colour_bars_and_marked_regions(tmp_path, check_figure):
    arrays = _xanes_maps()
    truth = {"soc": np.nan_to_num(arrays["soc"]) * 1.2, "edge_energy": arrays["edge_energy"]}
    sink = FigureSink(tmp_path, keep=True)
    write_xanes_figures(tmp_path, arrays, references=ni_k_edge_references(), truth=truth,
                        pixel_size_um=0.13, sink=sink)  # fmt: skip
    assert list(sink.figures) == ["maps", "spectra", "truth_vs_result"]
    soc_map = sink.figures["maps"].axes[0].get_images()[0]
    lo, hi = soc_map.get_clim()  # robust range of the data, not 0-1
    assert 0.29 < lo < hi < 0.61
    spectra_map, spectra = sink.figures["spectra"].axes[:2]
    regions = list(spectra_map.patches)
    assert len(regions) == 4  # the ROIs are marked on the map ...
    roi_lines = [ln for ln in spectra.get_lines() if ln.get_label().startswith("R")]
    line_colours = [to_rgba(ln.get_color()) for ln in roi_lines]
    assert line_colours == [tuple(p.get_edgecolor()) for p in regions]  # in their colours
    truth, result = (ax.get_images()[0] for ax in sink.figures["truth_vs_result"].axes[:2])
    assert truth.get_clim() == result.get_clim()  # one scale for truth and result
    for name, fig in sink.figures.items():
        check_figure(name, fig)


def test_rois_lie_inside_the_mask_at_soc_quantiles():
    arrays = _xanes_maps()
    rois = pick_rois(arrays["mask"], arrays["soc"], 4)
    socs = [np.nanmean(arrays["soc"][y0:y1, x0:x1]) for y0, y1, x0, x1 in rois]
    assert all(arrays["mask"][y0:y1, x0:x1].all() for y0, y1, x0, x1 in rois)
    assert socs == sorted(socs) and socs[-1] - socs[0] > 0.1


def test_a_result_without_particle_statistics_is_a_clear_error(tmp_path):
    with pytest.raises(KeyError, match="ParticleStatistics"):
        write_particle_figures(tmp_path, {"soc": np.zeros((4, 4))}, {}, {})
