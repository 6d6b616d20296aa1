"""Partial-volume (geometric transfer matrix) correction of the network bins' mean spectra."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ssb_beamline.analysis.network3d import network_model_3d
from ssb_beamline.analysis.network3d_pvc import fbp_point_response, transfer_matrix_means
from ssb_beamline.analysis.network3d_spectra import bin_spectrum_edges
from ssb_beamline.analysis.phases import Phase
from ssb_beamline.analysis.segmentation3d import PhaseVolume
from ssb_beamline.analysis.tomography import _system_matrix, reconstruct_fbp
from ssb_beamline.callbacks.network3d_live import Network3DLive, network_results
from ssb_beamline.reference_data import ni_k_edge_references

ENERGIES = np.array([8300.0, 8320.0, 8331.0, 8334.0, 8337.0, 8340.0, 8343.0, 8346.0, 8349.0,
                     8390.0, 8440.0])  # fmt: skip
ANGLES = np.linspace(0.0, 180.0, 41)
N = 32


def test_point_response_is_normalised_symmetric_and_wider_with_the_hann_window():
    hann, ramp = fbp_point_response(ANGLES, "hann"), fbp_point_response(ANGLES, "ramp")
    for h in (hann, ramp):
        assert h.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(h, h[::-1, ::-1], atol=0.03 * h.max())  # point-symmetric
        assert np.unravel_index(np.argmax(h), h.shape) == (4, 4)
    assert hann[4, 4] < 0.5 * ramp[4, 4]  # the Hann window blurs: less of the point stays
    with pytest.raises(ValueError, match="square, odd-sized"):
        transfer_matrix_means(np.zeros((1, 4, 4), int), np.zeros((1, 1, 4, 4)), np.ones((4, 4)))


def _fbp_stack(mu: np.ndarray) -> np.ndarray:
    """Each energy's (Z, N, N) volume forward-projected and reconstructed (Hann FBP)."""
    back = _system_matrix(N, np.radians(ANGLES), (N - 1) / 2.0, np.arange(N * N))
    out = []
    for vol in mu:
        proj = (back.T @ vol.reshape(len(vol), -1).T).T.reshape(len(vol), ANGLES.size, N)
        out.append(reconstruct_fbp(proj.transpose(1, 0, 2), ANGLES, (N - 1) / 2.0))
    return np.stack(out)


@pytest.fixture(scope="module")
def particle():
    """One NMC disc (core SOC 0.7, shell 0.3) in SSE, two slices, reconstructed by Hann FBP."""
    yy, xx = np.mgrid[:N, :N] - (N - 1) / 2.0
    r = np.hypot(yy, xx)
    phases = np.full((2, N, N), Phase.VOID, np.uint8)
    phases[:, r < 12] = Phase.SSE
    phases[:, r < 7] = Phase.NMC
    core = np.broadcast_to(r < 3.5, phases.shape)
    soc = np.where(core, 0.7, 0.3)
    ni2, ni3 = ni_k_edge_references()
    nmc = phases == Phase.NMC
    mu = np.stack([0.6 * nmc * (0.02 + 0.05 * ((1 - soc) * a + soc * b)) + 0.01 * (phases == 2)
                   for a, b in zip(ni2.at(ENERGIES), ni3.at(ENERGIES), strict=True)])  # fmt: skip
    model = np.where(core, 0.9, 0.1)[nmc]  # two bins: shell [0, 0.2), core [0.8, 1]
    index = np.flatnonzero(nmc)
    return phases, mu.astype(np.float32), _fbp_stack(mu.astype(np.float32)), model, index


def test_correction_restores_the_core_to_shell_step_the_blur_compresses(particle):
    phases, mu, rec, model, index = particle
    sharp = bin_spectrum_edges(model, index, mu, ENERGIES)
    blurred = bin_spectrum_edges(model, index, rec, ENERGIES)
    fixed = bin_spectrum_edges(model, index, rec, ENERGIES, phases=phases,
                               kernel=fbp_point_response(ANGLES))  # fmt: skip
    step = {k: v[4] - v[0] for k, v in (("sharp", sharp), ("blurred", blurred), ("fixed", fixed))}
    print(f"\ncore - shell edge energy, eV: {step}")
    assert step["blurred"] < 0.9 * step["sharp"]  # the blur costs > 10 %
    assert step["fixed"] == pytest.approx(step["sharp"], rel=0.03)
    with pytest.raises(ValueError, match="needs the phase volume"):
        bin_spectrum_edges(model, index, rec, ENERGIES, kernel=fbp_point_response(ANGLES))


