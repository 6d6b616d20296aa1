"""Parallel-beam projections and the phantom projector."""

from __future__ import annotations

import numpy as np
import pytest

from ssb_beamline.analysis.phases import Phase
from ssb_beamline.sim_devices.fresnel import holo_intensity
from ssb_beamline.sim_devices.phantom3d import Phantom3DConfig, make_phantom3d
from ssb_beamline.sim_devices.projection import (
    PhantomProjector,
    project,
    project_many,
)
from ssb_beamline.sim_devices.refraction import (
    phase_attenuation_per_um,
    refractive_index,
    wavelength_m,
)


def soft_sphere(shape, centre, radius):
    """Sphere with partial-volume edges (occupancy ``clip(R - d + 0.5, 0, 1)``)."""
    zz, yy, xx = np.indices(shape, dtype=np.float64)
    d = np.sqrt((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2)
    return np.clip(radius - d + 0.5, 0.0, 1.0).astype(np.float32)


def detector_column(y, x, angle_deg, ny, nx, offset=0.0):
    """Documented geometry: u = cx + (x - cx) cos(t) - (y - cy) sin(t)."""
    t = np.deg2rad(angle_deg)
    cy, cx = (ny - 1) / 2, (nx - 1) / 2 + offset
    return cx + (x - cx) * np.cos(t) - (y - cy) * np.sin(t)


@pytest.mark.parametrize("angle", [0.0, 30.0, 77.0, 145.0])
def test_sphere_chords_match_analytic(angle):
    shape, r, c = (48, 96, 96), 18.0, (24.0, 40.3, 55.7)
    vox = 0.1
    p = project(soft_sphere(shape, c, r), angle, voxel_size_um=vox)
    assert p.shape == (48, 96) and p.dtype == np.float32
    uc = detector_column(c[1], c[2], angle, shape[1], shape[2])
    zz, uu = np.indices(p.shape)
    d = np.hypot(zz - c[0], uu - uc)
    chord_um = 2 * np.sqrt(np.clip(r**2 - d**2, 0, None)) * vox
    core = d < 0.9 * r
    rel = np.abs(p[core] - chord_um[core]) / chord_um[core]
    assert rel.max() < 0.04 and np.median(rel) < 0.003
    # Away from the (partial-volume) rim the error stays below 0.6 voxel.
    assert np.abs(p - chord_um)[d < r - 1.5].max() < 0.6 * vox
    assert p[d > r + 1.5].max() < 0.1 * vox
    # Line integrals conserve the volume integral (sphere inside the field).
    assert p.sum() == pytest.approx(soft_sphere(shape, c, r).sum() * vox, rel=2e-3)


def test_angle_zero_is_sum_along_beam_and_project_many_stacks():
    rng = np.random.default_rng(0)
    v = rng.random((5, 20, 24)).astype(np.float32)
    np.testing.assert_allclose(project(v, 0.0, voxel_size_um=0.5), v.sum(axis=1) * 0.5, rtol=1e-5)
    angles = [0.0, 12.5, 90.0, 200.0]
    many = project_many(v, angles, voxel_size_um=0.5, center_offset_px=1.5)
    assert many.shape == (4, 5, 24)
    for a, img in zip(angles, many, strict=True):
        single = project(v, a, voxel_size_um=0.5, center_offset_px=1.5)
        np.testing.assert_allclose(img, single, rtol=1e-6)
    # 90 degrees: the beam runs along the volume's x axis.
    sq = np.zeros((1, 21, 21), np.float32)
    sq[0, 3:8, 10] = 1.0  # a bar along y
    p90 = project(sq, 90.0, voxel_size_um=1.0)[0]
    expected_cols = detector_column(np.arange(3, 8), 10, 90.0, 21, 21)
    np.testing.assert_allclose(np.sort(np.nonzero(p90 > 0.5)[0]), np.sort(expected_cols), atol=1e-6)


@pytest.mark.parametrize("offset", [0.0, 4.0, -6.5])
def test_rotation_centre_offset(offset):
    shape = (8, 64, 64)
    cy, cx = (shape[1] - 1) / 2, (shape[2] - 1) / 2 + offset
    on_axis = soft_sphere(shape, (4, cy, cx), 3.0)
    off_axis = soft_sphere(shape, (4, cy + 9.0, cx - 7.0), 3.0)
    angles = np.arange(0.0, 360.0, 22.5)
    cols = np.arange(shape[2])
    for vol, (y0, x0) in ((on_axis, (cy, cx)), (off_axis, (cy + 9.0, cx - 7.0))):
        sino = project_many(vol, angles, voxel_size_um=1.0, center_offset_px=offset)[:, 4]
        centroid = (sino * cols).sum(axis=1) / sino.sum(axis=1)
        expected = detector_column(y0, x0, angles, shape[1], shape[2], offset)
        np.testing.assert_allclose(centroid, expected, atol=0.05)
    # 180 degrees mirrors the sinogram about the rotation axis.
    p0 = project(off_axis, 0.0, voxel_size_um=1.0, center_offset_px=offset)[4]
    p180 = project(off_axis, 180.0, voxel_size_um=1.0, center_offset_px=offset)[4]
    mirrored = np.interp(2 * cx - cols, cols, p0, left=0.0, right=0.0)
    np.testing.assert_allclose(p180, mirrored, atol=0.02 * p0.max())


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: project(np.ones((4, 4)), 0.0, voxel_size_um=1.0), "3-D"),
        (lambda: project(np.ones((2, 4, 4)), 0.0, voxel_size_um=0.0), "voxel_size_um"),
        (lambda: project(np.ones((2, 4, 4)), np.nan, voxel_size_um=1.0), "angle_deg"),
        (lambda: project_many(np.ones((2, 4, 4)), [[0.0]], voxel_size_um=1.0), "angles_deg"),
        (lambda: project(np.array([["a"]] * 2), 0.0, voxel_size_um=1.0), "3-D|dtype"),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------- #
