"""Tests for the conductive-network diffusion-distance model and impedance binning."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ssb_beamline.analysis.diffusion import (
    DiffusionMaps,
    diffusion_distance_maps,
    distance_map_2d,
    impedance_bins,
)
from ssb_beamline.analysis.phases import Phase

PX = 0.05


def disk_scene(shape=(120, 120), centre=(60, 60), r=40) -> tuple[np.ndarray, np.ndarray]:
    """Phase map with one NMC disk in VOID; returns (phases, yy, xx angle map)."""
    yy, xx = np.indices(shape)
    ph = np.zeros(shape, dtype=np.uint8)
    d = np.hypot(yy - centre[0], xx - centre[1])
    ph[d <= r] = Phase.NMC
    ang = np.degrees(np.arctan2(yy - centre[0], xx - centre[1]))  # 0 = +x, 90 = +y (down)
    return ph, np.stack([d, ang])


def brute_force(ph: np.ndarray, contact: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Euclidean distance (um) of each ``part`` pixel to the nearest ``contact`` pixel."""
    p = np.argwhere(part)[:, None, :]
    c = np.argwhere(contact)[None, :, :]
    return np.sqrt(((p - c) ** 2).sum(-1)).min(1) * PX


def test_strip_distances_exact():
    ph = np.full((10, 30), Phase.NMC, dtype=np.uint8)
    ph[:, 0], ph[:, -1] = Phase.SSE, Phase.CARBON
    m = diffusion_distance_maps(ph, pixel_size_um=PX)
    assert isinstance(m, DiffusionMaps) and m.unavailable == {}
    x = np.arange(1, 29)
    np.testing.assert_allclose(m.li_distance_um[5, 1:-1], (x - 1) * PX, atol=1e-6)
    np.testing.assert_allclose(m.e_distance_um[5, 1:-1], (28 - x) * PX, atol=1e-6)
    np.testing.assert_allclose(m.li_norm[5, 1:-1], (x - 1) / 27, atol=1e-6)
    assert np.isnan(m.li_distance_um[:, 0]).all()  # not NMC
    assert np.nanmax(m.li_norm) == pytest.approx(1.0)
    np.testing.assert_array_equal(m.li_contact[:, 1], True)
    assert m.li_contact.sum() == 10


def test_disk_contacts_on_known_sides_match_brute_force():
    ph, (d, ang) = disk_scene()
    shell = (d > 40) & (d <= 43)
    ph[shell & (ang > 100) & (ang < 170)] = Phase.SSE  # lower-left
    ph[shell & (ang > -60) & (ang < -10)] = Phase.CARBON  # upper-right
    m = diffusion_distance_maps(ph, pixel_size_um=PX)
    part = ph == Phase.NMC
    np.testing.assert_allclose(
        m.li_distance_um[part], brute_force(ph, m.li_contact, part), atol=1e-5
    )
    np.testing.assert_allclose(m.e_distance_um[part], brute_force(ph, m.e_contact, part), atol=1e-5)
    # contacts only where NMC touches each phase (4-adjacent)
    cy, cx = np.argwhere(m.li_contact).mean(0)
    assert cy > 60 and cx < 60
    assert m.combined[part].min() == 0 and m.combined[part].max() == 1
    # no inf anywhere, NaN outside NMC
    for arr in (m.li_distance_um, m.e_distance_um, m.combined, m.core_shell):
        assert not np.isinf(arr).any() and np.isnan(arr[~part]).all()


def test_core_shell_distance():
    ph, (d, _) = disk_scene()
    m = diffusion_distance_maps(ph, pixel_size_um=PX)
    part = ph == Phase.NMC
    surface = part & (d > 39)
    assert np.nanmax(m.core_shell_um[surface]) <= 1.5 * PX
    assert m.core_shell_um[60, 60] == pytest.approx(40 * PX, abs=1.01 * PX)
    assert m.core_shell[60, 60] == pytest.approx(1.0)
    assert m.unavailable.keys() == {"li", "e", "combined"}  # VOID only around the disk


