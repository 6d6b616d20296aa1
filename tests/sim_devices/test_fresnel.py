"""Exit wave and Fresnel propagation against analytic laws."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ssb_beamline.sim_devices.fresnel import (
    exit_wave,
    fresnel_number,
    fresnel_propagate,
    holo_intensity,
)
from ssb_beamline.sim_devices.refraction import wavelength_m

E = 17000.0  # eV
DX = 1e-7  # m (0.1 um pixels)


def smooth_random(shape, sigma_px, seed):
    """Periodic smooth random field (Gaussian low-pass of white noise), unit max."""
    rng = np.random.default_rng(seed)
    spec = np.fft.fft2(rng.standard_normal(shape))
    fy, fx = np.fft.fftfreq(shape[-2])[:, None], np.fft.fftfreq(shape[-1])[None, :]
    f = np.fft.ifft2(spec * np.exp(-2 * (np.pi * sigma_px) ** 2 * (fx**2 + fy**2))).real
    return f / np.abs(f).max()


def test_exit_wave_phase_and_attenuation():
    delta = np.array([[0.0, 1e-5], [2e-5, 3e-5]])  # um of integrated delta
    beta = np.array([[0.0, 1e-6], [0.0, 5e-6]])
    psi = exit_wave(delta, beta, E)
    assert psi.dtype == np.complex64 and psi.shape == (2, 2)
    k_um = 2 * np.pi / (wavelength_m(E) * 1e6)
    np.testing.assert_allclose(np.angle(psi), -k_um * delta, rtol=1e-5, atol=1e-7)
    # |psi|^2 = exp(-2 k int(beta)) = exp(-mu t), Beer-Lambert.
    np.testing.assert_allclose(np.abs(psi) ** 2, np.exp(-2 * k_um * beta), rtol=1e-6)


def test_zero_distance_is_identity():
    rng = np.random.default_rng(0)
    wave = (rng.random((3, 16, 20)) + 1j * rng.random((3, 16, 20))).astype(np.complex64)
    out = fresnel_propagate(wave, 0.0, E, DX)
    np.testing.assert_array_equal(out, wave)
    assert out is not wave
    tiny = fresnel_propagate(wave, 1e-12, E, DX, pad=False)  # the FFT path itself
    np.testing.assert_allclose(tiny, wave, atol=1e-5)


@pytest.mark.parametrize("distance", [1e-4, 1e-3, 5e-3])
def test_energy_is_conserved(distance):
    shape = (64, 96)
    phase = 0.8 * smooth_random(shape, 2.0, 1)
    amp = np.exp(-0.3 * np.clip(smooth_random(shape, 3.0, 2), 0, None))
    wave = amp * np.exp(1j * phase)
    out = fresnel_propagate(wave, distance, E, DX, pad=False)
    assert out.dtype == np.complex64 and out.shape == shape
    p_in, p_out = np.sum(np.abs(wave) ** 2), np.sum(np.abs(out) ** 2)
    assert p_out == pytest.approx(p_in, rel=1e-5)  # unitary on the periodic grid
    # With edge padding (an object in a flat field) the crop keeps ~all the energy.
    taper = np.outer(np.hanning(64), np.hanning(96))
    obj = np.exp((1j * phase - 0.2) * taper)
    padded = fresnel_propagate(obj, distance, E, DX, pad=True)
    assert np.sum(np.abs(padded) ** 2) == pytest.approx(np.sum(np.abs(obj) ** 2), rel=0.01)


@pytest.mark.parametrize("distance", [5e-4, 2e-3])
def test_weak_phase_object_follows_ctf(distance):
    shape = (128, 128)
    phi = 5e-3 * smooth_random(shape, 1.5, 3)  # rad: weak, yet above float32 rounding
    intensity = holo_intensity(
        -phi / (2 * np.pi / (wavelength_m(E) * 1e6)),  # int(delta) giving phase phi
        np.zeros(shape),
        E,
        distance,
        DX,
        pad=False,
    )
    fy = np.fft.fftfreq(shape[0], d=DX)[:, None]
    fx = np.fft.fftfreq(shape[1], d=DX)[None, :]
    ctf = 2 * np.sin(np.pi * wavelength_m(E) * distance * (fx**2 + fy**2))
    measured = np.fft.fft2(intensity - 1.0)
    predicted = ctf * np.fft.fft2(phi)
    err = np.abs(measured - predicted).max() / np.abs(predicted).max()
    assert err < 0.01
    assert np.abs(predicted).max() > 0.1 * np.abs(np.fft.fft2(phi)).max()  # real contrast


def test_leading_axes_are_batched():
    rng = np.random.default_rng(4)
    waves = np.exp(1j * rng.random((2, 3, 24, 32)) * 0.5).astype(np.complex64)
    batch = fresnel_propagate(waves, 1e-3, E, DX)
    for i in range(2):
        for j in range(3):
            single = fresnel_propagate(waves[i, j], 1e-3, E, DX)
            np.testing.assert_allclose(batch[i, j], single, atol=1e-5)


def test_fresnel_number_and_undersampling_warning(caplog):
    lam = wavelength_m(E)
    assert fresnel_number(DX, 1e-3, E) == pytest.approx(DX**2 / (lam * 1e-3))
    assert fresnel_number(DX, 0.0, E) == np.inf
    with caplog.at_level(logging.WARNING, logger="ssb_beamline.sim_devices.fresnel"):
        fresnel_propagate(np.ones((8, 8), np.complex64), 1.0, E, DX, pad=False)
    assert "undersampled" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"distance_m": -1e-3}, "distance_m"),
        ({"distance_m": np.nan}, "distance_m"),
        ({"distance_m": np.inf}, "distance_m"),
        ({"energy_ev": 0.0}, "energy_ev"),
        ({"energy_ev": np.nan}, "energy_ev"),
        ({"pixel_size_m": 0.0}, "pixel_size_m"),
        ({"wave": np.full((4, 4), np.nan + 0j)}, "wave"),
        ({"wave": np.ones(4)}, "wave"),
    ],
)
def test_bad_inputs_raise(kwargs, match):
    args = {"wave": np.ones((4, 4), np.complex64), "distance_m": 1e-3, "energy_ev": E}
    args |= {"pixel_size_m": DX} | kwargs
    with pytest.raises(ValueError, match=match):
        fresnel_propagate(**args)


def test_exit_wave_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        exit_wave(np.zeros((2, 2)), np.zeros((2, 3)), E)
    with pytest.raises(ValueError, match="delta_projection_um"):
        exit_wave(np.array([[np.inf]]), np.zeros((1, 1)), E)
