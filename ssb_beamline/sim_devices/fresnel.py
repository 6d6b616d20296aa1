"""Exit wave and near-field (Fresnel) propagation for holotomography (pure functions).

Projection approximation: a sample with projected refractive-index decrement
``int(delta) dz`` and absorption index ``int(beta) dz`` turns a unit plane wave
into ``psi = exp(-i k int(delta) - k int(beta))`` (``k = 2 pi / lambda``), so
``|psi|^2 = exp(-mu t)``. Free-space propagation over ``z`` multiplies the
spectrum by the Fresnel transfer function ``exp(-i pi lambda z (fx^2 + fy^2))``
(the constant phase ``exp(i k z)`` is dropped). For a weak pure-phase object
``psi = exp(i phi)`` the intensity follows the contrast transfer function,
``I_hat(f) = delta(f) + 2 phi_hat(f) sin(pi lambda z |f|^2)``.

The transfer function is sampled on the (padded) detector grid; it is accurate
while ``lambda z <= N dx^2`` (``N`` the padded width), which is logged otherwise.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import ArrayLike
from scipy import fft as sp_fft

from .refraction import wavelength_m

__all__ = ["exit_wave", "fresnel_number", "fresnel_propagate", "holo_intensity"]

logger = logging.getLogger(__name__)


def _positive(value: float, name: str, allow_zero: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not a number") from None
    if not np.isfinite(x) or x < 0 or (x == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}={value!r} must be finite and {bound}")
    return x


def _finite_array(a: ArrayLike, name: str, min_ndim: int = 2) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim < min_ndim or arr.size == 0:
        raise ValueError(
            f"{name} must be a non-empty array with >= {min_ndim} dims (..., ny, nx), "
            f"got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(
            f"{name} contains NaN or inf; replace them (e.g. np.nan_to_num) before propagating"
        )
    return arr


def fresnel_number(pixel_size_m: float, distance_m: float, energy_ev: float) -> float:
    """Pixel Fresnel number ``dx^2 / (lambda z)`` (inf for ``z = 0``)."""
    dx = _positive(pixel_size_m, "pixel_size_m")
    z = _positive(distance_m, "distance_m", allow_zero=True)
    return float("inf") if z == 0 else dx * dx / (wavelength_m(energy_ev) * z)


def exit_wave(
    delta_projection_um: ArrayLike, beta_projection_um: ArrayLike, energy_ev: float
) -> np.ndarray:
    """Exit wave ``exp(-i k int(delta) - k int(beta))`` behind the sample.

    Parameters
    ----------
    delta_projection_um, beta_projection_um : array_like, same shape
        Line integrals of ``delta`` and ``beta`` along the beam, um (e.g. from
        `ssb_beamline.sim_devices.projection.project`).
    energy_ev : float
        Photon energy, eV.

    Returns
    -------
    ndarray of complex64

    Examples
    --------
    >>> psi = exit_wave(np.zeros((2, 2)), np.zeros((2, 2)), 17000.0)
    >>> bool(np.allclose(psi, 1.0))
    True
    """
    d = _finite_array(delta_projection_um, "delta_projection_um", 0).astype(np.float64)
    b = _finite_array(beta_projection_um, "beta_projection_um", 0).astype(np.float64)
    if d.shape != b.shape:
        raise ValueError(
            f"delta_projection_um {d.shape} and beta_projection_um {b.shape} must have "
            "the same shape; project both on the same detector grid"
        )
    k_per_um = 2 * np.pi / (wavelength_m(energy_ev) * 1e6)
    return np.exp(-k_per_um * (b + 1j * d)).astype(np.complex64)


def fresnel_propagate(
    wave: ArrayLike,
    distance_m: float,
    energy_ev: float,
    pixel_size_m: float,
    pad: bool = True,
) -> np.ndarray:
    """Propagate a wave field over ``distance_m`` (Fresnel transfer function).

    Parameters
    ----------
    wave : array_like, (..., ny, nx)
        Complex field; the last two axes are propagated, leading axes are batched.
    distance_m : float
        Propagation distance, m (``>= 0``; 0 returns a copy).
    energy_ev : float
        Photon energy, eV.
    pixel_size_m : float
        Detector (sample-plane) pixel size, m.
    pad : bool, default True
        Pad each image to about twice its size with edge values before the FFT
        (suppresses wrap-around from the periodic boundary), then crop.

    Returns
    -------
    ndarray of complex64, same shape as ``wave``

    Raises
    ------
    ValueError
        Negative or non-finite distance, non-positive energy or pixel size,
        non-finite wave, fewer than 2 dimensions.
    """
    psi = _finite_array(wave, "wave").astype(np.complex64)
    z = _positive(distance_m, "distance_m", allow_zero=True)
    dx = _positive(pixel_size_m, "pixel_size_m")
    lam = wavelength_m(energy_ev)
    if z == 0:
        return psi.copy()
    ny, nx = psi.shape[-2:]
    if pad:
        py, px = sp_fft.next_fast_len(2 * ny) - ny, sp_fft.next_fast_len(2 * nx) - nx
        widths = [(0, 0)] * (psi.ndim - 2) + [(py // 2, py - py // 2), (px // 2, px - px // 2)]
        field = np.pad(psi, widths, mode="edge")
    else:
        py = px = 0
        field = psi
    my, mx = field.shape[-2:]
    if lam * z > min(my, mx) * dx * dx:
        logger.warning(
            "Fresnel transfer function undersampled: lambda z = %.3g m^2 > N dx^2 = %.3g m^2",
            lam * z,
            min(my, mx) * dx * dx,
        )
    fy = sp_fft.fftfreq(my, d=dx)[:, None]
    fx = sp_fft.fftfreq(mx, d=dx)[None, :]
    kernel = np.exp(-1j * np.pi * lam * z * (fy**2 + fx**2)).astype(np.complex64)
    out = sp_fft.ifft2(sp_fft.fft2(field, axes=(-2, -1)) * kernel, axes=(-2, -1))
    out = out[..., py // 2 : py // 2 + ny, px // 2 : px // 2 + nx]
    return np.ascontiguousarray(out, dtype=np.complex64)


def holo_intensity(
    delta_proj: ArrayLike,
    beta_proj: ArrayLike,
    energy_ev: float,
    distance_m: float,
    pixel_size_m: float,
    pad: bool = True,
) -> np.ndarray:
    """Near-field hologram ``|P_z exp(-i k int(delta) - k int(beta))|^2`` (flat = 1).

    Parameters
    ----------
    delta_proj, beta_proj : array_like, (..., ny, nx)
        Line integrals of ``delta`` and ``beta``, um.
    energy_ev, distance_m, pixel_size_m : float
        Photon energy (eV), effective propagation distance (m), pixel size (m).
    pad : bool, default True
        See `fresnel_propagate`.

    Returns
    -------
    ndarray of float32

    Examples
    --------
    >>> i = holo_intensity(np.zeros((8, 8)), np.zeros((8, 8)), 17000.0, 1e-3, 1e-7)
    >>> bool(np.allclose(i, 1.0, atol=1e-5))
    True
    """
    psi = fresnel_propagate(
        exit_wave(delta_proj, beta_proj, energy_ev), distance_m, energy_ev, pixel_size_m, pad
    )
    return (psi.real**2 + psi.imag**2).astype(np.float32)
