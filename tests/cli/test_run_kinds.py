"""``runs``, ``show`` and ``report`` on a small stored run of each tomography kind.

One module-scoped set of runs (tomography and 3D XANES from one TXM session,
holotomography from another, all tiny) on the session's tiled server, shared by
every check: the commands write figures, the ``runs`` table tells their status,
points and result versions, and each figure (matplotlib objects, not pixels) has
axes labels with units, a colour bar where colours encode values, and µm axes.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from ssb_beamline.cli import main
from ssb_beamline.profiles.simulated_tomo import simulated_tomo
from ssb_beamline.report.pages import FigureSink
from ssb_beamline.report.run_figures import _draw, pixel_size_of_result
from ssb_beamline.sim_devices.phantom3d import Phantom3DConfig
from ssb_beamline.storage import read_results
from ssb_beamline.storage.connect import TILED_API_KEY_ENV

pytestmark = pytest.mark.slow

PHANTOM = Phantom3DConfig(shape=(16, 32, 32), radius_range_um=(0.4, 0.8), n_particles=5, seed=3)
ENERGIES = [8300.0, 8331.0, 8337.0, 8343.0, 8349.0, 8400.0]


@pytest.fixture(scope="module")
def runs(tiled_server):
    """``{kind: uid}`` of a stored tomography, 3D XANES and holotomography run."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(TILED_API_KEY_ENV, tiled_server.api_key)
        found = {}
        common = {"phantom": PHANTOM, "tiled_uri": tiled_server.url}
        with simulated_tomo(mode="txm", detector_dir=tiled_server.layout.detector / "kinds-txm",
                            **common) as session:  # fmt: skip
            short = {"n_dark": 2, "n_flat": 2}
            (found["tomography"],) = session.run(session.tomo_scan((0.0, 180.0, 21), **short))
            (found["3d_xanes"],) = session.run(
                session.xanes_tomo(ENERGIES, (0.0, 180.0, 21), mode="step", **short)
            )
            assert all(o.stored_at for o in session.outcomes), [o.errors for o in session.outcomes]
        with simulated_tomo(mode="holo", detector_dir=tiled_server.layout.detector / "kinds-holo",
                            **common) as session:  # fmt: skip
            (found["holotomography"],) = session.run(
                session.holotomo((0.0, 180.0, 21), [0.15], n_dark=2, n_flat=2)
            )
            assert session.outcomes[-1].stored_at, session.outcomes[-1].errors
        yield tiled_server, found


SHOWN = {
    "tomography": ["tomo_slices.png"],
    "3d_xanes": ["tomo_slices.png"],
    "holotomography": ["holo_slices.png", "holo_particles.png"],
}


@pytest.mark.parametrize("kind", list(SHOWN))
def test_show_writes_the_figures_of_every_kind_of_run(runs, kind, tmp_path, monkeypatch, capsys):
    server, uids = runs
    monkeypatch.setenv(TILED_API_KEY_ENV, server.api_key)
    uid = uids[kind]
    assert main(["show", uid[:8], "--tiled", server.url, "--out", str(tmp_path)]) == 0
    written = sorted(p.name for p in (tmp_path / uid[:8]).iterdir())
    assert written == sorted(SHOWN[kind])
    assert "error" not in capsys.readouterr().out


def test_report_pdf_is_one_multipage_file(runs, tmp_path, monkeypatch):
    server, uids = runs
    monkeypatch.setenv(TILED_API_KEY_ENV, server.api_key)
    uid = uids["holotomography"]
    argv = ["report", uid[:8], "--tiled", server.url, "--out", str(tmp_path), "--format", "pdf"]
    assert main(argv) == 0
    (pdf,) = (tmp_path / uid[:8]).iterdir()
    data = pdf.read_bytes()
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert data.startswith(b"%PDF") and pages == 4  # title, slices, particles, statistics


def test_runs_against_a_running_server_lists_each_kind(runs, monkeypatch, capsys):
    server, uids = runs
    monkeypatch.setenv(TILED_API_KEY_ENV, server.api_key)
    t0 = time.perf_counter()
    assert main(["runs", "--tiled", server.url, "--limit", "0", "--json"]) == 0
    seconds = time.perf_counter() - t0
    rows = {row["uid"]: row for row in json.loads(capsys.readouterr().out)}
    print(f"runs --json against a running server: {seconds:.2f} s for {len(rows)} runs")
    plans = {"tomography": "tomo_scan", "3d_xanes": "xanes_tomo_scan",
             "holotomography": "holotomo_scan"}  # fmt: skip
    for kind, uid in uids.items():
        row = rows[uid]
        assert (row["plan"], row["status"]) == (plans[kind], "success"), row
        assert row["scan_id"] is not None and row["points_done"], row
        assert row["points_done"] == row["points_planned"], row  # e.g. 21/21, never 21/?
        assert row["results"] and all(v["complete"] for v in row["results"]), row
    assert main(["runs", "--tiled", server.url, "--limit", "2"]) == 0
    table = capsys.readouterr().out
    assert "newest 2 of" in table and uids["holotomography"][:8] in table


@pytest.mark.parametrize("kind", list(SHOWN))
def test_every_tomography_figure_has_units_colour_bars_and_um_axes(
    runs, kind, tmp_path, check_figure
):
    server, uids = runs
    result = read_results(server.client()["results"], uids[kind])
    assert pixel_size_of_result(result) is not None
    sink = FigureSink(tmp_path, keep=True)
    _draw(result, sink, "t", report=True)
    assert sink.figures
    for name, fig in sink.figures.items():
        check_figure(name, fig)
