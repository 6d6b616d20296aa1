"""Parallel-beam projections of a volume rotating about its z axis (pure functions).

Geometry: the volume is ``(Z, Y, X)``; the beam travels along +y and the detector
is ``(Z, X)`` (detector column ``u`` = volume column ``x`` at angle 0). The
sample rotates about an axis parallel to z through detector column
``cx = (X - 1) / 2 + center_offset_px`` (and row ``cy = (Y - 1) / 2`` along the
beam). At angle ``theta`` a sample point ``(y, x)`` projects onto column::

    u = cx + (x - cx) cos(theta) - (y - cy) sin(theta)

so ``project(v, 0)`` is ``v.sum(axis=1) * voxel_size_um`` and a feature on the
rotation axis stays at column ``cx`` at every angle.

Each projection is a sparse matrix (one row per detector column, bilinear
interpolation weights of ray samples spaced one voxel apart) applied to all
slices at once; the matrices are cached per geometry.

`PhantomProjector` renders noiseless, flat-normalised detector images of a
`~ssb_beamline.sim_devices.phantom3d.Phantom3D` (absorption or Fresnel
holograms) for simulated tomography devices.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from scipy import sparse

from ssb_beamline.physics import Phase

from .fresnel import holo_intensity
from .refraction import delta_from_electron_density, phase_attenuation_per_um, wavelength_m

if TYPE_CHECKING:
    from .phantom3d import Phantom3D

__all__ = ["PhantomProjector", "project", "project_many", "ray_matrix"]

logger = logging.getLogger(__name__)


def _check_volume(volume: ArrayLike) -> np.ndarray:
    v = np.asarray(volume)
    if v.ndim != 3 or v.size == 0:
        raise ValueError(
            f"volume must be a non-empty 3-D array (Z, Y, X), got shape {v.shape}; "
            "add a z axis with volume[None] for a single slice"
        )
    if not np.issubdtype(v.dtype, np.number) and v.dtype != np.bool_:
        raise ValueError(f"volume has non-numeric dtype {v.dtype}; pass a float array")
    return v.astype(np.float32, copy=False)


def _check_scalar(value: float, name: str, positive: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not a number") from None
    if not np.isfinite(x) or (positive and x <= 0):
        raise ValueError(f"{name}={value!r} must be finite{' and > 0' if positive else ''}")
    return x


@lru_cache(maxsize=16)
def _ray_matrix_cached(ny: int, nx: int, angle_key: int, offset_key: int) -> sparse.csr_matrix:
    theta = np.deg2rad(angle_key * 1e-9)
    cy, cx = (ny - 1) / 2.0, (nx - 1) / 2.0 + offset_key * 1e-9
    # Ray samples one voxel apart; at angle 0 they fall exactly on the voxel rows.
    half = 0.5 * np.hypot(ny, nx + 2.0 * abs(cx - (nx - 1) / 2.0)) + 2.0
    t = np.arange(np.floor(cy - half), np.ceil(cy + half) + 1.0) - cy
    u = np.arange(nx, dtype=np.float64)[:, None]
    cos, sin = np.cos(theta), np.sin(theta)
    xs = cx + cos * (u - cx) + sin * t[None, :]
    ys = cy - sin * (u - cx) + cos * t[None, :]
    x0, y0 = np.floor(xs), np.floor(ys)
    fx, fy = xs - x0, ys - y0
    rows, cols, vals = [], [], []
    row = np.broadcast_to(np.arange(nx)[:, None], xs.shape)
    corners = [(0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx)]
    corners += [(1, 0, fy * (1 - fx)), (1, 1, fy * fx)]
    for dy, dx, w in corners:
        iy, ix = y0 + dy, x0 + dx
        ok = (iy >= 0) & (iy < ny) & (ix >= 0) & (ix < nx) & (w > 1e-12)
        rows.append(row[ok])
        cols.append((iy[ok] * nx + ix[ok]).astype(np.int64))
        vals.append(w[ok].astype(np.float32))
    m = sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(nx, ny * nx)
    )
    return m.tocsr()


def ray_matrix(
    ny: int, nx: int, angle_deg: float, center_offset_px: float = 0.0
) -> sparse.csr_matrix:
    """Sparse ``(X, Y * X)`` matrix of one projection (line integrals in voxels).

    ``ray_matrix(...) @ slice.ravel()`` projects one ``(Y, X)`` slice; multiply
    by the voxel size for a physical path length. Cached per geometry (angle and
    offset rounded to 1e-9).
    """
    angle = _check_scalar(angle_deg, "angle_deg")
    offset = _check_scalar(center_offset_px, "center_offset_px")
    return _ray_matrix_cached(int(ny), int(nx), round(angle * 1e9), round(offset * 1e9))


def project(
    volume: ArrayLike,
    angle_deg: float,
    *,
    voxel_size_um: float,
    center_offset_px: float = 0.0,
) -> np.ndarray:
    """Parallel-beam line integrals of a volume at one rotation angle.

    Parameters
    ----------
    volume : array_like, (Z, Y, X)
        Quantity per voxel (e.g. ``delta``, ``beta`` or an attenuation in 1/um).
    angle_deg : float
        Rotation of the sample about z, degrees (see module docstring).
    voxel_size_um : float
        Voxel edge, um: the integral is in ``volume units * um``.
    center_offset_px : float, default 0
        Rotation axis position relative to the detector centre ``(X - 1) / 2``,
        pixels.

    Returns
    -------
    ndarray of float32, (Z, X)

    Examples
    --------
    >>> v = np.ones((2, 4, 6), np.float32)
    >>> project(v, 0.0, voxel_size_um=0.5)[0].tolist()
    [2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    """
    v = _check_volume(volume)
    vox = _check_scalar(voxel_size_um, "voxel_size_um", positive=True)
    nz, ny, nx = v.shape
    a = ray_matrix(ny, nx, angle_deg, center_offset_px)
    cols = np.ascontiguousarray(v.reshape(nz, ny * nx).T)  # (Y*X, Z)
    return np.ascontiguousarray((a @ cols).T * np.float32(vox), dtype=np.float32)


def project_many(
    volume: ArrayLike,
    angles_deg: Sequence[float] | np.ndarray,
    *,
    voxel_size_um: float,
    center_offset_px: float = 0.0,
) -> np.ndarray:
    """Projections at several angles, ``(A, Z, X)`` float32 (see `project`).

    Examples
    --------
    >>> v = np.zeros((1, 9, 9), np.float32); v[0, 4, 4] = 1.0
    >>> p = project_many(v, [0.0, 90.0], voxel_size_um=1.0)
    >>> np.argmax(p, axis=-1).ravel().tolist()  # on the axis: fixed column
    [4, 4]
    """
    v = _check_volume(volume)
    vox = _check_scalar(voxel_size_um, "voxel_size_um", positive=True)
    angles = np.atleast_1d(np.asarray(angles_deg, dtype=np.float64))
    if angles.ndim != 1:
        raise ValueError(f"angles_deg must be 1-D, got shape {angles.shape}")
    nz, ny, nx = v.shape
    cols = np.ascontiguousarray(v.reshape(nz, ny * nx).T)
    out = np.empty((angles.size, nz, nx), np.float32)
    for i, angle in enumerate(angles):
        out[i] = (ray_matrix(ny, nx, angle, center_offset_px) @ cols).T
    out *= np.float32(vox)
    return out


class PhantomProjector:
    """Noiseless detector images of a 3D phantom at any angle, energy and distance.

    Line integrals of five energy-independent basis volumes (electron density,
    NMC, NMC x SOC, SSE, carbon) are computed once per angle and kept in a
    bounded LRU cache; ``delta`` and ``beta`` projections at any energy are then
    linear combinations of them (exactly the projections of
    `~ssb_beamline.sim_devices.refraction.refractive_index`), so an energy scan
    at a fixed angle costs one projection.

    Parameters
    ----------
    phantom3d : Phantom3D
        The sample; its voxel size is the detector pixel size (magnification 1).
    center_offset_px : float, default 0
        Rotation axis relative to the detector centre, pixels (see `project`).
    cache_size : int, default 256
        Number of angles whose basis projections are cached.

    Examples
    --------
    >>> from ssb_beamline.sim_devices.phantom3d import Phantom3DConfig, make_phantom3d
    >>> ph = make_phantom3d(Phantom3DConfig(shape=(16, 32, 32), n_particles=2, seed=0))
    >>> proj = PhantomProjector(ph)
    >>> img = proj.intensity(30.0, 8400.0)
    >>> img.shape == proj.detector_shape, bool(0 < img.min() <= img.max() <= 1)
    (True, True)
    """

    def __init__(
        self, phantom3d: Phantom3D, *, center_offset_px: float = 0.0, cache_size: int = 256
    ) -> None:
        self.phantom = phantom3d
        self.center_offset_px = _check_scalar(center_offset_px, "center_offset_px")
        if int(cache_size) < 1:
            raise ValueError(f"cache_size={cache_size!r} must be >= 1")
        self._cache_size = int(cache_size)
        self._cache: OrderedDict[float, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        ph = phantom3d.phases
        nmc = ph == Phase.NMC
        soc = np.where(nmc, np.nan_to_num(phantom3d.soc), 0.0)
        basis = [phantom3d.electron_density, nmc, soc, ph == Phase.SSE, ph == Phase.CARBON]
        nz, ny, nx = ph.shape
        stack = np.stack([np.asarray(b, np.float32) for b in basis])  # (5, Z, Y, X)
        self._cols = np.ascontiguousarray(stack.reshape(5 * nz, ny * nx).T)

    @property
    def detector_shape(self) -> tuple[int, int]:
        """Detector image shape ``(Z, X)``, pixels."""
        nz, _, nx = self.phantom.shape
        return nz, nx

    @property
    def pixel_size_um(self) -> float:
        """Detector pixel size at the sample, um (the phantom's voxel size)."""
        return float(self.phantom.voxel_size_um)

    def _basis(self, angle_deg: float) -> np.ndarray:
        """Basis line integrals ``(5, Z, X)`` at an angle (cached), voxel units * um."""
        key = round(_check_scalar(angle_deg, "angle_deg"), 6)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        nz, ny, nx = self.phantom.shape
        a = ray_matrix(ny, nx, key, self.center_offset_px)
        out = (a @ self._cols).T.reshape(5, nz, nx) * np.float32(self.pixel_size_um)
        out = np.ascontiguousarray(out, dtype=np.float32)
        with self._lock:
            self._cache[key] = out
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return out

    def projections(self, angle_deg: float, energy_ev: float) -> tuple[np.ndarray, np.ndarray]:
        """Line integrals of ``delta`` and ``beta`` along the beam, um, ``(Z, X)`` float32."""
        b = self._basis(angle_deg)
        delta = delta_from_electron_density(b[0], energy_ev)
        carbon_density = self.phantom.config.carbon_density_g_cm3
        a, slope, mu_sse, mu_c = phase_attenuation_per_um(energy_ev, carbon_density)
        mu_t = a * b[1] + slope * b[2] + mu_sse * b[3] + mu_c * b[4]  # int(mu) dz
        beta = mu_t * (1e6 * wavelength_m(energy_ev) / (4 * np.pi))
        return delta, beta.astype(np.float32)

    def intensity(
        self, angle_deg: float, energy_ev: float, propagation_distance_m: float = 0.0
    ) -> np.ndarray:
        """Flat-normalised detector image ``(Z, X)`` float32 (no noise).

        Parameters
        ----------
        angle_deg : float
            Sample rotation about z, degrees.
        energy_ev : float
            Photon energy, eV.
        propagation_distance_m : float, default 0
            Effective sample-detector distance, m. 0 gives absorption contrast
            ``exp(-2 k int(beta))``; > 0 a Fresnel hologram (`holo_intensity`).

        Returns
        -------
        ndarray of float32, (Z, X)
            Intensity, 1 where the beam misses the sample.
        """
        delta, beta = self.projections(angle_deg, energy_ev)
        if propagation_distance_m == 0:
            k_per_um = 2 * np.pi / (wavelength_m(energy_ev) * 1e6)
            return np.exp(-2.0 * k_per_um * beta).astype(np.float32)
        return holo_intensity(
            delta, beta, energy_ev, propagation_distance_m, self.pixel_size_um * 1e-6
        )
