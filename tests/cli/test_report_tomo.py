"""``ssb-beamline report`` on tomography results: a stored holotomography run, 3D XANES arrays."""

from __future__ import annotations

import numpy as np
import pytest

from ssb_beamline.cli import main
from ssb_beamline.profiles.simulated_tomo import simulated_tomo
from ssb_beamline.report.tomo import is_tomography_result, write_tomo_figures
from ssb_beamline.sim_devices.phantom3d import Phantom3DConfig
from ssb_beamline.storage.connect import TILED_API_KEY_ENV

HOLO_FIGURES = ("holo_slices", "holo_particles", "holo_statistics")


@pytest.fixture(scope="module")
def holo_run(tiled_server):
    """A small two-distance (CTF) fly holotomography run, analysed live and stored."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(TILED_API_KEY_ENV, tiled_server.api_key)
        config = Phantom3DConfig(shape=(24, 48, 48), radius_range_um=(0.4, 0.9), n_particles=8,
                                 seed=2)  # fmt: skip
        folder = tiled_server.layout.detector / "report-tomo"
        session = simulated_tomo(mode="holo", phantom=config, tiled_uri=tiled_server.url,
                                 detector_dir=folder)  # fmt: skip
        try:
            (uid,) = session.run(session.holotomo((0.0, 180.0, 31), [0.15, 0.3]))
            yield tiled_server, uid, session.outcomes[-1]
        finally:
            session.close()


@pytest.mark.slow
def test_report_of_a_stored_holotomography_run(holo_run, tmp_path, monkeypatch, capsys):
    server, uid, outcome = holo_run
    assert outcome.stored_at, outcome.errors
    assert outcome.metadata["phase_retrieval"] == "ctf"
    monkeypatch.setenv(TILED_API_KEY_ENV, server.api_key)
    argv = ["report", uid[:8], "--tiled", server.url, "--out", str(tmp_path)]
    assert main(argv) == 0
    folder = tmp_path / uid[:8]
    for name in HOLO_FIGURES:
        path = folder / f"{name}.png"
        assert path.stat().st_size > 5_000, name
    assert "holo_statistics.png" in capsys.readouterr().out.replace("\n", "")


def _xanes_like(n: int = 4, shape=(8, 24, 24)):
    rng = np.random.default_rng(0)
    zz, yy, xx = np.indices(shape)
    ball = (zz - 4) ** 2 + (yy - 12) ** 2 + (xx - 12) ** 2 < 25
    energies = np.linspace(8300, 8450, n)
    stack = np.stack([ball * (0.03 + 0.07 * (e > 8340)) + rng.normal(0, 0.002, shape)
                      for e in energies]).astype(np.float32)  # fmt: skip
    arrays = {
        "attenuation": stack,
        "energies": energies,
        "edge_energy": np.where(ball, 8342.0, np.nan),
        "soc": np.where(ball, 0.4, np.nan),
        "mask": ball,
    }
    return arrays, {"plan_name": "xanes_tomo_scan", "pixel_size_um": 0.1}


@pytest.mark.parametrize("fmt", ["png", "pdf"])
def test_orthogonal_slices_of_a_3d_xanes_result(tmp_path, fmt):
    arrays, metadata = _xanes_like()
    assert is_tomography_result(arrays, metadata)
    (path,) = write_tomo_figures(tmp_path, arrays, {}, metadata, title="t", fmt=fmt)
    assert path.name == f"tomo_slices.{fmt}"
    assert path.stat().st_size > 5_000


def test_a_result_without_a_volume_is_a_clear_error(tmp_path):
    assert not is_tomography_result({"soc": np.zeros((4, 4))}, {"plan_name": "xanes_scan"})
    with pytest.raises(KeyError, match="no reconstructed volume"):
        write_tomo_figures(tmp_path, {"soc": np.zeros((4, 4))}, {}, {})