# PhantomProjector
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def phantom():
    cfg = Phantom3DConfig(shape=(24, 64, 64), n_particles=10, radius_range_um=(0.4, 1.0), seed=2)
    return make_phantom3d(cfg)


def test_projector_matches_refractive_index_projections(phantom):
    proj = PhantomProjector(phantom, center_offset_px=2.0)
    assert proj.detector_shape == (24, 64)
    assert proj.pixel_size_um == pytest.approx(0.1)
    for angle, energy in ((0.0, 8300.0), (41.0, 8350.0), (41.0, 17000.0)):
        delta, beta = proj.projections(angle, energy)
        d_vol, b_vol = refractive_index(phantom, energy)
        kw = {"voxel_size_um": 0.1, "center_offset_px": 2.0}
        np.testing.assert_allclose(delta, project(d_vol, angle, **kw), rtol=1e-4, atol=1e-12)
        np.testing.assert_allclose(beta, project(b_vol, angle, **kw), rtol=1e-4, atol=1e-12)


def test_absorption_intensity_is_beer_lambert(phantom):
    proj = PhantomProjector(phantom)
    energy = 8400.0
    img = proj.intensity(0.0, energy)
    assert img.dtype == np.float32 and img.shape == proj.detector_shape
    # At angle 0 the path per phase is the voxel count along y.
    ph, vox = phantom.phases, phantom.voxel_size_um
    a, b, mu_sse, mu_c = phase_attenuation_per_um(energy, 2.2)
    soc = np.nan_to_num(phantom.soc)
    mu_t = vox * (
        ((ph == Phase.NMC) * (a + b * soc)).sum(1)
        + mu_sse * (ph == Phase.SSE).sum(1)
        + mu_c * (ph == Phase.CARBON).sum(1)
    )
    np.testing.assert_allclose(img, np.exp(-mu_t), rtol=1e-4)
    # Ni K-edge contrast: NMC-rich columns darken across the edge.
    nmc_path = (ph == Phase.NMC).sum(1)
    rich = nmc_path > np.percentile(nmc_path, 90)
    ratio = proj.intensity(0.0, 8400.0)[rich] / proj.intensity(0.0, 8300.0)[rich]
    assert np.all(ratio < 0.9)


def test_flat_field_is_one_and_holo_matches_fresnel():
    empty = make_phantom3d(
        Phantom3DConfig(shape=(16, 32, 32), n_particles=0, sse_fraction=0.0, carbon_fraction=0.0)
    )
    flat = PhantomProjector(empty)
    assert np.all(flat.intensity(10.0, 8350.0) == 1.0)
    np.testing.assert_allclose(flat.intensity(10.0, 17000.0, 1e-3), 1.0, atol=1e-5)


def test_holo_intensity_and_cache(phantom):
    proj = PhantomProjector(phantom, cache_size=2)
    delta, beta = proj.projections(15.0, 17000.0)
    holo = proj.intensity(15.0, 17000.0, propagation_distance_m=2e-3)
    np.testing.assert_allclose(holo, holo_intensity(delta, beta, 17000.0, 2e-3, 1e-7), rtol=1e-6)
    absorb = proj.intensity(15.0, 17000.0)
    k_um = 2 * np.pi / (wavelength_m(17000.0) * 1e6)
    np.testing.assert_allclose(absorb, np.exp(-2 * k_um * beta), rtol=1e-5)
    assert np.std(holo) > 2 * np.std(absorb)  # phase contrast dominates at 17 keV
    # An energy scan at one angle reuses one cached basis projection.
    for energy in (8330.0, 8340.0, 8350.0):
        proj.intensity(15.0, energy)
    assert list(proj._cache) == [15.0]
    first = proj._basis(15.0)
    proj.intensity(30.0, 8350.0)
    proj.intensity(45.0, 8350.0)  # evicts 15 deg (LRU of 2)
    assert list(proj._cache) == [30.0, 45.0]
    assert proj._basis(15.0) is not first
    with pytest.raises(ValueError, match="distance_m"):
        proj.intensity(15.0, 17000.0, propagation_distance_m=-1.0)
    with pytest.raises(ValueError, match="energy_ev"):
        proj.intensity(15.0, 0.0)
