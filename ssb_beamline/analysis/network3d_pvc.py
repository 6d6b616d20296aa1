"""Partial-volume correction of the 3D network bins' mean spectra (geometric transfer matrix).

Why: the per-bin trends of the network model are read from each impedance bin's
mean spectrum (:mod:`~ssb_beamline.analysis.network3d_spectra`), and a filtered
back-projection blurs every voxel with its neighbours.  The SOC field of a
particle changes on the voxel scale, so the blur mixes neighbouring bins and
compresses the trend.  Measured noise-free (end-to-end network phantom, truth
phases, 41 angles, ``benchmarks/bench_network3d_blur.py``), seeds 2 / 5 / 7: the
phantom's own attenuation per voxel reads the truth's slopes (combined -0 %,
core-shell -1 %); the Hann-filtered FBP reads combined -14 / -10 / -8 % and
core-shell -17 / -12 / -10 %, the same with 181 angles (not the angular sampling)
and as the phantom's attenuation blurred by a 0.7-voxel Gaussian (-14 / -9 / -10 %,
-17 / -12 / -11 %).  The core bin loses most (seed 2: 0.017 eV), the surface bin
least (0.005 eV), so it is the blur of the SOC field inside the particles, not
partial volume at their surface nor the distances' quantisation.
The plain ramp filter halves the loss (-6 / -8 %) but scatters more: same 12 noise
draws (0.05 s x 10 flats x 41 angles), core-shell std 0.040 / 0.072 / 0.059 against
0.028 / 0.050 / 0.060 eV per unit impedance with Hann, within 30 % in 58 / 42 / 50 %
of the draws against 50 / 67 / 67 %.

Method: the geometric transfer matrix (Rousset, Ma & Evans, J. Nucl. Med. 39, 904
(1998)), the standard partial-volume correction of region means in emission
tomography.  The volume is split into regions (the impedance bins, the NMC voxels
outside any bin, pore, SSE, carbon); each region's indicator is blurred by the
reconstruction's point response ``h``, and ``W[i, j]`` is the mean of region
``j``'s blurred indicator over region ``i``.  The measured region means ``t``
(one spectrum per region) then satisfy ``t = W T`` for the region means ``T``
before the blur, which is solved per energy.  It assumes each region is uniform,
so it corrects the spill *between* regions, not the blur inside one.

The point response is the reconstruction's own: single voxels forward-projected
with the transpose of :func:`~ssb_beamline.analysis.tomography.reconstruct_fbp`'s
back projector and reconstructed by it with the run's angles and filter, averaged
over points at several offsets from the rotation axis (the back projector's linear
interpolation blurs less on the axis; a point on the axis alone left -4 % of a
core-to-shell step uncorrected); :func:`fbp_point_response`.  FBP works slice by
slice, so nothing is blurred along z.  The response holds what the analysis knows
(filter, angles, interpolation), not the optics or the detector.

Measured (``benchmarks/bench_network3d_noise.py``, 0.05 s x 10 flats x 41 angles,
truth phases, seeds 2 / 5 / 7, 24 noise draws each, the same draws for both):

===========================  =====================  =====================
per-bin line (primary)       uncorrected            corrected
===========================  =====================  =====================
noise-free, combined         -14 / -10 / -8 %       +7 / +6 / +7 %
noise-free, core-shell       -17 / -12 / -10 %      +1 / +4 / +9 %
std, combined (eV/unit)      0.055 / 0.043 / 0.054  0.088 / 0.059 / 0.080
std, core-shell              0.040 / 0.044 / 0.050  0.063 / 0.076 / 0.088
within 30 %, combined        96 / 96 / 100 %        79 / 100 / 83 %
within 30 %, core-shell      58 / 79 / 75 %         62 / 58 / 33 %
===========================  =====================  =====================

The correction removes the bias but raises the scatter 1.5-1.8x: undoing the blur
of the innermost bins (82-115 voxels in the core-shell model's [0.8, 1] bin, the
cores of particles 5-8 voxels in radius) amplifies their noise, and that bin's
spectrum carries most of the core-shell slope's noise (seed 7, 8 draws: its edge
scatters by 0.069 eV uncorrected, 0.118 eV corrected, the others by 0.006-0.025).
So the live analysis leaves it off by default (``PVC_DEFAULT`` in
:mod:`ssb_beamline.callbacks.network3d_live`); with one background
slope shared by the bins the corrected reading scatters less (within 30 %:
combined 96 / 100 / 100 %, core-shell 88 / 92 / 71 %), but that is not the
primary reading.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage as ndi

from .tomography import _system_matrix, reconstruct_fbp

__all__ = ["fbp_point_response", "transfer_matrix_means"]

#: Largest ``half_width`` of :func:`fbp_point_response` (the response grid's margin).
MAX_HALF_WIDTH = 8
#: Side of the square slice in which the point response is computed, voxels.
_RESPONSE_GRID = 45
#: Offsets of the points from the rotation axis (voxels): the linear interpolation
#: of the back projector blurs less on the axis, so the response is averaged over
#: points whose rays fall at all sub-pixel phases.
_RESPONSE_POINTS = ((0, 0), (3, 5), (-6, 2), (7, -7), (-2, -9), (10, 4), (-11, -3), (5, 12))


def fbp_point_response(
    angles_deg: ArrayLike, filter_name: str = "hann", *, half_width: int = 4
) -> NDArray[np.float64]:
    """In-slice point response of :func:`reconstruct_fbp` (one voxel in, its blur out).

    Parameters
    ----------
    angles_deg : array_like of float
        The projection angles of the run, degrees.
    filter_name : str
        The reconstruction's filter (``"hann"``, ``"ramp"``, ...).
    half_width : int
        The response is kept on ``(2 half_width + 1)^2`` voxels around the point.

    Returns
    -------
    ndarray of float64, (2 half_width + 1, 2 half_width + 1)
        The response, normalised to unit sum (a uniform region keeps its value).

    Examples
    --------
    >>> h = fbp_point_response(np.linspace(0, 180, 41))
    >>> h.shape, round(float(h.sum()), 6), bool(h[4, 4] == h.max())
    ((9, 9), 1.0, True)
    """
    ang = np.asarray(angles_deg, np.float64)
    n, hw = _RESPONSE_GRID, int(half_width)
    if not 1 <= hw <= MAX_HALF_WIDTH:
        raise ValueError(f"half_width={half_width}; use 1 to {MAX_HALF_WIDTH} voxels")
    back = _system_matrix(n, np.radians(ang), (n - 1) / 2.0, np.arange(n * n))
    points = np.zeros((len(_RESPONSE_POINTS), n * n), np.float32)
    at = [(n // 2 + dy, n // 2 + dx) for dy, dx in _RESPONSE_POINTS]
    for i, (y, x) in enumerate(at):
        points[i, y * n + x] = 1.0
    proj = np.asarray(back.T @ points.T, np.float32).reshape(ang.size, n, len(at))
    rec = reconstruct_fbp(proj.transpose(0, 2, 1), ang, (n - 1) / 2.0, filter_name=filter_name)
    h = np.mean([r[y - hw : y + hw + 1, x - hw : x + hw + 1] for r, (y, x) in zip(rec, at,
                 strict=True)], axis=0)  # fmt: skip
    return (h / h.sum()).astype(np.float64)


def _check_kernel(kernel: ArrayLike) -> NDArray[np.float32]:
    """The kernel as ``(1, k, k)`` float32, normalised; a clear error for a wrong one."""
    h = np.asarray(kernel, np.float64)
    if h.ndim != 2 or h.shape[0] != h.shape[1] or h.shape[0] % 2 == 0:
        raise ValueError(f"kernel has shape {h.shape}; pass the square, odd-sized in-slice "
                         "point response of the reconstruction (fbp_point_response)")  # fmt: skip
    if not np.isfinite(h).all() or h.sum() <= 0:
        raise ValueError("kernel must be finite with a positive sum (fbp_point_response)")
    return (h / h.sum()).astype(np.float32)[None]


def transfer_matrix_means(
    regions: NDArray[np.integer], attenuation: ArrayLike, kernel: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Mean spectrum of each region before the reconstruction's blur (GTM, module docstring).

    Parameters
    ----------
    regions : ndarray of int, (Z, Y, X)
        Region index ``0 .. R-1`` of every voxel (every voxel belongs to one).
    attenuation : array_like, (N, Z, Y, X)
        Reconstructed attenuation per energy.
    kernel : array_like, (k, k)
        In-slice point response of the reconstruction (:func:`fbp_point_response`).

    Returns
    -------
    means : ndarray of float64, (N, R)
        Corrected mean spectrum per region (NaN for an empty region).
    counts : ndarray of int64, (R,)
        Voxels per region.

    Examples
    --------
    >>> reg = np.zeros((1, 12, 12), int); reg[0, 4:8, 4:8] = 1
    >>> h = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]]) / 8.0
    >>> att = ndi.convolve(np.where(reg == 1, 2.0, 0.5), h[None], mode="nearest")[None]
    >>> transfer_matrix_means(reg, att, h)[0].round(6).tolist()
    [[0.5, 2.0]]
    """
    h = _check_kernel(kernel)
    reg = np.asarray(regions)
    flat_reg = reg.ravel()
    n_reg = int(flat_reg.max()) + 1
    counts = np.bincount(flat_reg, minlength=n_reg)
    keep = np.flatnonzero(counts)
    w = np.zeros((keep.size, keep.size))
    for col, j in enumerate(keep):
        spill = ndi.convolve((reg == j).astype(np.float32), h, mode="nearest")
        w[:, col] = np.bincount(flat_reg, spill.ravel(), minlength=n_reg)[keep] / counts[keep]
    att = np.asarray(attenuation, np.float32).reshape(len(attenuation), -1)
    measured = np.stack([np.bincount(flat_reg, row, minlength=n_reg)[keep] / counts[keep]
                         for row in att.astype(np.float64)])  # fmt: skip
    means = np.full((att.shape[0], n_reg), np.nan)
    means[:, keep] = np.linalg.solve(w, measured.T).T
    return means, counts