def test_touching_particles_use_only_their_own_contacts():
    # two square particles side by side; SSE only at the far left of A and near the A|B
    # border on B's side; NMC-NMC contact at the border is not a Li+ channel.
    ph = np.zeros((22, 62), dtype=np.uint8)
    ph[1:21, 1:61] = Phase.NMC
    ph[1:21, 0] = Phase.SSE  # touches A (left)
    ph[0, 31:34] = Phase.SSE  # touches B just right of the border
    ph[21, :] = Phase.CARBON
    labels = np.zeros(ph.shape, dtype=np.int32)
    labels[1:21, 1:31], labels[1:21, 31:61] = 1, 2
    m = diffusion_distance_maps(ph, pixel_size_um=PX, labels=labels)
    # A's pixel next to the border: nearest own SSE contact is the left edge, 29 px away
    assert m.li_distance_um[10, 30] == pytest.approx(29 * PX)
    merged = diffusion_distance_maps(ph, pixel_size_um=PX)  # no labels: one component
    assert merged.li_distance_um[10, 30] < 15 * PX
    assert m.labels.max() == 2 and merged.labels.max() == 1


def test_missing_phase_reported_unavailable_not_inf(caplog):
    ph, (d, ang) = disk_scene()
    ph[(d > 40) & (d <= 43) & (ang > 100)] = Phase.SSE  # no carbon at all
    with caplog.at_level(logging.INFO):
        m = diffusion_distance_maps(ph, pixel_size_um=PX)
    assert m.e_distance_um is None and m.e_norm is None and m.combined is None
    assert "no CARBON pixels" in m.unavailable["e"]
    assert "needs both" in m.unavailable["combined"]
    assert m.li_distance_um is not None and np.isfinite(m.li_distance_um[ph == 1]).all()
    assert "e diffusion distance unavailable" in caplog.text
    # an absent phase is the normal 2-D case: logged as information, not a warning
    assert all(r.levelno == logging.INFO for r in caplog.records if "unavailable" in r.message)


def test_particle_without_contact_is_nan_and_listed():
    ph = np.zeros((30, 60), dtype=np.uint8)
    ph[5:25, 5:25] = Phase.NMC  # particle 1: touches SSE and carbon
    ph[5:25, 35:55] = Phase.NMC  # particle 2: touches carbon only
    ph[5:25, 4] = Phase.SSE
    ph[25, 5:55] = Phase.CARBON
    m = diffusion_distance_maps(ph, pixel_size_um=PX)
    assert m.no_li_contact.tolist() == [2] and m.no_e_contact.tolist() == []
    assert np.isnan(m.li_distance_um[m.labels == 2]).all()
    assert np.isnan(m.combined[m.labels == 2]).all()
    assert np.isfinite(m.combined[m.labels == 1]).all()
    assert np.isfinite(m.e_distance_um[m.labels == 2]).all()


def test_global_normalisation_and_geodesic_metric():
    # U-shaped particle: SSE at the tip of the left arm
    ph = np.zeros((40, 40), dtype=np.uint8)
    ph[5:35, 5:12] = ph[5:35, 28:35] = ph[28:35, 5:35] = Phase.NMC
    ph[4, 5:12] = Phase.SSE
    ph[4, 28:35] = Phase.CARBON
    eu = diffusion_distance_maps(ph, pixel_size_um=PX)
    geo = diffusion_distance_maps(ph, pixel_size_um=PX, metric="geodesic")
    part = ph == Phase.NMC
    assert np.all(geo.li_distance_um[part] >= eu.li_distance_um[part] - 1e-6)
    # tip of the right arm: Euclidean cuts across the gap, geodesic goes round the U
    assert eu.li_distance_um[5, 31] == pytest.approx(20 * PX, abs=1e-6)
    assert geo.li_distance_um[5, 31] > 2 * eu.li_distance_um[5, 31]
    # straight path along the arm: both metrics agree
    assert geo.li_distance_um[20, 8] == pytest.approx(eu.li_distance_um[20, 8], abs=1e-6)
    two = np.concatenate([ph, ph[:, :20]], axis=1)  # second, smaller (cut) particle
    g = diffusion_distance_maps(two, pixel_size_um=PX, normalize="global")
    assert np.nanmax(g.li_norm) == pytest.approx(1.0)
    assert np.nanmax(g.li_norm[g.labels == 2]) < 1.0
    assert np.nanmax(g.combined) == pytest.approx(1.0) and np.nanmin(g.combined) == 0