def test_network_model_keeps_the_uncorrected_reading_and_a_point_kernel_changes_nothing():
    ph = np.full((3, 6, 10), Phase.NMC, np.uint8)
    ph[..., 0], ph[..., -1] = Phase.SSE, Phase.CARBON
    ph[:, 0], ph[:, -1] = Phase.VOID, Phase.VOID
    ramp = np.linspace(0.2, 0.6, ph.shape[-1])
    ni2, ni3 = ni_k_edge_references()
    att = np.stack([np.broadcast_to(0.02 + 0.05 * ((1 - ramp) * a + ramp * b), ph.shape)
                    for a, b in zip(ni2.at(ENERGIES), ni3.at(ENERGIES), strict=True)])  # fmt: skip
    edge = np.where(ph == Phase.NMC, 8340.0, np.nan)
    kw = {"voxel_size_um": 0.1, "attenuation": att, "energies": ENERGIES}
    plain = network_model_3d(ph, edge, **kw).slopes
    point = network_model_3d(ph, edge, resolution_kernel=np.ones((1, 1)), **kw).slopes
    assert point["combined"] == pytest.approx(plain["combined_unweighted"], rel=1e-6)
    assert point["combined_uncorrected"] == pytest.approx(plain["combined_unweighted"], rel=1e-6)
    assert "combined_uncorrected" not in plain
    with pytest.raises(ValueError, match="pass the attenuation stack"):
        network_model_3d(ph, edge, voxel_size_um=0.1, resolution_kernel=np.ones((1, 1)))


def test_live_callback_corrects_only_fbp_volumes_when_asked():
    ph = np.full((3, 6, 10), Phase.NMC, np.uint8)
    ph[..., 0], ph[..., -1] = Phase.SSE, Phase.CARBON
    ph[:, 0], ph[:, -1] = Phase.VOID, Phase.VOID
    ramp = np.linspace(0.2, 0.6, ph.shape[-1])
    ni2, ni3 = ni_k_edge_references()
    att = np.stack([np.broadcast_to(0.02 + 0.05 * ((1 - ramp) * a + ramp * b), ph.shape)
                    for a, b in zip(ni2.at(ENERGIES), ni3.at(ENERGIES), strict=True)])  # fmt: skip
    volumes = {"attenuation": att, "energies": ENERGIES,
               "edge_energy": np.where(ph == Phase.NMC, 8340.0, np.nan)}  # fmt: skip
    fbp = {"reconstruct": reconstruct_fbp, "filter_name": "hann", "segment_angles": {0: ANGLES}}
    runs = {}
    for name, extra, pvc in (("fbp", fbp, True), ("sirt", {}, True), ("off", fbp, False)):
        tomo = SimpleNamespace(outcome=SimpleNamespace(volumes=volumes), pixel_size_um=0.1,
                               **extra)  # fmt: skip
        cb = Network3DLive(tomo, phase_volume=PhaseVolume(ph, 0.1), split_particles=False,
                           partial_volume_correction=pvc)  # fmt: skip
        cb("start", {"uid": name, "plan_name": "xanes_tomo_scan", "time": 0.0})
        cb("stop", {"uid": "s", "run_start": name, "exit_status": "success", "time": 1.0})
        assert cb.outcome.ok, cb.outcome.errors
        runs[name] = network_results(cb.outcome.model, cb.outcome.phases, "live")[2]
    assert runs["fbp"]["partial_volume_correction"].startswith("geometric transfer matrix")
    assert "combined_uncorrected" in runs["fbp"]["slopes_ev_per_unit_impedance"]
    for name in ("sirt", "off"):  # not an FBP reconstruction / not asked: nothing corrected
        assert runs[name]["partial_volume_correction"] == "none"
        assert "combined_uncorrected" not in runs[name]["slopes_ev_per_unit_impedance"]
