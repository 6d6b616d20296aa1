"""Tomography figures of 3D XANES arrays (stored runs of each kind: ``test_run_kinds.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from ssb_beamline.report.tomo import is_tomography_result, write_tomo_figures


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
