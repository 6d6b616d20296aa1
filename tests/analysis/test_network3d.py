"""The 3D conductive-network model against the network phantom's independent truth.

Phantom: ``NetworkPhantomConfig()`` (48 x 64 x 64 voxels of 0.1 um, 10 NMC
particles, SSE, graphite flakes and carbon fibres).  Measurements simulated from the
truth: attenuation below / above the Ni K-edge and an electron density
(holotomography), each blurred (Gaussian sigma 0.5 voxel) with white noise; edge
energy = truth + 0.5 eV noise (the reconstruction path is tested in
``tests/callbacks/test_network3d_live.py``).  Truth distances: Dijkstra in the
phantom module (no analysis code).  Measured numbers are printed (``pytest -s``).
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy import ndimage

from ssb_beamline.analysis import (
    network3d,
    segmentation3d,
    segmentation3d_flecks,
    segmentation3d_spill,
)
from ssb_beamline.analysis.network3d import bin_statistics, network_model_3d, trend_slope
from ssb_beamline.analysis.phases import Phase
from ssb_beamline.analysis.segmentation3d import segment_phases_3d
from ssb_beamline.callbacks import registered_phases
from ssb_beamline.sim_devices import network_phantom3d
from ssb_beamline.sim_devices.network_phantom3d import make_network_phantom
from ssb_beamline.sim_devices.refraction import phase_attenuation_per_um

ENERGIES = [8300.0, 8390.0]
VOX = 0.1


@pytest.fixture(scope="module")
def net():
    return make_network_phantom()


@pytest.fixture(scope="module")
def measured(net):
    ph = net.phantom
    rng = np.random.default_rng(7)
    stack = []
    for e in ENERGIES:
        a, b, mu_sse, mu_c = phase_attenuation_per_um(e)
        mu = np.zeros(ph.shape, np.float32)
        nmc = ph.phases == 1
        mu[nmc] = a + b * ph.soc[nmc]
        mu[ph.phases == 2], mu[ph.phases == 3] = mu_sse, mu_c
        stack.append(ndimage.gaussian_filter(mu, 0.5) + rng.normal(0, 2e-4, mu.shape))
    density = ndimage.gaussian_filter(ph.electron_density, 0.5) + rng.normal(0, 30, ph.shape)
    edge = ph.edge_energy + rng.normal(0, 0.5, ph.shape).astype(np.float32)
    return np.stack(stack).astype(np.float32), density.astype(np.float32), edge


def dice(a, b) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


@pytest.fixture(scope="module")
def segmented(measured):
    stack, density, _ = measured
    return segment_phases_3d(stack, ENERGIES, voxel_size_um=VOX, electron_density=density)


def test_phases_from_edge_jump_and_electron_density(net, measured, segmented):
    truth = net.phantom.phases
    scores = {k: dice(segmented.phases == k, truth == k) for k in (1, 2, 3)}
    absorption = segment_phases_3d(measured[0], ENERGIES, voxel_size_um=VOX)
    only_abs = {k: dice(absorption.phases == k, truth == k) for k in (1, 2, 3)}
    print(f"\nDice NMC/SSE/carbon: edge jump + density {scores}; absorption only {only_abs}")
    assert scores[1] >= 0.9 and scores[2] >= 0.9 and scores[3] >= 0.7
    assert only_abs[1] >= 0.9 and only_abs[2] >= 0.9  # carbon: ~9x weaker than SSE
    meta = segmented.metadata
    assert meta["contrast"] == "absorption per electron"
    assert meta["edge"]["post_edge_ev"] == [8390.0] and meta["nmc"]["threshold_per_um"] > 0
    per_e = meta["others"]["median_absorption_per_electron"]
    assert per_e["SSE"] > 5 * per_e["CARBON"] > 0  # Li6PS5Cl ~2.5e-5, carbon ~1.4e-6
    assert meta["others"]["carbon_resolved"] and len(meta["others"]["thresholds"]) == 2


def test_distances_match_the_independent_dijkstra(net):
    ph = net.phantom
    model = network_model_3d(ph.phases, ph.edge_energy, voxel_size_um=VOX, labels=ph.labels)
    for name, truth in (
        ("li_distance_um", net.li_distance_um),
        ("e_distance_um", net.e_distance_um),
    ):
        mine = model.volume(name)
        both = np.isfinite(mine) & np.isfinite(truth)
        assert both.sum() > 0.5 * (ph.phases == 1).sum()
        assert (np.isfinite(mine) == np.isfinite(truth))[ph.phases == 1].all()
        err = np.abs(mine[both] - truth[both]) / VOX
        print(
            f"\n{name}: median |error| {np.median(err):.3f} voxel, p95 {np.percentile(err, 95):.2f}"
        )
        assert np.median(err) <= 1.0


def test_trends_recovered_from_segmented_phases(net, measured, segmented):
    edge = measured[2]
    model = network_model_3d(segmented.phases, edge, voxel_size_um=VOX,
                             phase_voxel_size_um=segmented.voxel_size_um)  # fmt: skip
    truth_edge = net.phantom.edge_energy
    truth = {
        "combined": trend_slope(bin_statistics(net.combined, truth_edge)),
        "core_shell": trend_slope(bin_statistics(net.core_shell, truth_edge)),
    }
    print(f"\nslopes eV/unit: measured {model.slopes}, truth {truth}")
    print(model.bins.round(3).to_string())
    for name, t in truth.items():
        m = model.slopes[name]
        assert np.sign(m) == np.sign(t) and abs(m - t) <= 0.3 * abs(t), (name, m, t)
    assert (model.bins["count"] > 0).all() and (model.bins["error_bar"] > 0).all()
    p = model.particles
    assert len(p) >= 8 and p["has_li_contact"].any() and p["has_e_contact"].any()


def test_unknown_band_rule_is_named_with_the_choices(measured):
    with pytest.raises(ValueError, match="band_rule='normal'; pass 'nearest' or 'spill'"):
        segment_phases_3d(measured[0], ENERGIES, voxel_size_um=VOX, band_rule="normal")


@pytest.mark.parametrize(
    "module",
    [
        network3d,
        segmentation3d,
        segmentation3d_flecks,
        segmentation3d_spill,
        network_phantom3d,
        registered_phases,
    ],
)
def test_docstring_examples_run(module):
    assert doctest.testmod(module, extraglobs={"np": np}).failed == 0


def test_projected_phantom_is_the_2d_view_of_the_3d_sample(net):
    ph = net.phantom
    ph2 = network_phantom3d.projected_phantom(ph)
    assert ph2.shape == (ph.shape[0], ph.shape[2]) and ph2.config.pixel_size_um == VOX
    for code, thick in ((1, ph2.thickness_nmc_um), (2, ph2.thickness_sse_um),
                        (3, ph2.thickness_carbon_um)):  # fmt: skip
        np.testing.assert_allclose(thick, (ph.phases == code).sum(axis=1) * VOX, rtol=1e-5)
    nmc = ph.phases == 1
    ray_soc = np.nansum(np.where(nmc, ph.soc, 0), axis=1) / np.maximum(nmc.sum(axis=1), 1)
    seen = nmc.any(axis=1)
    np.testing.assert_allclose(ph2.soc[seen], ray_soc[seen], rtol=1e-5)
    assert (ph2.phase[seen] == 1).all() and (ph2.labels[seen] > 0).all()
    assert (ph2.labels[~seen] == 0).all()


def test_sse_flecks_within_the_band_around_nmc_are_not_contacts():
    # NMC slab | pore gap | SSE matrix; plus a 3-voxel SSE fleck on NMC's other face
    ph = np.zeros((6, 6, 20), np.uint8)
    ph[:, :, 6:12] = Phase.NMC
    ph[:, :, 14:] = Phase.SSE
    ph[2:4, 2, 5] = Phase.SSE  # fleck: inside the band, reaches no further
    ph[:, :, :4] = Phase.CARBON
    out = ph.copy()
    moved = segmentation3d_flecks.drop_band_flecks(out, ph == Phase.NMC, width=2)
    assert moved == 2 and (out[2:4, 2, 5] == Phase.VOID).all()
    np.testing.assert_array_equal(out[:, :, 14:], Phase.SSE)  # the matrix stays
    assert segmentation3d_flecks.drop_band_flecks(ph.copy(), ph == Phase.NMC, width=0) == 0
