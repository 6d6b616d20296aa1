"""Tests for ssb_beamline.analysis.phase_retrieval against a Fresnel forward model.

The object (homogeneous spheres, projected thickness supersampled 4 x 4 per pixel)
is propagated here with ``exp(-i pi lambda z f^2)`` on a 4x zero-phase padded grid.
Measured (worst / RMS error inside the spheres, relative to the maximum): Paganin
thickness 1.8 % / 0.8 % (17 keV, 100 nm, 1 mm) and 2.6 % / 1.6 % (8 keV, 100 nm,
0.5 mm; the TIE error grows with z); CTF with delta/beta coupling 1.3 % / 0.8 %
(4 distances 1-3.5 mm) and 3.0 % / 1.5 % (3 distances 5-11 mm); pure-phase CTF
on a beta = 0 object 2.9 % / 2.2 % (mean phase removed).
"""

from __future__ import annotations

import numpy as np
import pytest

from ssb_beamline.analysis.phase_retrieval import (
    ctf_phase,
    delta_from_electron_density,
    electron_density_from_delta,
    paganin_phase,
    paganin_thickness,
    phase_to_delta_projection,
    wavelength_m,
)

N = 128


def thickness(radius_m, pixel_m, centres=((0.0, 0.0),), n=N, sub=4):
    """Projected thickness (m) of spheres, supersampled ``sub`` x ``sub`` per pixel."""
    o = (np.arange(sub) + 0.5) / sub - 0.5
    yy, xx = np.indices((n, n)) - (n - 1) / 2
    t = np.zeros((n, n))
    for cy, cx in centres:
        for dy in o:
            for dx in o:
                r2 = ((yy + dy - cy) ** 2 + (xx + dx - cx) ** 2) * pixel_m**2
                t += 2 * np.sqrt(np.clip(radius_m**2 - r2, 0, None))
    return t / sub**2


def propagate(t, delta, beta, z, energy_ev, pixel_m, pad=4):
    """Intensity at ``z`` behind an object of thickness ``t`` (plane wave, Fresnel)."""
    lam = wavelength_m(energy_ev)
    k = 2 * np.pi / lam
    n, m = t.shape[0], pad * t.shape[0]
    s = (m - n) // 2
    psi = np.ones((m, m), complex)
    psi[s : s + n, s : s + n] = np.exp(-k * beta * t - 1j * k * delta * t)
    f = np.fft.fftfreq(m, pixel_m)
    prop = np.exp(-1j * np.pi * lam * z * (f[:, None] ** 2 + f[None] ** 2))
    return (np.abs(np.fft.ifft2(np.fft.fft2(psi) * prop)) ** 2)[s : s + n, s : s + n]


def rel_errors(got, truth, inside):
    scale = np.abs(truth).max()
    d = (got - truth)[inside]
    return np.abs(d).max() / scale, np.sqrt(np.mean(d**2)) / scale


# --------------------------------------------------------------------------- Paganin
@pytest.mark.parametrize(
    ("energy", "pixel", "z", "delta", "beta"),
    [
        (17000.0, 1e-7, 1e-3, 1.0e-5, 2.5e-7),  # ~NMC811 at ID16A energies
        (8000.0, 1e-7, 0.5e-3, 4.0e-5, 2.0e-6),  # error grows with z (TIE regime)
    ],
)
def test_paganin_recovers_thickness(energy, pixel, z, delta, beta):
    t = thickness(40 * pixel / 2, pixel)
    img = propagate(t, delta, beta, z, energy, pixel).astype(np.float32)
    got = paganin_thickness(
        img, delta_beta=delta / beta, distance_m=z, energy_ev=energy, pixel_size_m=pixel, beta=beta
    )
    assert got.dtype == np.float32 and got.shape == img.shape
    worst, rms = rel_errors(got, t, t > 0.3 * t.max())
    assert worst < 0.03 and rms < 0.02
    assert got.sum() == pytest.approx(t.sum(), rel=0.01)
    # phase = -k delta T
    phi = paganin_phase(
        img, delta_beta=delta / beta, distance_m=z, energy_ev=energy, pixel_size_m=pixel
    )
    k = 2 * np.pi / wavelength_m(energy)
    np.testing.assert_allclose(phi, -k * delta * got, rtol=1e-4, atol=1e-5)


def test_paganin_is_vectorised_over_projections():
    px, z, e = 1e-7, 1e-3, 17000.0
    frames = np.stack(
        [
            propagate(thickness(1.5e-6, px, ((dy, -dy),)), 1e-5, 2.5e-7, z, e, px)
            for dy in (-20.0, 0.0, 15.0)
        ]
    ).astype(np.float32)
    kw = {"delta_beta": 40.0, "distance_m": z, "energy_ev": e, "pixel_size_m": px}
    batch = paganin_phase(frames.reshape(3, 1, N, N), **kw)
    assert batch.shape == (3, 1, N, N)
    for i in range(3):
        np.testing.assert_allclose(batch[i, 0], paganin_phase(frames[i], **kw), atol=1e-5)