def test_three_dimensional_block():
    ph = np.full((6, 8, 10), Phase.NMC, dtype=np.uint8)
    ph[:, :, 0], ph[:, :, -1] = Phase.SSE, Phase.CARBON
    m = diffusion_distance_maps(ph, pixel_size_um=PX)
    np.testing.assert_allclose(m.li_distance_um[3, 4, 1:-1], np.arange(8) * PX, atol=1e-6)


# --------------------------------------------------------------------------- bins
def impedance_scene(seed=0):
    """One particle with SSE and carbon on the left: edge energy follows the combined
    impedance (as measured in the paper) plus noise."""
    ph, (d, ang) = disk_scene()
    shell = (d > 40) & (d <= 43)
    ph[shell & (ang > 120) & (ang < 170)] = Phase.SSE
    ph[shell & (ang > -170) & (ang < -120)] = Phase.CARBON
    m = diffusion_distance_maps(ph, pixel_size_um=PX)
    rng = np.random.default_rng(seed)
    energy = 8340.0 + 2.0 * m.combined + rng.normal(0, 0.2, ph.shape)
    return m, energy


def test_impedance_bins_combined_rises_core_shell_does_not():
    m, energy = impedance_scene()
    df = impedance_bins(m.combined, energy, core_shell=m.core_shell)
    assert list(df.columns) == [
        "model",
        "bin_lo",
        "bin_hi",
        "count",
        "edge_energy_mean",
        "edge_energy_std",
        "fwhm",
        "error_bar",
    ]
    comb = df[df.model == "combined"]
    cs = df[df.model == "core_shell"]
    assert len(comb) == len(cs) == 5 and (comb["count"] > 0).all()
    assert comb["count"].sum() == np.count_nonzero(np.isfinite(m.combined))
    rise = np.diff(comb["edge_energy_mean"].to_numpy())
    assert (rise > 0).all()  # monotonic rise with combined impedance
    comb_span = comb["edge_energy_mean"].iloc[-1] - comb["edge_energy_mean"].iloc[0]
    cs_span = cs["edge_energy_mean"].iloc[-1] - cs["edge_energy_mean"].iloc[0]
    assert comb_span > 1.0 and cs_span < 0.25 * comb_span  # core-shell: no rising trend
    np.testing.assert_allclose(df["error_bar"], df["fwhm"] / 10)
    np.testing.assert_allclose(df["fwhm"], 2.0 * np.sqrt(2 * np.log(2)) * df["edge_energy_std"])


def test_fwhm_histogram_method_matches_gaussian_for_normal_data():
    rng = np.random.default_rng(4)
    combined = np.full((200, 200), 0.5)
    energy = rng.normal(8345, 0.5, combined.shape)
    df = impedance_bins(combined, energy, fwhm_method="histogram", bins=(0, 1))
    assert df.loc[0, "fwhm"] == pytest.approx(2.3548 * 0.5, rel=0.15)


def test_impedance_bins_mask_and_edges():
    c = np.array([[0.0, 0.2, 0.999, 1.0, np.nan, 1.2]])
    e = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    df = impedance_bins(c, e, bins=(0, 0.5, 1.0))
    assert df["count"].tolist() == [2, 2]  # 1.0 in the last bin, 1.2 and NaN dropped
    df = impedance_bins(c, e, bins=(0, 0.5, 1.0), mask=c < 0.5)
    assert df["count"].tolist() == [2, 0] and np.isnan(df.loc[1, "edge_energy_mean"])


