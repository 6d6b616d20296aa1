"""Truth of the 3D composite-cathode phantom and its refractive index."""

from __future__ import annotations

import numpy as np
import pytest
import xraydb
from scipy import ndimage

from ssb_beamline.analysis.phases import Phase
from ssb_beamline.sim_devices.phantom3d import Phantom3DConfig, make_phantom3d
from ssb_beamline.sim_devices.phantom_config import SOC_CLIP
from ssb_beamline.sim_devices.refraction import (
    NMC_DELITHIATION_K,
    delta_from_electron_density,
    electron_density_from_delta,
    electron_density_per_nm3,
    nmc_electron_density,
    phase_attenuation_per_um,
    refractive_index,
    wavelength_m,
)
from ssb_beamline.sim_devices.xray_physics import truth_edge_energy

SMALL = Phantom3DConfig(shape=(32, 64, 64), n_particles=8, radius_range_um=(0.4, 1.2), seed=5)


@pytest.fixture(scope="module")
def ph():
    return make_phantom3d(Phantom3DConfig())


def test_default_has_30_to_60_particles(ph):
    assert 30 <= ph.n_particles <= 60
    assert ph.labels.max() == ph.n_particles
    assert set(np.unique(ph.labels)) == set(range(ph.n_particles + 1))


def test_dtypes_phases_and_fractions(ph):
    cfg = ph.config
    assert ph.shape == cfg.shape == (64, 128, 128)
    assert ph.labels.dtype == np.int32 and ph.phases.dtype == np.uint8
    for vol in (ph.soc, ph.electron_density, ph.oxidation_state, ph.edge_energy):
        assert vol.dtype == np.float32 and vol.shape == ph.shape
    assert set(np.unique(ph.phases)) == {int(p) for p in Phase}
    np.testing.assert_array_equal(ph.phases == Phase.NMC, ph.labels > 0)
    frac = np.bincount(ph.phases.ravel(), minlength=4) / ph.phases.size
    assert frac[Phase.SSE] == pytest.approx(cfg.sse_fraction, abs=0.01)
    assert frac[Phase.CARBON] == pytest.approx(cfg.carbon_fraction, abs=0.01)
    assert 0.2 < frac[Phase.NMC] < 0.5 and frac[Phase.VOID] > 0.1


def test_soc_oxidation_and_edge_energy_truth(ph):
    nmc = ph.labels > 0
    assert np.all(np.isnan(ph.soc[~nmc])) and np.all(np.isnan(ph.edge_energy[~nmc]))
    soc = ph.soc[nmc]
    assert soc.min() >= SOC_CLIP[0] - 1e-6 and soc.max() <= SOC_CLIP[1] + 1e-6
    np.testing.assert_allclose(ph.oxidation_state[nmc], 2.0 + soc, rtol=1e-6)
    np.testing.assert_allclose(ph.edge_energy[nmc], truth_edge_energy(soc), atol=1e-3)
    # The edge rises monotonically with SOC (about 1.8 eV from SOC 0 to 1).
    lo, hi = truth_edge_energy([soc.min(), soc.max()])
    assert ph.edge_energy[nmc].min() == pytest.approx(lo, abs=1e-3)
    assert ph.edge_energy[nmc].max() == pytest.approx(hi, abs=1e-3)
    assert hi - lo > 0.3


def test_electron_density_truth_values(ph):
    # Composition: LiNi0.8Mn0.1Co0.1O2 has 46.6 e- in 97.28 g/mol; 4.75 g/cm3.
    n0 = 4.75 * 6.02214076e23 * 46.6 / 97.27984 * 1e-21
    assert nmc_electron_density(0.0) == pytest.approx(n0, rel=1e-6)
    assert n0 == pytest.approx(1370.3, abs=0.5)
    assert abs(NMC_DELITHIATION_K - 0.0515) < 1e-4
    nmc = ph.labels > 0
    np.testing.assert_allclose(
        ph.electron_density[nmc], n0 * (1 - NMC_DELITHIATION_K * ph.soc[nmc]), rtol=1e-5
    )
    sse, carbon = ph.phases == Phase.SSE, ph.phases == Phase.CARBON
    assert np.allclose(ph.electron_density[sse], 478.42, atol=0.05)
    assert np.allclose(ph.electron_density[carbon], 661.83, atol=0.05)
    assert np.all(ph.electron_density[ph.phases == Phase.VOID] == 0)