# --------------------------------------------------------------------------- CTF
@pytest.mark.parametrize(
    ("distances", "max_worst"),
    [((1.0e-3, 1.4e-3, 2.2e-3, 3.5e-3), 0.02), ((5e-3, 7e-3, 11e-3), 0.04)],
)
def test_ctf_homogeneous_recovers_phase(distances, max_worst):
    px, e, delta, beta = 1e-7, 17000.0, 1e-6, 2.5e-8  # weak object, phi_max = -0.34 rad
    t = thickness(2e-6, px)
    phi = -2 * np.pi / wavelength_m(e) * delta * t
    stack = np.stack([propagate(t, delta, beta, z, e, px) for z in distances])
    got = ctf_phase(stack, distances, e, px, delta_beta=delta / beta)
    assert got.dtype == np.float32 and got.shape == t.shape
    worst, rms = rel_errors(got, phi, t > 0.3 * t.max())
    assert worst < max_worst and rms < max_worst / 2


def test_ctf_pure_phase_object():
    px, e, delta = 1e-7, 17000.0, 1e-6
    zs = (1.0e-3, 1.4e-3, 2.2e-3, 3.5e-3)
    t = thickness(2e-6, px)
    phi = -2 * np.pi / wavelength_m(e) * delta * t
    stack = np.stack([propagate(t, delta, 0.0, z, e, px) for z in zs])[:, None]
    got = ctf_phase(stack, zs, e, px)[0]
    got -= got[:4, :4].mean()  # the mean phase is not measured without absorption coupling
    worst, _ = rel_errors(got, phi, t > 0.3 * t.max())
    assert worst < 0.04


@pytest.mark.parametrize(
    ("shape", "distances", "message"),
    [
        ((1, 8, 8), [1e-3], r"2\+ distances.*use paganin_phase"),
        ((8, 8), [1e-3, 2e-3], r"shape \(\.\.\., Y, X\)"),
        ((2, 8, 8), [1e-3, 2e-3, 3e-3], r"3 distances for 2 intensity blocks"),
        ((2, 8, 8), [1e-3, 1e-3], r"must be distinct"),
        ((2, 8, 8), [1e-3, -2e-3], r"finite and > 0"),
    ],
)
def test_ctf_bad_input(shape, distances, message):
    with pytest.raises(ValueError, match=message):
        ctf_phase(np.ones(shape), distances, 17000.0, 1e-7)


def test_bad_parameters_and_data():
    img = np.ones((8, 8))
    kw = {"delta_beta": 40.0, "distance_m": 1e-3, "energy_ev": 17000.0, "pixel_size_m": 1e-7}
    with pytest.raises(ValueError, match=r"distance_m=-1.*finite positive"):
        paganin_phase(img, **{**kw, "distance_m": -1})
    with pytest.raises(ValueError, match=r"energy_ev=0 must be"):
        paganin_phase(img, **{**kw, "energy_ev": 0})
    with pytest.raises(ValueError, match=r"NaN/inf"):
        paganin_phase(np.full((8, 8), np.nan), **kw)
    with pytest.raises(ValueError, match=r"alpha=-1"):
        ctf_phase(np.ones((2, 8, 8)), [1e-3, 2e-3], 17000.0, 1e-7, alpha=-1)


# --------------------------------------------------------------------------- delta / density
def test_electron_density_round_trip_and_water():
    xraydb = pytest.importorskip("xraydb")
    rng = np.random.default_rng(0)
    delta = rng.uniform(1e-7, 5e-5, (4, 5))
    for e in (8000.0, 17050.0):
        ne = electron_density_from_delta(delta, e)
        np.testing.assert_allclose(delta_from_electron_density(ne, e), delta, rtol=1e-14)
    f32 = electron_density_from_delta(delta.astype(np.float32), 17050.0)
    assert f32.dtype == np.float32
    # water: 3.343e29 electrons / m^3 = 334.3 / nm^3 (10 electrons per H2O, 1 g/cm^3)
    d_water = xraydb.xray_delta_beta("H2O", 1.0, 17050.0)[0]
    assert float(electron_density_from_delta(d_water, 17050.0)) == pytest.approx(334.3, rel=0.01)


def test_phase_to_delta_then_fbp_gives_delta():
    """Holotomography chain: phase projections -> int delta dl (voxels) -> FBP -> delta."""
    from ssb_beamline.analysis.tomography import reconstruct_fbp

    e, px, delta, r = 17050.0, 1e-7, 1.2e-5, 10.0  # sphere radius in voxels
    ang = np.arange(0, 180, 1.0)
    u = np.arange(48) - 23.5
    zz = np.arange(5) - 2.0
    chord = 2 * np.sqrt(np.clip(r * r - u[None, :] ** 2 - zz[:, None] ** 2, 0, None)) * px
    phase = np.broadcast_to(-2 * np.pi / wavelength_m(e) * delta * chord, (ang.size, 5, 48))
    proj = phase_to_delta_projection(phase.astype(np.float32), e, pixel_size_m=px)
    vol = reconstruct_fbp(proj, ang, 23.5, filter_name="ramp")
    assert vol[2, 20:28, 20:28].mean() == pytest.approx(delta, rel=0.01)
    ne = electron_density_from_delta(vol[2, 24, 24], e)
    assert ne == pytest.approx(float(electron_density_from_delta(delta, e)), rel=0.02)
