"""Zone-plate optics: focus positions and defocus blur."""

from __future__ import annotations

import pytest

from ssb_beamline.sim_devices import defocus_blur_sigma_px, focus_positions
from ssb_beamline.sim_devices.optics import (
    defocus_blur_radius_um,
    focal_length_mm,
    numerical_aperture,
    wavelength_nm,
)


def test_numbers_at_8333_ev():
    assert wavelength_nm(8333.0) == pytest.approx(0.148787, rel=1e-5)
    f = focal_length_mm(8333.0)
    assert f == pytest.approx(244e-3 * 30 / 0.148787, rel=1e-6)
    fp = focus_positions(8333.0)
    assert fp.focal_length_mm == pytest.approx(49.198, abs=1e-3)
    assert fp.zp_z_mm == pytest.approx(f * 51 / 50, rel=1e-12)
    assert fp.det_z_mm == pytest.approx(50 * fp.zp_z_mm, rel=1e-12)
    assert fp.det_z_mm == pytest.approx(2509.09, abs=0.01)
    # Thin-lens equation.
    assert 1 / fp.zp_z_mm + 1 / fp.det_z_mm == pytest.approx(1 / f, rel=1e-12)


def test_focus_moves_with_energy():
    a, b = focus_positions(8333.0), focus_positions(8483.0)
    assert b.zp_z_mm - a.zp_z_mm == pytest.approx(0.903, abs=0.01)
    assert b.det_z_mm - a.det_z_mm == pytest.approx(45.2, abs=0.2)


def test_blur_in_focus_is_resolution_floor():
    fp = focus_positions(8400.0)
    assert defocus_blur_radius_um(8400.0, fp.zp_z_mm, fp.det_z_mm) == pytest.approx(0, abs=1e-9)
    assert defocus_blur_sigma_px(8400.0, fp.zp_z_mm, fp.det_z_mm, 0.13) < 0.2


def test_blur_matches_na_for_zone_plate_defocus():
    e = 8333.0
    fp = focus_positions(e)
    dp = 0.1
    radius = defocus_blur_radius_um(e, fp.zp_z_mm + dp, fp.det_z_mm)
    assert radius == pytest.approx(dp * 1e3 * numerical_aperture(e), rel=0.03)
    # Detector defocus is demagnified by M**2.
    dq = 50.0
    radius_q = defocus_blur_radius_um(e, fp.zp_z_mm, fp.det_z_mm + dq)
    assert radius_q == pytest.approx(dq * 1e3 * numerical_aperture(e) / 50**2, rel=0.05)


def test_untracked_scan_blurs_tracked_stays_sharp():
    start = focus_positions(8333.0)
    end = focus_positions(8483.0)
    untracked = defocus_blur_sigma_px(8483.0, start.zp_z_mm, start.det_z_mm, 0.13)
    tracked = defocus_blur_sigma_px(8483.0, end.zp_z_mm, end.det_z_mm, 0.13)
    assert untracked > 5
    assert tracked < 0.3


def test_invalid_inputs():
    with pytest.raises(ValueError):
        wavelength_nm(0)
    with pytest.raises(ValueError):
        focus_positions(8333.0, magnification=0)
    # Object inside the focal length: full-aperture blur.
    assert defocus_blur_radius_um(8333.0, 10.0, 2500.0) == pytest.approx(122.0)
