"""Tests for particle segmentation, per-particle statistics and size statistics."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from ssb_beamline.analysis.particles import particle_table, segment_particles, size_statistics

PX = 0.1  # um per pixel


def draw_disks(
    shape: tuple[int, int], centres: list[tuple[float, float]], radii: list[float]
) -> np.ndarray:
    """Label image with disk ``i + 1`` of ``radii[i]`` px at ``centres[i]`` (later wins)."""
    yy, xx = np.indices(shape)
    lab = np.zeros(shape, dtype=np.int32)
    for i, ((cy, cx), r) in enumerate(zip(centres, radii, strict=True)):
        lab[(yy - cy) ** 2 + (xx - cx) ** 2 <= r**2] = i + 1
    return lab


def grid_scene(n_side: int, pitch: int, rng: np.random.Generator, rmin=8.0, rmax=18.0):
    centres, radii = [], []
    for i in range(n_side):
        for j in range(n_side):
            centres.append(((i + 0.5) * pitch + rng.uniform(-2, 2), (j + 0.5) * pitch))
            radii.append(rng.uniform(rmin, rmax))
    return draw_disks((n_side * pitch, n_side * pitch), centres, radii), centres, radii


def match(table: pd.DataFrame, centres, px=PX) -> np.ndarray:
    """Row index of the particle closest to each true centre."""
    c = table[["centroid_y_um", "centroid_x_um"]].to_numpy() / px
    return np.array([np.argmin(np.hypot(*(c - np.asarray(t)).T)) for t in centres])


# --------------------------------------------------------------------------- segmentation
def test_separated_particles_count_exact_radius_within_5pct():
    rng = np.random.default_rng(0)
    truth, centres, radii = grid_scene(5, 48, rng)
    image = (truth > 0) + rng.normal(0, 0.15, truth.shape)
    image = ndi.gaussian_filter(image, 1.0)
    labels = segment_particles(image, pixel_size_um=PX)
    assert labels.dtype == np.int32
    assert labels.max() == len(radii)  # exact count
    table = particle_table(labels, np.ones(labels.shape), pixel_size_um=PX)
    rows = match(table, centres)
    assert len(set(rows)) == len(radii)
    got = table["radius_um"].to_numpy()[rows]
    np.testing.assert_allclose(got, np.asarray(radii) * PX, rtol=0.05)


def test_touching_pairs_split_count_within_5pct():
    rng = np.random.default_rng(1)
    centres, radii = [], []
    for i in range(5):
        for j in range(4):
            r = rng.uniform(10, 16)
            cy, cx = 40 + 70 * i, 35 + 100 * j
            centres += [(cy, cx), (cy + rng.uniform(-3, 3), cx + 1.7 * r)]  # overlapping pair
            radii += [r, r * rng.uniform(0.8, 1.0)]
    truth = draw_disks((360, 420), centres, radii)
    assert ndi.label(truth > 0)[1] == 20  # the pairs really touch
    image = (truth > 0) + rng.normal(0, 0.1, truth.shape)
    labels = segment_particles(ndi.gaussian_filter(image, 1.0), pixel_size_um=PX)
    n = labels.max()
    assert abs(n - 40) <= 0.05 * 40, n
    table = particle_table(labels, np.ones(labels.shape), pixel_size_um=PX)
    got = table["radius_um"].to_numpy()[match(table, centres)]
    # watershed cut through the neck: equivalent radius still close to truth
    np.testing.assert_allclose(np.median(got / (np.asarray(radii) * PX)), 1.0, atol=0.05)


def test_debris_removed_and_min_area_threshold():
    lab = draw_disks((80, 80), [(20, 20), (60, 60), (20, 65)], [12, 12, 1.5])
    labels = segment_particles((lab > 0).astype(float), pixel_size_um=PX, min_radius_um=0.3)
    assert labels.max() == 2  # r = 0.15 um speck removed
    labels = segment_particles((lab > 0).astype(float), pixel_size_um=PX, min_area_um2=5.0)
    assert labels.max() == 0  # a 12 px disk is 4.5 um^2 < 5 um^2 -> removed


def test_threshold_and_mask_respected():
    lab = draw_disks((64, 64), [(20, 20), (44, 44)], [10, 10])
    image = np.where(lab == 1, 2.0, np.where(lab == 2, 1.0, 0.0))
    assert segment_particles(image, pixel_size_um=PX, threshold=1.5).max() == 1
    mask = np.zeros(image.shape, bool)
    mask[:32, :32] = True
    assert segment_particles(image, pixel_size_um=PX, mask=mask).max() == 1


def test_threshold_methods_on_projected_spheres():
    # thickness-weighted image (projected spheres): Otsu cuts inside the thick
    # particles and loses the thin ones; the triangle method keeps them all
    centres = [(30 + 60 * i, 30 + 60 * j) for i in range(4) for j in range(4)]
    radii = [4 + 1.5 * k for k in range(16)]
    yy, xx = np.indices((240, 240))
    th = np.zeros((240, 240))
    for (cy, cx), r in zip(centres, radii, strict=True):
        th = np.maximum(th, 2 * np.sqrt(np.clip(r**2 - (yy - cy) ** 2 - (xx - cx) ** 2, 0, None)))
    img = th * PX + np.random.default_rng(0).normal(0, 0.05, th.shape)
    tri = segment_particles(img, pixel_size_um=PX, threshold="triangle")
    assert tri.max() == 16
    assert segment_particles(img, pixel_size_um=PX).max() < 16  # Otsu default
    table = particle_table(tri, np.ones(tri.shape), pixel_size_um=PX)
    got = table["radius_um"].to_numpy()[match(table, centres)]
    np.testing.assert_allclose(got[-8:], np.asarray(radii[-8:]) * PX, rtol=0.08)
    with pytest.raises(ValueError, match=r"threshold='mean'.*one of \['li', 'otsu', 'triangle'\]"):
        segment_particles(img, pixel_size_um=PX, threshold="mean")


def test_no_particles_default_warns_and_returns_zeros(caplog):
    with caplog.at_level(logging.WARNING):
        labels = segment_particles(np.zeros((32, 32)), pixel_size_um=PX)
    assert labels.shape == (32, 32) and labels.max() == 0
    assert "no particles found" in caplog.text


def test_no_particles_required_raises():
    with pytest.raises(ValueError, match=r"no particles found.*lower threshold"):
        segment_particles(np.zeros((32, 32)), pixel_size_um=PX, require_particles=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image": np.ones((4, 4, 4))}, r"must be 2-D.*single slice"),
        ({"image": np.ones((0, 4))}, r"is empty"),
        ({"pixel_size_um": 0}, r"pixel_size_um=0 must be a finite positive"),
        ({"mask": np.zeros((16, 16), bool)}, r"mask selects no pixels.*mask=None"),
        ({"mask": np.ones((8, 8), bool)}, r"mask has shape \(8, 8\).*crop or resample"),
        ({"image": np.full((16, 16), np.nan)}, r"no finite pixels.*NaN"),
    ],
)
def test_segment_particles_bad_input(kwargs, message):
    args = {"image": np.ones((16, 16)), "pixel_size_um": PX, **kwargs}
    with pytest.raises(ValueError, match=message):
        segment_particles(args.pop("image"), **args)


# --------------------------------------------------------------------------- particle_table
def test_polarization_linear_gradient_matches_analytic():
    R, a, b = 30, 0.5, 0.01  # soc = a + b (x - x0): offset = b <(x-x0)^2> / a = b R^2 / (4a)
    cy, cx = 50.0, 60.0
    lab = draw_disks((100, 120), [(cy, cx)], [R])
    yy, xx = np.indices(lab.shape)
    soc = a + b * (xx - cx)
    row = particle_table(lab, soc, pixel_size_um=PX).iloc[0]
    expected_px = b * R**2 / (4 * a)  # 4.5 px
    assert abs(row.polarization_um / PX - expected_px) < 1.0
    m = lab == 1  # exact discrete value
    exact = (soc[m] * xx[m]).sum() / soc[m].sum() - xx[m].mean()
    assert row.polarization_um == pytest.approx(exact * PX, rel=1e-9)
    assert row.polarization_angle_deg == pytest.approx(0.0, abs=1e-6)
    assert row.polarization_rel == pytest.approx(row.polarization_um / row.radius_um)
    assert row.centroid_y_um == pytest.approx(cy * PX) and row.centroid_x_um == pytest.approx(
        cx * PX
    )
    # gradient along +y (increasing row) -> 90 degrees; along -x -> 180
    assert particle_table(lab, a + b * (yy - cy), pixel_size_um=PX).iloc[0][
        "polarization_angle_deg"
    ] == pytest.approx(90.0)
    assert abs(
        particle_table(lab, a - b * (xx - cx), pixel_size_um=PX).iloc[0]["polarization_angle_deg"]
    ) == pytest.approx(180.0)


def test_uniform_soc_no_polarization_and_nan_pixels_ignored():
    lab = draw_disks((60, 60), [(30, 30)], [20])
    soc = np.full(lab.shape, 0.7)
    soc[:30, :] = np.nan  # half the particle missing: still no polarisation
    row = particle_table(lab, soc, pixel_size_um=PX).iloc[0]
    assert row.n_valid == np.count_nonzero((lab == 1) & np.isfinite(soc))
    assert row.n_pixels == np.count_nonzero(lab == 1)
    assert row.soc_mean == pytest.approx(0.7) and row.soc_std == pytest.approx(0.0, abs=1e-12)
    assert row.polarization_um == pytest.approx(0.0, abs=1e-9)


def test_stats_match_per_particle_reference():
    rng = np.random.default_rng(2)
    truth, _, _ = grid_scene(4, 40, rng)
    soc = rng.uniform(0, 1, truth.shape)
    soc[rng.uniform(size=soc.shape) < 0.1] = np.nan
    edge = 8340 + 3 * soc
    table = particle_table(
        truth * 7, soc, pixel_size_um=PX, edge_energy=edge, separator_y_um=0.0
    )  # non-sequential labels 7, 14, ...
    assert table["label"].tolist() == [7 * k for k in range(1, 17)]
    for row in table.itertuples():
        v = soc[truth * 7 == row.label]
        assert row.soc_mean == pytest.approx(np.nanmean(v))
        assert row.soc_std == pytest.approx(np.nanstd(v))
        assert row.edge_energy_mean == pytest.approx(8340 + 3 * np.nanmean(v))
        assert row.depth_um == pytest.approx(row.centroid_y_um)
        assert row.area_um2 == pytest.approx(v.size * PX**2)
        assert row.size_class == ("small" if row.radius_um < 1.0 else "large")


def test_all_nan_particle_gives_nan_row_and_warning(caplog):
    lab = draw_disks((60, 60), [(15, 15), (45, 45)], [10, 10])
    soc = np.where(lab == 2, np.nan, 0.4)
    with caplog.at_level(logging.WARNING):
        table = particle_table(lab, soc, pixel_size_um=PX)
    assert "no finite SOC" in caplog.text and "[2]" in caplog.text
    bad = table.set_index("label").loc[2]
    assert bad.n_valid == 0 and np.isnan(bad.soc_mean) and np.isnan(bad.polarization_um)
    assert table.set_index("label").loc[1].soc_mean == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("labels", "soc", "message"),
    [
        (np.zeros((8, 8), int), np.ones((8, 8)), r"no particles.*segment_particles"),
        (np.ones((8, 8), int), np.ones((8, 9)), r"soc has shape \(8, 9\).*\(8, 8\)"),
        (np.ones((8, 8)), np.ones((8, 8)), r"labels has dtype float64.*integer label"),
        (-np.ones((8, 8), int), np.ones((8, 8)), r"negative values"),
    ],
)
def test_particle_table_bad_input(labels, soc, message):
    with pytest.raises(ValueError, match=message):
        particle_table(labels, soc, pixel_size_um=PX)


# --------------------------------------------------------------------------- size_statistics
def test_size_statistics_recovers_pearson_r():
    rng = np.random.default_rng(3)
    truth, _, radii = grid_scene(11, 40, rng, rmin=5, rmax=18)  # 121 particles
    level = 0.2 + 0.25 * np.asarray(radii) * PX + rng.normal(0, 0.06, len(radii))
    true_r = np.corrcoef(level, np.asarray(radii))[0, 1]
    soc = np.zeros(truth.shape)
    soc[truth > 0] = level[truth[truth > 0] - 1]
    soc += rng.normal(0, 0.05, soc.shape) * (truth > 0)
    labels = segment_particles((truth > 0).astype(float), pixel_size_um=PX)
    assert labels.max() == 121
    table = particle_table(labels, soc, pixel_size_um=PX, separator_y_um=0.0)
    stats = size_statistics(table)
    corr = stats["correlations"]
    assert stats["n_particles"] == 121
    assert corr["soc_mean_vs_radius"]["r"] == pytest.approx(true_r, abs=0.03)
    assert corr["soc_mean_vs_radius"]["p"] < 1e-6
    assert abs(corr["soc_mean_vs_depth"]["r"]) < 0.3  # no depth trend by construction
    small, large = stats["groups"]["small"], stats["groups"]["large"]
    assert small["n"] + large["n"] == 121 and small["n"] > 3 and large["n"] > 3
    assert large["mean"] > small["mean"]
    sel = table.loc[table.size_class == "small", "soc_mean"]
    assert small["median"] == pytest.approx(sel.median())
    assert small["std"] == pytest.approx(sel.std(ddof=1))


def test_size_statistics_too_few_particles_reports_unavailable():
    table = pd.DataFrame(
        {
            "radius_um": [0.5, 2.0],
            "soc_mean": [0.2, 0.4],
            "soc_std": [0.01, 0.02],
            "size_class": ["small", "large"],
        }
    )
    stats = size_statistics(table)
    c = stats["correlations"]["soc_mean_vs_radius"]
    assert c["r"] is None and c["p"] is None and "need >= 3" in c["reason"]
    assert "separator_y_um" in stats["correlations"]["soc_mean_vs_depth"]["reason"]
    assert stats["groups"]["small"]["std"] is None and stats["groups"]["small"]["n"] == 1


def test_size_statistics_constant_and_bad_input():
    table = pd.DataFrame(
        {"radius_um": [1.0, 2, 3], "soc_mean": [0.5] * 3, "soc_std": [0.1, 0.2, 0.3]}
    )
    table["size_class"] = "large"
    assert "constant" in size_statistics(table)["correlations"]["soc_mean_vs_radius"]["reason"]
    with pytest.raises(ValueError, match=r"missing column.*\['soc_std'\].*particle_table"):
        size_statistics(table.drop(columns="soc_std"))
    with pytest.raises(ValueError, match=r"must be a pandas\.DataFrame"):
        size_statistics({"radius_um": [1.0]})