def test_particle_table_matches_volumes(ph):
    t = ph.particles
    vox = ph.voxel_size_um
    assert list(t.index) == list(range(1, ph.n_particles + 1))
    lab = ph.labels[ph.labels > 0]
    np.testing.assert_array_equal(t["n_voxels"], np.bincount(lab)[1:])
    for col, vol in (("soc", ph.soc), ("electron_density", ph.electron_density)):
        mean = ndimage.mean(vol, ph.labels, t.index)
        std = ndimage.standard_deviation(vol, ph.labels, t.index)
        np.testing.assert_allclose(t[f"{col}_mean"], mean, rtol=1e-5)
        np.testing.assert_allclose(t[f"{col}_std"], std, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(t["depth_um"], t["z"] * vox)
    zi, yi, xi = (np.round(t[c]).astype(int) for c in "zyx")
    np.testing.assert_array_equal(ph.labels[zi, yi, xi], t.index)
    lo, hi = ph.config.radius_range_um
    assert t["radius_um"].between(lo, hi).all()
    # Voxel count of a sphere (touching pairs share a 2 % neck).
    expected = 4 / 3 * np.pi * (t["radius_um"] / vox) ** 3
    assert np.all(np.abs(t["n_voxels"] / expected - 1) < 0.2)
    assert np.median(np.abs(t["n_voxels"] / expected - 1)) < 0.05
    assert t["has_sse_contact"].mean() > 0.7 and t["has_carbon_contact"].mean() > 0.3


@pytest.mark.parametrize("seed", [0, 11])
def test_density_size_pearson_r_as_in_paper(seed, ph):
    p = ph if seed == 0 else make_phantom3d(Phantom3DConfig(seed=seed, carbon_form="fibre"))
    r = p.density_size_pearson_r()
    assert 0.6 <= r <= 0.7  # paper: 0.6651
    t = p.particles
    large = t["radius_um"] > 1.0
    assert large.sum() >= 8 and (~large).sum() >= 8
    # Large particles are denser (more discharged); small ones scatter more.
    rho = t["electron_density_mean"]
    assert rho[large].mean() > rho[~large].mean()
    assert rho[~large].std() > rho[large].std()
    # Intra-particle spread grows with size; no trend with depth.
    assert np.corrcoef(t["radius_um"], t["electron_density_std"])[0, 1] > 0.3
    assert abs(np.corrcoef(t["depth_um"], rho)[0, 1]) < 0.4


def test_polarisation_lower_soc_at_contacts(ph):
    six = ndimage.generate_binary_structure(3, 1)
    near_sse = ndimage.binary_dilation(ph.phases == Phase.SSE, six) & (ph.labels > 0)
    contact_minus_mean = []
    for label, row in ph.particles.iterrows():
        sel = near_sse & (ph.labels == label)
        if sel.sum() >= 10:
            contact_minus_mean.append(ph.soc[sel].mean() - row["soc_mean"])
    # Regions next to the Li+ channels are discharged (lower SOC) than the bulk.
    assert len(contact_minus_mean) > 15
    assert np.mean(np.array(contact_minus_mean) < 0) > 0.8


def test_morphology_graphite_thin_sse_smooth(ph):
    half_thick_vox = 0.5 * ph.config.carbon_thickness_um / ph.voxel_size_um
    carbon_depth = ndimage.distance_transform_edt(ph.phases == Phase.CARBON)
    sse_depth = ndimage.distance_transform_edt(ph.phases == Phase.SSE)
    assert carbon_depth.max() <= half_thick_vox + 1.5  # sheets, not blobs
    assert sse_depth.max() > 3 * carbon_depth.max()  # thick, smooth domains
    assert sse_depth[sse_depth > 0].mean() > 1.5 * carbon_depth[carbon_depth > 0].mean()


def test_deterministic_and_fibre_form():
    a, b = make_phantom3d(SMALL), make_phantom3d(SMALL)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.electron_density, b.electron_density)
    f = make_phantom3d(Phantom3DConfig(**{**SMALL.__dict__, "carbon_form": "fibre"}))
    carbon = f.phases == Phase.CARBON
    assert carbon.mean() == pytest.approx(0.04, abs=0.01)
    assert np.allclose(f.electron_density[carbon], 541.50, atol=0.05)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"shape": (64, 128)}, "shape"),
        ({"shape": (8, 128, 128)}, "shape"),
        ({"voxel_size_um": 0.0}, "voxel_size_um"),
        ({"radius_range_um": (2.0, 1.0)}, "radius_range_um"),
        ({"radius_range_um": (0.05, 1.0)}, "radius_range_um"),
        ({"radius_range_um": (4.0, 5.0)}, "radius_range_um"),
        ({"n_particles": -1}, "n_particles"),
        ({"sse_fraction": 1.5}, "sse_fraction"),
        ({"sse_fraction": 0.6, "carbon_fraction": 0.4}, "sse_fraction"),
        ({"carbon_form": "nanotube"}, "carbon_form"),
        ({"carbon_thickness_um": 0.05}, "carbon_thickness_um"),
        ({"size_correlation": 0.0}, "size_correlation"),
        ({"soc_noise_sigma": -0.1}, "soc_noise_sigma"),
    ],
)
def test_config_validation_names_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Phantom3DConfig(**kwargs)


