"""Propagation-based phase retrieval (holotomography) and electron density from delta.

Conventions: refractive index ``n = 1 - delta + i beta``; the exit wave of an
object of projected ``delta`` / ``beta`` is ``exp(-B + i phi)`` with
``phi = -k int(delta dl)`` (negative for matter) and ``B = k int(beta dl)``,
``k = 2 pi / lambda``; free-space propagation over ``z`` multiplies its spectrum
by ``exp(-i pi lambda z f^2)`` (``f`` in cycles per metre).  Intensities are
flat-field normalised (1 = open beam) and, for several distances, already
registered and scaled to one magnification.

* :func:`paganin_thickness` / :func:`paganin_phase`: single distance,
  homogeneous object (Paganin et al., J. Microsc. 206, 33, 2002).
* :func:`ctf_phase`: two or more distances, contrast-transfer-function least
  squares (Cloetens et al., APL 75, 2912, 1999; Zabler et al., RSI 76, 073705,
  2005), pure-phase or with the homogeneous ``delta / beta`` coupling.
* :func:`phase_to_delta_projection`, :func:`electron_density_from_delta` and
  :func:`delta_from_electron_density`: phase -> ``int delta dl`` (reconstruct it
  with :func:`~ssb_beamline.analysis.tomography.reconstruct_fbp`) -> ``delta``
  -> electron density ``n_e = 2 pi delta / (r_e lambda^2)``.

All filters are applied to whole stacks ``(..., Y, X)`` at once (chunked over
the leading axes), float32, with edge-padded real FFTs (``scipy.fft``,
``workers`` threads).
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import fft as sfft

from ssb_beamline.physics import (
    _positive,  # the one check of a positive quantity
    delta_from_electron_density,
    electron_density_from_delta,
    wavelength_m,
)

__all__ = [
    "ctf_phase",
    "delta_from_electron_density",
    "electron_density_from_delta",
    "paganin_phase",
    "paganin_thickness",
    "phase_to_delta_projection",
    "wavelength_m",
]

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 256 << 20


def _images(a: ArrayLike, name: str, min_ndim: int = 2) -> NDArray[np.float32]:
    arr = np.asarray(a)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} has non-numeric dtype {arr.dtype}; pass a numeric array")
    if arr.ndim < min_ndim or arr.size == 0 or min(arr.shape[-2:]) < 2:
        raise ValueError(f"{name} must have shape (..., Y, X) with Y, X >= 2; got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN/inf; replace bad pixels (e.g. median filter) first")
    return arr.astype(np.float32, copy=False)


def _grid(shape: tuple[int, int], pad: int | None) -> tuple[tuple[int, int], tuple[int, int]]:
    """Padded FFT shape and the offset of the image inside it."""
    ny, nx = shape
    py, px = (ny // 2, nx // 2) if pad is None else (int(pad), int(pad))
    if py < 0:
        raise ValueError(f"pad={pad} must be >= 0 pixels")
    full = (sfft.next_fast_len(ny + 2 * py, real=True), sfft.next_fast_len(nx + 2 * px, real=True))
    return full, ((full[0] - ny) // 2, (full[1] - nx) // 2)


def _freq2(full: tuple[int, int], pixel_size_m: float) -> NDArray[np.float64]:
    """``f^2`` (cycles^2 / m^2) on the rfft2 grid of ``full``."""
    fy = sfft.fftfreq(full[0], d=pixel_size_m)
    fx = sfft.rfftfreq(full[1], d=pixel_size_m)
    return fy[:, None] ** 2 + fx[None, :] ** 2


def _filter_stack(
    stacks: list[NDArray[np.float32]],
    kernels: list[NDArray],
    full: tuple[int, int],
    off: tuple[int, int],
    workers: int | None,
    subtract: float = 0.0,
) -> NDArray[np.float32]:
    """``irfft2(sum_i rfft2(pad(stacks[i] - subtract)) * kernels[i])`` cropped, chunked."""
    shape = stacks[0].shape
    ny, nx = shape[-2:]
    flat = [s.reshape(-1, ny, nx) for s in stacks]
    n = flat[0].shape[0]
    out = np.empty((n, ny, nx), np.float32)
    step = max(1, _CHUNK_BYTES // (8 * full[0] * (full[1] // 2 + 1) * (len(stacks) + 1)))
    widths = ((0, 0), (off[0], full[0] - ny - off[0]), (off[1], full[1] - nx - off[1]))
    k32 = [np.asarray(k, np.float32) for k in kernels]
    for i0 in range(0, n, step):
        acc = None
        for s, k in zip(flat, k32, strict=True):
            blk = np.pad(s[i0 : i0 + step] - np.float32(subtract), widths, mode="edge")
            spec = sfft.rfft2(blk, workers=workers)
            spec *= k
            acc = spec if acc is None else acc + spec
        res = sfft.irfft2(acc, s=full, workers=workers)
        out[i0 : i0 + step] = res[:, off[0] : off[0] + ny, off[1] : off[1] + nx]
    return out.reshape(shape)


def _paganin_filtered(
    intensity: ArrayLike,
    delta_beta: float,
    distance_m: float,
    energy_ev: float,
    pixel_size_m: float,
    pad: int | None,
    workers: int | None,
) -> NDArray[np.float32]:
    img = _images(intensity, "intensity")
    db = _positive(delta_beta, "delta_beta", "40.0")
    z = _positive(distance_m, "distance_m", "0.005")
    px = _positive(pixel_size_m, "pixel_size_m", "1e-7")
    lam = wavelength_m(energy_ev)
    full, off = _grid(img.shape[-2:], pad)
    kernel = 1.0 / (1.0 + np.pi * lam * z * db * _freq2(full, px))
    out = _filter_stack([img], [kernel], full, off, workers)
    bad = out <= 0
    if bad.any():
        logger.warning("%d filtered pixel(s) <= 0 clipped (check flat-field)", int(bad.sum()))
        np.maximum(out, np.float32(1e-6), out=out)
    return out


def paganin_thickness(
    intensity: ArrayLike,
    *,
    delta_beta: float,
    distance_m: float,
    energy_ev: float,
    pixel_size_m: float,
    beta: float,
    pad: int | None = None,
    workers: int | None = -1,
) -> NDArray[np.float32]:
    """Projected thickness (m) of a homogeneous object from one distance (Paganin 2002).

    ``T = -ln(F^-1[F[I] / (1 + pi lambda z (delta/beta) f^2)]) / mu`` with
    ``mu = 4 pi beta / lambda``.

    Parameters
    ----------
    intensity : array_like, shape (..., Y, X)
        Flat-field-normalised intensity; leading axes (projections) are batched.
    delta_beta : float
        ``delta / beta`` of the material (e.g. ~40 for NMC811 at 17 keV).
    distance_m : float
        (Effective) propagation distance in metres.
    energy_ev : float
        Photon energy in eV.
    pixel_size_m : float
        (Effective) pixel size in metres.
    beta : float
        Imaginary index decrement of the material (sets ``mu``).
    pad : int, optional
        Edge padding per side in pixels (default: half the image size).
    workers : int, default -1
        ``scipy.fft`` threads (-1: all cores).

    Returns
    -------
    numpy.ndarray of float32, same shape as ``intensity``

    Examples
    --------
    >>> flat = np.full((2, 32, 32), np.exp(-0.5), np.float32)   # uniform slab
    >>> t = paganin_thickness(flat, delta_beta=40, distance_m=0.005, energy_ev=17000,
    ...                       pixel_size_m=1e-7, beta=1e-7)
    >>> round(float(t[0, 5, 5] * 4 * np.pi * 1e-7 / wavelength_m(17000)), 4)   # mu T
    0.5
    """
    b = _positive(beta, "beta", "2.5e-7")
    filt = _paganin_filtered(
        intensity, delta_beta, distance_m, energy_ev, pixel_size_m, pad, workers
    )
    mu = 4 * np.pi * b / wavelength_m(energy_ev)
    return np.multiply(np.log(filt, out=filt), np.float32(-1.0 / mu), out=filt)


def paganin_phase(
    intensity: ArrayLike,
    *,
    delta_beta: float,
    distance_m: float,
    energy_ev: float,
    pixel_size_m: float,
    pad: int | None = None,
    workers: int | None = -1,
) -> NDArray[np.float32]:
    """Phase ``phi = -k int(delta dl) = (delta / 2 beta) ln(Paganin-filtered I)`` (radians).

    Same filter and parameters as :func:`paganin_thickness`, without ``beta``.

    Parameters
    ----------
    intensity : array_like
        Flat-field-corrected intensity, ``(..., Y, X)``.
    delta_beta : float
        Ratio delta / beta of the (single) material.
    distance_m : float
        Effective propagation distance, m.
    energy_ev : float
        Photon energy, eV.
    pixel_size_m : float
        Pixel size at the sample, m.
    pad : int, optional
        Padding on each side, pixels (default half the image).
    workers : int, optional
        FFT workers (``-1``: all cores).

    Examples
    --------
    >>> img = np.full((32, 32), np.exp(-0.5), np.float32)
    >>> round(float(paganin_phase(img, delta_beta=40, distance_m=0.005, energy_ev=17000,
    ...                           pixel_size_m=1e-7)[3, 3]), 4)
    -10.0
    """
    filt = _paganin_filtered(
        intensity, delta_beta, distance_m, energy_ev, pixel_size_m, pad, workers
    )
    return np.multiply(np.log(filt, out=filt), np.float32(0.5 * float(delta_beta)), out=filt)


def ctf_phase(
    intensities: ArrayLike,
    distances_m: ArrayLike,
    energy_ev: float,
    pixel_size_m: float,
    *,
    delta_beta: float | None = None,
    alpha: float = 1e-6,
    pad: int | None = None,
    workers: int | None = -1,
) -> NDArray[np.float32]:
    """Multi-distance CTF phase retrieval (least squares over the distances).

    Weak-object model: ``F[I_d - 1] = 2 sin(chi_d) F[phi] - 2 cos(chi_d) F[B]``
    with ``chi_d = pi lambda z_d f^2``.  With ``delta_beta`` the object is taken
    as homogeneous (``B = -phi / delta_beta``) and
    ``F[phi] = sum_d A_d F[I_d - 1] / (2 (sum_d A_d^2 + alpha))`` with
    ``A_d = sin chi_d + cos chi_d / delta_beta``; without it the object is pure
    phase (``A_d = sin chi_d``; the mean phase is then lost).

    Parameters
    ----------
    intensities : array_like, shape (n_dist, ..., Y, X)
        Flat-field-normalised intensities, one block per distance, registered.
    distances_m : array_like, shape (n_dist,)
        Distinct (effective) propagation distances in metres; two or more.
    energy_ev, pixel_size_m : float
        Photon energy (eV) and (effective) pixel size (m).
    delta_beta : float, optional
        Homogeneous-object coupling (recommended when it is known).
    alpha : float, default 1e-6
        Tikhonov regularisation; raise it (1e-4 - 1e-2) for noisy data, at the
        cost of low frequencies (pure-phase case).
    pad, workers
        As for :func:`paganin_thickness`.

    Returns
    -------
    numpy.ndarray of float32, shape (..., Y, X)
        The phase ``phi`` in radians (negative where there is matter).

    Examples
    --------
    >>> stack = np.ones((3, 2, 16, 16), np.float32)         # no object at 3 distances
    >>> float(np.abs(ctf_phase(stack, [1e-3, 2e-3, 4e-3], 17000, 1e-7,
    ...                        delta_beta=40)).max())
    0.0
    """
    img = _images(intensities, "intensities", 3)
    z = np.atleast_1d(np.asarray(distances_m, dtype=np.float64))
    if z.ndim != 1 or z.size < 2 or img.shape[0] == 1:
        raise ValueError(
            f"ctf_phase needs intensities at 2+ distances (got distances {z.tolist()}, "
            f"intensities {img.shape}); for a single distance use paganin_phase / "
            "paganin_thickness, or record 2-4 distances"
        )
    if z.size != img.shape[0]:
        raise ValueError(f"{z.size} distances for {img.shape[0]} intensity blocks (axis 0)")
    if not (np.isfinite(z).all() and (z > 0).all()) or np.unique(z).size != z.size:
        raise ValueError(f"distances_m={z.tolist()} must be distinct, finite and > 0 (metres)")
    lam = wavelength_m(energy_ev)
    full, off = _grid(img.shape[-2:], pad)
    f2 = _freq2(full, _positive(pixel_size_m, "pixel_size_m", "1e-7"))
    chi = np.pi * lam * z[:, None, None] * f2[None]
    a = np.sin(chi)
    if delta_beta is not None:
        a += np.cos(chi) / _positive(delta_beta, "delta_beta", "40.0")
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha={alpha} must be a finite number >= 0, e.g. 1e-6")
    den = 2.0 * ((a * a).sum(axis=0) + alpha)
    den[den == 0] = np.inf  # f = 0 of a pure-phase object without regularisation
    kernels = list(a / den)
    return _filter_stack(list(img), kernels, full, off, workers, subtract=1.0)


def phase_to_delta_projection(
    phase: ArrayLike, energy_ev: float, *, pixel_size_m: float | None = None
) -> NDArray:
    """Projected decrement ``int delta dl = -phase / k`` (metres).

    With ``pixel_size_m`` the result is divided by it (units of voxels), so
    reconstructing it with ``reconstruct_fbp`` gives ``delta`` per voxel.

    Parameters
    ----------
    phase : array_like
        Retrieved phase, radians.
    energy_ev : float
        Photon energy, eV.
    pixel_size_m : float, optional
        Voxel size, m: divide by it (delta per voxel after reconstruction).

    Examples
    --------
    >>> d = phase_to_delta_projection(np.array([-2 * np.pi]), 12398.41984)  # lambda = 1e-10 m
    >>> float(d[0])
    1e-10
    """
    ph = np.asarray(phase)
    out = ph * (-wavelength_m(energy_ev) / (2 * np.pi))
    if pixel_size_m is not None:
        out = out / _positive(pixel_size_m, "pixel_size_m", "1e-7")
    return out.astype(ph.dtype if np.issubdtype(ph.dtype, np.floating) else np.float64)
