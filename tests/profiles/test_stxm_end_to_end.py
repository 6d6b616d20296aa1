"""End to end (issue 17): simulated STXM + RunEngine + tiled + live valence-ratio maps.

One ``stxm_ratio_scan`` at the default dose (1 ms dwell, 2e7 counts/s) of a 48 x 48
raster at 0.2 um (fly, snake) centred on the stage, over the `DEFAULT_STXM_PHANTOM`
section (128 x 128 px of 0.1 um, 7 particles) mounted off centre, and one quick TXM
Ni K-edge XANES scan of the same phantom (same seed: same particles) on the same
tiled server. Measured numbers are printed (``pytest -s``).
"""

from __future__ import annotations

import numpy as np
import pytest
from figure_checks import check_figure

from ssb_beamline.analysis.stxm_register import (
    particle_correlation,
    register_to_txm,
    stxm_on_txm_grid,
)
from ssb_beamline.profiles.simulated import simulated_beamline
from ssb_beamline.profiles.stxm import DEFAULT_STXM_PHANTOM, replay_stxm_runs, simulated_stxm
from ssb_beamline.sim_devices.stxm import STXMSampleConfig
from ssb_beamline.storage import read_results

pytestmark = pytest.mark.slow

#: The sample's centre on the stage, um (not a whole number of pixels of either map):
#: the registration must find it.
OFFSET_UM = (0.73, -0.41)


@pytest.fixture(scope="module")
def server(tiled_server):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SSB_TILED_API_KEY", tiled_server.api_key)
        yield tiled_server


@pytest.fixture(scope="module")
def stxm_run(server):
    session = simulated_stxm(tiled_uri=server.url, sample=STXMSampleConfig(offset_um=OFFSET_UM))
    (uid,) = session.run(session.ratio_scan(nx=48, ny=48, step_um=0.2, lead_time=0.02))
    outcome = session.outcomes[-1]
    assert outcome.ok, outcome.errors
    yield session, uid, outcome
    session.close()


@pytest.fixture(scope="module")
def truth(stxm_run):
    session, _, outcome = stxm_run
    start = session.store.raw[outcome.run_uid].metadata["start"]
    x, y = np.array(start["raster"]["x_um"]), np.array(start["raster"]["y_um"])
    s = session.stxm
    return {"ratio": s.truth_ratio_map(853.0, 855.5, x, y),
            "fraction": s.truth_fraction_map(x, y), "labels": s.truth_labels(x, y)}  # fmt: skip


def test_ratio_map_against_truth(stxm_run, truth):
    ratio = stxm_run[2].maps["ratio"]
    inside = np.isfinite(truth["ratio"])
    rel = np.abs(ratio - truth["ratio"]) / truth["ratio"]
    measured = np.isfinite(rel) & inside
    median = float(np.median(rel[measured]))
    lost = 1 - measured.sum() / inside.sum()
    print(f"\nratio map: median relative error {median:.4f} over {measured.sum()} particle "
          f"pixels ({lost:.3f} of them unmeasured/masked)")  # fmt: skip
    assert median < 0.05
    assert measured.sum() > 0.9 * inside.sum()


def test_ni3_fraction_against_truth(stxm_run, truth):
    fraction = stxm_run[2].maps["ni3_fraction"]
    err = np.abs(fraction - truth["fraction"])
    ok = np.isfinite(err)
    lab = truth["labels"]
    per_particle = [abs(np.nanmean(fraction[(lab == k) & ok]) - np.nanmean(truth["fraction"][
        (lab == k) & ok])) for k in np.unique(lab[ok & (lab > 0)])]  # fmt: skip
    print(
        f"\nNi3+ fraction: median pixel error {np.median(err[ok]):.4f}, particle means "
        f"max error {max(per_particle):.4f} ({len(per_particle)} particles)"
    )
    assert np.median(err[ok]) < 0.05
    assert max(per_particle) < 0.05


