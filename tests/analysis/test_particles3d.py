"""3-D particle statistics: segmentation, particle table, diffusion maps, Figure 5 numbers."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi
from scipy import stats
from scipy.spatial import cKDTree

from ssb_beamline.analysis.diffusion import diffusion_distance_maps
from ssb_beamline.analysis.particles import particle_table, size_statistics
from ssb_beamline.analysis.particles3d import holotomo_statistics, segment_particles_3d
from ssb_beamline.analysis.phases import Phase

VOX = 0.1  # um
R_PAPER = 0.6651


def place_spheres(shape, n, rng, rmin=4.0, rmax=16.0, gap=2.0, avoid=(9.0, 11.0)):
    """Non-overlapping random spheres (radii in voxels, none within ``avoid``)."""
    centres, radii = [], []
    while len(radii) < n:
        r = rng.uniform(rmin, rmax)
        if avoid[0] <= r <= avoid[1]:
            continue
        c = np.array([rng.uniform(r + 1, s - r - 2) for s in shape])
        if all(
            np.linalg.norm(c - c2) > r + r2 + gap for c2, r2 in zip(centres, radii, strict=True)
        ):
            centres.append(c)
            radii.append(r)
    return np.array(centres), np.array(radii)


def draw(shape, centres, radii):
    lab = np.zeros(shape, np.int32)
    idx = np.indices(shape)
    for i, (c, r) in enumerate(zip(centres, radii, strict=True)):
        lab[((idx - c[:, None, None, None]) ** 2).sum(0) <= r * r] = i + 1
    return lab


def with_pearson(x, r, rng):
    """Values with Pearson correlation exactly ``r`` to ``x`` (mean 1.2, std 0.1)."""
    xs = (x - x.mean()) / x.std()
    e = rng.normal(size=x.size)
    e -= e.mean() + (e @ xs) / (xs @ xs) * xs
    e /= e.std()
    return 1.2 + 0.1 * (r * xs + np.sqrt(1 - r * r) * e)


@pytest.fixture(scope="module")
def scene():
    """40 spheres in 96 x 112 x 128 voxels; density with Pearson 0.6651 vs the radius and a
    within-particle std proportional to the radius (both exact per particle)."""
    rng = np.random.default_rng(5)
    shape = (96, 112, 128)
    centres, radii = place_spheres(shape, 40, rng)
    lab = draw(shape, centres, radii)
    rho = with_pearson(radii * VOX, R_PAPER, rng)
    s = 0.01 * radii * VOX
    noise = rng.normal(size=shape)
    idx = np.arange(1, radii.size + 1)
    m = np.asarray(ndi.mean(noise, lab, idx))
    sd = np.asarray(ndi.standard_deviation(noise, lab, idx))
    k = np.maximum(lab - 1, 0)
    dens = np.where(lab > 0, rho[k] + s[k] * (noise - m[k]) / sd[k], 0.0)
    return {"lab": lab, "dens": dens, "centres": centres, "radii": radii, "rho": rho, "s": s}


def test_particle_table_3d_values(scene):
    t = particle_table(scene["lab"], scene["dens"], pixel_size_um=VOX)
    assert {"volume_um3", "centroid_z_um", "soc_centroid_z_um"} <= set(t.columns)
    assert "area_um2" not in t.columns
    np.testing.assert_allclose(t.radius_um, scene["radii"] * VOX, rtol=0.03)
    np.testing.assert_allclose(t.soc_mean, scene["rho"], rtol=1e-12)
    np.testing.assert_allclose(t.soc_std, scene["s"], rtol=1e-9)
    np.testing.assert_allclose(
        t[["centroid_z_um", "centroid_y_um", "centroid_x_um"]], scene["centres"] * VOX, atol=0.02
    )
    counts = np.bincount(scene["lab"].ravel())[1:]
    np.testing.assert_allclose(t.volume_um3, counts * VOX**3)


def test_holotomo_statistics_recovers_figure5_numbers(scene):
    t = particle_table(scene["lab"], scene["dens"], pixel_size_um=VOX)
    res = holotomo_statistics(t, "soc_mean", voxel_size_um=VOX)
    c = res["correlations"]
    # exact Pearson 0.6651 against the nominal radii; the voxelised radii differ by < 3 %
    assert c["density_vs_radius"]["r"] == pytest.approx(R_PAPER, abs=0.01)
    assert c["density_vs_radius"]["p"] < 1e-3 and c["density_vs_radius"]["n"] == 40
    assert c["std_vs_radius"]["r"] > 0.99
    depth = t.centroid_z_um.to_numpy()
    ref = stats.pearsonr(t.soc_mean, depth)
    assert c["density_vs_depth"]["r"] == pytest.approx(ref[0]) and c["density_vs_depth"]["p"] > 0.05
    np.testing.assert_allclose(res["depth_um"], depth)
    small = scene["radii"] * VOX < 1.0
    g = res["groups"]
    assert (
        g["small"]["density"]["n"] == small.sum() and g["large"]["density"]["n"] == 40 - small.sum()
    )
    assert g["small"]["density"]["mean"] == pytest.approx(scene["rho"][small].mean())
    assert g["large"]["density"]["std"] == pytest.approx(scene["rho"][~small].std(ddof=1))
    assert g["large"]["within_std"]["mean"] > g["small"]["within_std"]["mean"]
    assert res["small_vs_large"]["t"] < 0 and res["small_vs_large"]["p"] < 0.01
    # size_statistics works on the same 3-D table
    s = size_statistics(t)
    assert s["correlations"]["soc_mean_vs_radius"]["r"] == pytest.approx(
        c["density_vs_radius"]["r"]
    )


def test_holotomo_depth_axis_and_separator_position():
    t = pd.DataFrame(
        {
            "radius_um": [0.5, 0.7, 1.2, 1.5, 2.0],
            "centroid_z_um": [1.0, 2.0, 3.0, 4.0, 5.0],
            "centroid_y_um": 0.0,
            "centroid_x_um": [9.0, 8.0, 7.0, 6.0, 5.0],
            "density": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    res = holotomo_statistics(
        t, "density", separator_axis=2, separator_index=100, voxel_size_um=0.1, std_column="x"
    )
    np.testing.assert_allclose(res["depth_um"], [1.0, 2.0, 3.0, 4.0, 5.0])
    assert res["correlations"]["density_vs_depth"]["r"] == pytest.approx(1.0)
    assert res["correlations"]["std_vs_radius"]["reason"].startswith("no within-particle std")
    assert "within_std" not in res["groups"]["small"]


def test_holotomo_bad_input(caplog):
    t = pd.DataFrame({"radius_um": [1.0], "centroid_y_um": [0.0], "centroid_x_um": [0.0]})
    with pytest.raises(ValueError, match=r"missing column\(s\) \['soc_mean'\]"):
        holotomo_statistics(t, "soc_mean", voxel_size_um=0.1)
    with pytest.raises(ValueError, match=r"separator_axis=2 is not an axis of a 2-D table"):
        holotomo_statistics(t, "radius_um", separator_axis=2, voxel_size_um=0.1)
    with pytest.raises(ValueError, match=r"must be a pandas\.DataFrame"):
        holotomo_statistics({"radius_um": [1.0]}, "radius_um", voxel_size_um=0.1)
    with pytest.raises(ValueError, match=r"pixel_size_um=0 must be"):
        holotomo_statistics(t, "radius_um", voxel_size_um=0)
    with caplog.at_level(logging.WARNING):
        res = holotomo_statistics(t, "radius_um", voxel_size_um=0.8)
    assert "under 2 voxels" in caplog.text
    assert res["correlations"]["density_vs_radius"]["r"] is None
    assert res["small_vs_large"]["reason"] == "need >= 2 particles in each group"


# --------------------------------------------------------------------------- segmentation
def test_segment_particles_3d_counts_and_radii(scene):
    rng = np.random.default_rng(2)
    img = ndi.gaussian_filter((scene["lab"] > 0) + rng.normal(0, 0.2, scene["lab"].shape), 1.0)
    lab = segment_particles_3d(img, voxel_size_um=VOX)
    assert lab.dtype == np.int32 and lab.max() == scene["radii"].size
    t = particle_table(lab, img, pixel_size_um=VOX)
    c = t[["centroid_z_um", "centroid_y_um", "centroid_x_um"]].to_numpy() / VOX
    rows = cKDTree(c).query(scene["centres"])[1]
    assert len(set(rows)) == scene["radii"].size
    np.testing.assert_allclose(t.radius_um.to_numpy()[rows], scene["radii"] * VOX, rtol=0.05)


def test_segment_particles_3d_splits_touching_and_drops_debris():
    shape = (40, 40, 64)
    lab = draw(shape, np.array([[20, 20, 20], [20, 20, 41], [5, 5, 5]]), np.array([10, 10, 1.5]))
    out = segment_particles_3d((lab > 0).astype(float), voxel_size_um=VOX, min_radius_um=0.5)
    assert out.max() == 2  # the two touching balls split, the 1.5-voxel debris removed
    sizes = np.bincount(out.ravel())[1:]
    assert abs(sizes[0] - sizes[1]) < 0.05 * sizes.mean()
    kept = segment_particles_3d(
        (lab > 0).astype(float), voxel_size_um=VOX, min_radius_um=0.5, min_volume_um3=0.0
    )
    assert kept.max() == 3


def test_segment_particles_3d_bad_input():
    with pytest.raises(ValueError, match=r"must be 3-D.*use segment_particles"):
        segment_particles_3d(np.ones((8, 8)), voxel_size_um=VOX)
    with pytest.raises(ValueError, match=r"no particles found.*min_volume_um3"):
        segment_particles_3d(np.zeros((8, 8, 8)), voxel_size_um=VOX, require_particles=True)


# --------------------------------------------------------------------------- table / diffusion
def test_polarization_3d_linear_gradient_along_z():
    r, a, b = 14, 0.5, 0.01  # soc = a + b (z - z0): offset b <(z-z0)^2> / a = b R^2 / (5 a)
    lab = draw((36, 36, 36), np.array([[18.0, 18.0, 18.0]]), np.array([r]))
    zz = np.indices(lab.shape)[0]
    t = particle_table(lab, a + b * (zz - 18.0), pixel_size_um=1.0).iloc[0]
    assert t.polarization_um == pytest.approx(b * r * r / (5 * a), rel=0.03)
    assert t.soc_centroid_z_um - t.centroid_z_um == pytest.approx(t.polarization_um)
    assert t.radius_um == pytest.approx(r, rel=0.01)


def test_diffusion_distances_3d_match_brute_force():
    shape = (40, 40, 40)
    lab = draw(shape, np.array([[20.0, 20.0, 20.0]]), np.array([14.0]))
    zz = np.indices(shape)[0]
    shell = ndi.binary_dilation(lab > 0) & (lab == 0)
    ph = np.where(lab > 0, Phase.NMC, Phase.VOID).astype(np.uint8)
    ph[shell & (zz < 12)] = Phase.SSE
    ph[shell & (zz > 28)] = Phase.CARBON
    m = diffusion_distance_maps(ph, pixel_size_um=VOX)
    nmc = np.argwhere(lab > 0)
    for contact, dist in ((m.li_contact, m.li_distance_um), (m.e_contact, m.e_distance_um)):
        ref = cKDTree(np.argwhere(contact)).query(nmc)[0] * VOX
        np.testing.assert_allclose(dist[tuple(nmc.T)], ref, atol=1e-5)
    assert np.nanmax(m.combined) == pytest.approx(1.0) and np.nanmin(m.combined) == 0.0