# --------------------------------------------------------------------------- #
# Refractive index
# --------------------------------------------------------------------------- #
def test_wavelength_and_delta_roundtrip():
    assert wavelength_m(12398.419843) == pytest.approx(1e-10, rel=1e-8)
    rho = np.array([0.0, 478.4, 1370.3], np.float32)
    d = delta_from_electron_density(rho, 17000.0)
    # delta = r_e lambda^2 n_e / (2 pi); NMC at 17 keV about 3.27e-6.
    lam = 1.239841984e-6 / 17000.0
    assert d[2] == pytest.approx(2.8179403262e-15 * lam**2 * 1370.3e27 / (2 * np.pi), rel=1e-6)
    np.testing.assert_allclose(electron_density_from_delta(d, 17000.0), rho, rtol=1e-6)
    with pytest.raises(ValueError, match="energy_ev"):
        wavelength_m(-1.0)


@pytest.mark.parametrize(
    ("formula", "density"), [("LiNi0.8Mn0.1Co0.1O2", 4.75), ("Li6PS5Cl", 1.64), ("C", 2.2)]
)
def test_delta_matches_xraydb_away_from_edges(formula, density):
    # ID16A-like energy, far above the Ni K-edge: f' is negligible (< 1 %).
    rho = electron_density_per_nm3(formula, density)
    ours = float(delta_from_electron_density(rho, 17000.0))
    ref = xraydb.xray_delta_beta(formula, density, 17000.0)[0]
    assert ours == pytest.approx(ref, rel=0.01)


def test_refractive_index_volumes(ph):
    for energy in (8300.0, 8400.0):
        delta, beta = refractive_index(ph, energy)
        assert delta.dtype == beta.dtype == np.float32
        np.testing.assert_allclose(
            electron_density_from_delta(delta, energy), ph.electron_density, rtol=1e-5, atol=1e-3
        )
        lam = wavelength_m(energy)
        a, b, mu_sse, mu_c = phase_attenuation_per_um(energy, 2.2)
        mu = beta * 4 * np.pi / lam * 1e-6  # back to 1/um
        nmc = ph.phases == Phase.NMC
        np.testing.assert_allclose(mu[nmc], a + b * ph.soc[nmc], rtol=1e-5)
        assert np.allclose(mu[ph.phases == Phase.SSE], mu_sse, rtol=1e-5)
        assert np.allclose(mu[ph.phases == Phase.CARBON], mu_c, rtol=1e-5)
        assert np.all(beta[ph.phases == Phase.VOID] == 0)
    # Ni K-edge XANES contrast in 3D: NMC absorbs far more above the edge.
    _, below = refractive_index(ph, 8300.0)
    _, above = refractive_index(ph, 8400.0)
    nmc = ph.phases == Phase.NMC
    assert above[nmc].mean() / below[nmc].mean() > 2.0
    sse = ph.phases == Phase.SSE
    assert above[sse].mean() / below[sse].mean() < 1.0  # smooth, no edge
    # Carbon is scaled from xray_physics' 2.0 g/cm3 to graphite's 2.2 g/cm3.
    c_ref = xraydb.material_mu("C", 8300.0, density=2.2) * 1e-4
    assert phase_attenuation_per_um(8300.0, 2.2)[3] == pytest.approx(c_ref, rel=0.01)