def test_fly_positions_recovered(stxm_run):
    session, _, _ = stxm_run
    # the live analysis' recovered position of every fly pixel, against the truth
    recovered = session.analyses[-1].positions
    lines = [entry for entry in session.stxm.detector.pixel_log if entry[0].size > 32]
    err = max(float(np.max(np.abs(x - true[1]))) for (_, x), true in zip(recovered, lines,
                                                                          strict=True))  # fmt: skip
    print(f"\nfly positions: max error {err:.2e} um = {err / 0.2:.2e} px over {len(lines)} lines")
    assert err / 0.2 < 0.5


def test_stored_and_replayed_maps_equal_live(stxm_run):
    session, uid, outcome = stxm_run
    stored = read_results(session.store.results, uid)
    for key in ("od", "ratio", "ni3_fraction", "labels"):
        np.testing.assert_array_equal(stored.arrays[key], outcome.maps[key])
    assert stored.coords["energy"].tolist() == [853.0, 855.5]
    assert len(stored.tables["particles"]) == len(outcome.tables["particles"]) > 3
    (replayed,) = replay_stxm_runs(session.store, [uid])
    assert replayed.ok, replayed.errors
    again = read_results(session.store.results, uid)
    assert again.version != stored.version and again.metadata["source"] == "replay"
    for key in ("od", "ratio", "ni3_fraction", "labels", "mask"):
        np.testing.assert_array_equal(again.arrays[key], outcome.maps[key])


def test_cross_registration_with_txm(server, stxm_run):
    session, _, outcome = stxm_run
    txm = simulated_beamline(tiled_uri=server.url, phantom=DEFAULT_STXM_PHANTOM,
                             detector_dir=server.layout.detector / "stxm-e2e-txm")  # fmt: skip
    try:
        (txm_uid,) = txm.run(txm.xanes("quick", n_dark=2))
        txm_result = read_results(txm.store.results, txm_uid)
    finally:
        txm.close()
    soc = txm_result.arrays["particle_soc"]
    labels = txm_result.arrays["particle_labels"]
    txm_px = DEFAULT_STXM_PHANTOM.pixel_size_um
    reg = register_to_txm(outcome.maps["ratio"], 0.2, soc, txm_px)
    start = session.store.raw[outcome.run_uid].metadata["start"]
    truth = session.stxm.sample.grid_coordinates(start["raster"]["x_um"][0],
                                                 start["raster"]["y_um"][0])  # fmt: skip
    error_px = float(np.hypot(reg.offset_px[0] - truth[0], reg.offset_px[1] - truth[1]))
    on_txm = stxm_on_txm_grid(outcome.maps["ratio"], reg, soc.shape)
    table, r = particle_correlation(on_txm, soc, labels)
    print(f"\nregistration: offset {reg.offset_px} px, truth {tuple(truth)}, error "
          f"{error_px:.3f} TXM px; per-particle r(ratio, TXM SOC) = {r:.3f} over "
          f"{len(table)} particles")  # fmt: skip
    assert error_px < 1.0
    assert r > 0.9


def test_show_and_report_draw_the_stored_maps(server, stxm_run, tmp_path):
    from ssb_beamline.cli import main

    uid = stxm_run[1]
    for command in ("show", "report"):
        out = tmp_path / command
        assert main([command, uid[:8], "--tiled", server.url, "--out", str(out)]) == 0
        for name in ("stxm_maps.png", "stxm_particles.png"):
            assert (out / uid[:8] / name).stat().st_size > 10_000


def test_every_stxm_figure_has_units_colour_bars_and_um_axes(server, stxm_run, tmp_path):
    from ssb_beamline.report.pages import FigureSink
    from ssb_beamline.report.stxm import write_stxm_figures

    result = read_results(server.client()["results"], stxm_run[1])
    sink = FigureSink(tmp_path, keep=True)
    write_stxm_figures(tmp_path, result.arrays, result.tables, result.metadata, sink=sink)
    assert set(sink.figures) == {"stxm_maps", "stxm_particles"}
    for name, fig in sink.figures.items():
        check_figure(name, fig)


def test_demo_stxm(server, tmp_path, capsys):
    from ssb_beamline.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--stxm", "--size", "16", "--tiled", server.url, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ratio map: median relative error" in printed
    assert len(list(out.glob("*/stxm_maps.png"))) == 1
