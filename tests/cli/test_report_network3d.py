"""The network figure of a *stored* 3D network result (``report`` / ``show`` of that version).

The result is what ``read_results`` returns for the network version of a 3D XANES
run (arrays, tables, metadata), built here from a small model (12 x 24 x 24 voxels,
two NMC spheres on an SSE slab, one touching a carbon slab too); the end-to-end test reads
a real one from tiled.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ssb_beamline.analysis.network3d import network_model_3d
from ssb_beamline.analysis.segmentation3d import PhaseVolume
from ssb_beamline.callbacks.network3d_live import network_results
from ssb_beamline.report.network3d import write_network3d_result_figures
from ssb_beamline.report.pages import FigureSink
from ssb_beamline.report.run_figures import report_figures


@pytest.fixture(scope="module")
def stored():
    zz, yy, xx = np.mgrid[:12, :24, :24]
    phases = np.zeros(zz.shape, np.uint8)
    phases[:, :, :3] = 2  # SSE slab
    phases[:, :3, :] = 3  # carbon slab
    for cy, cx in ((7, 8), (17, 12)):
        phases[(zz - 6) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= 25] = 1
    edge = np.where(phases == 1, 8340.0 + 0.1 * xx, np.nan).astype(np.float32)
    model = network_model_3d(phases, edge, voxel_size_um=0.1)
    arrays, units, metadata, tables = network_results(model, PhaseVolume(phases, 0.1), "live")
    return SimpleNamespace(arrays=arrays, tables=tables, metadata={**metadata, "units": units},
                           version="v2", run_uid="0123456789abcdef")  # fmt: skip


def test_report_draws_the_network_figure_png_and_pdf(stored, tmp_path):
    files = report_figures(tmp_path / "png", stored, "run 01234567 (v2)")  # show: same path
    assert [f.name for f in files] == ["network3d.png"]
    assert files[0].stat().st_size > 20_000
    (pdf,) = report_figures(tmp_path / "pdf", stored, "t", fmt="pdf")
    assert pdf.suffix == ".pdf" and pdf.stat().st_size > 20_000


def test_stored_network_figure_has_units_colour_bars_legend(stored, tmp_path, check_figure):
    assert "network_edge_energy" in stored.arrays  # stored since this figure needs it
    sink = FigureSink(tmp_path, keep=True)
    assert write_network3d_result_figures(tmp_path, stored, title="t", sink=sink)
    fig = sink.figures["network3d"]
    titles = [ax.get_title() for ax in fig.axes]
    assert any("edge energy per impedance bin" in t for t in titles)
    assert any("edge energy over (e-, Li+)" in t for t in titles)  # the joint map is drawn
    check_figure("network3d", fig)


def test_a_result_that_is_not_a_network_model_is_refused(stored, tmp_path):
    other = SimpleNamespace(arrays={"phases": stored.arrays["phases"]}, tables={},
                            metadata={"kind": "tomography"}, version="v1")  # fmt: skip
    with pytest.raises(ValueError, match=r"not a complete 3D network model.*replay"):
        write_network3d_result_figures(tmp_path, other)
    assert not list(tmp_path.iterdir())  # nothing half-written