def test_distance_map_2d_joint_effect():
    m, energy = impedance_scene()
    r = distance_map_2d(m.e_norm, m.li_norm, energy)
    assert r.mean.shape == (5, 5) and r.count.sum() == np.isfinite(m.combined).sum()
    # lowest edge energy where both distances are short
    assert np.nanargmin(r.mean) == 0
    r2 = distance_map_2d(m.e_norm, m.li_norm, energy, bins=((0, 0.5, 1), (0, 1)))
    assert r2.mean.shape == (2, 1)


@pytest.mark.parametrize(
    ("phases", "kwargs", "message"),
    [
        (np.zeros((8, 8), np.uint8), {}, r"no NMC pixels.*segmentation"),
        (np.ones((8, 8)), {}, r"dtype float64.*integer phase map"),
        (np.full((8, 8), 7), {}, r"outside the Phase codes.*VOID=0"),
        (np.ones((8, 8), int), {"labels": np.ones((8, 9), int)}, r"labels has shape \(8, 9\)"),
        (np.ones((8, 8), int), {"labels": np.zeros((8, 8), int)}, r"no particle over the NMC"),
        (np.ones((8, 8), int), {"metric": "manhattan"}, r"use 'euclidean' or 'geodesic'"),
        (np.ones((8, 8), int), {"pixel_size_um": -1}, r"finite positive"),
    ],
)
def test_diffusion_bad_input(phases, kwargs, message):
    args = {"pixel_size_um": PX, **kwargs}
    with pytest.raises(ValueError, match=message):
        diffusion_distance_maps(phases, **args)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((np.ones((4, 4)), np.ones((4, 5))), {}, r"edge_energy has shape \(4, 5\)"),
        ((np.ones((4, 4)), np.ones((4, 4))), {"bins": (0, 0.5, 0.4)}, r"strictly increasing"),
        ((np.ones((4, 4)), np.ones((4, 4))), {"mask": np.zeros((4, 4))}, r"mask selects no"),
        ((np.full((4, 4), np.nan), np.ones((4, 4))), {}, r"no pixel has finite combined"),
    ],
)
def test_impedance_bins_bad_input(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        impedance_bins(*args, **kwargs)


def test_distance_map_2d_bad_input():
    with pytest.raises(ValueError, match=r"li_dist has shape"):
        distance_map_2d(np.ones((3, 3)), np.ones((3, 4)), np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"not None"):
        distance_map_2d(np.full((3, 3), np.nan), np.ones((3, 3)), np.ones((3, 3)))


@pytest.mark.parametrize("seed", [0, 1])
def test_compiled_2d_distances_equal_each_particles_feature_transform(seed):
    """The compiled 2-D sweep equals scipy's feature transform per particle box, bit for bit."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    ph = ndi.median_filter(rng.choice(4, size=(48, 64), p=[0.1, 0.6, 0.2, 0.1]), 3)
    labels = rng.integers(1, 4, ph.shape)  # touching particles, own contacts only
    m = diffusion_distance_maps(ph.astype(np.uint8), pixel_size_um=PX, labels=labels)
    for key, contact in (("li", m.li_contact), ("e", m.e_contact)):
        got = getattr(m, f"{key}_distance_um")
        want = np.full(ph.shape, np.nan, np.float32)
        for lbl, sl in enumerate(ndi.find_objects(m.labels), start=1):
            if sl is None:
                continue
            part = m.labels[sl] == lbl
            t = contact[sl] & part
            if not t.any():
                continue
            ft = ndi.distance_transform_edt(~t, return_distances=False, return_indices=True)
            where = np.array(np.nonzero(part))
            diff = ft[(slice(None), *where)] - where
            want[sl][tuple(where)] = np.sqrt((diff**2).sum(0)) * PX
        np.testing.assert_array_equal(got, want)
