"""Band SSE across a pore gap too thin to see: made pore after NMC's spill is taken out.

Voxels of the band around NMC (``band_voxels``) take the phase of their nearest
voxel outside it (:mod:`~ssb_beamline.analysis.segmentation3d`), because the
blurred reconstructions (FBP, Paganin phase retrieval) spill NMC's density ~2
voxels out.  Where SSE lies 2 voxels from NMC behind a 1-voxel pore gap, the gap
takes SSE's phase: a particle with no Li+ contact in the truth (its combined
impedance undefined, so it is not in the combined trend) gets one and enters the
trend.  On the end-to-end phantom's live-like reconstructions
(``benchmarks/bench_network3d_estimator.py --segmented --holo``) that alone is
-14 of the -23 % noise-free combined bias of seed 2 (24 voxels, one particle) and
-10 of -14 % for seed 5; carbon read as pore at NMC contacts costs only -4 %.

Here the spill is measured on the run itself: per distance shell of the band
(squared Euclidean distance to NMC, exact on the grid) the median density of the
band voxels the nearest rule calls pore is the NMC-pore interface's response at
that distance.  A band voxel's own density then follows from a linear blur model,
``observed = f * NMC + (1 - f) * own`` with ``f`` the NMC share the pore response
gives: ``own = pore + (observed - spill) / (1 - f)``, averaged over the band
(Gaussian, 1 voxel: one voxel's estimate is noisy and a gap is a patch).  Band SSE
whose averaged own density is below 1.3x the pore / solid threshold is pore: the
gap's own density (~210 e/nm^3, it still carries SSE's spill from the other side)
against ~460 for SSE at that distance.  Written by hand: no library models the
spill of one labelled phase into its neighbours.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from .phases import Phase

__all__ = ["drop_band_gaps"]

#: Largest NMC share of a band voxel's value that is corrected (nearer: left as is).
MAX_SHARE = 0.8
#: A band SSE voxel whose spill-corrected density is below this many times the
#: pore / solid threshold is pore (1.3: chosen on the noise-free end-to-end runs).
GAP_FACTOR = 1.3
#: Gaussian (voxels) over which the corrected density is averaged within the band.
GAP_SIGMA = 1.0


def _own_value(values, band, pore_band, shell, pore_level, nmc_level):
    """Estimated non-NMC value of each band voxel (NaN where not estimated)."""
    own = np.full(values.shape, np.nan, np.float32)
    for s in np.unique(shell[band]):
        here = band & (shell == s)
        ref = pore_band & (shell == s)
        if ref.sum() < 5:
            continue
        spill = float(np.median(values[ref]))
        share = (spill - pore_level) / (nmc_level - pore_level)
        if not np.isfinite(share) or share >= MAX_SHARE:
            continue
        own[here] = pore_level + (values[here] - spill) / (1.0 - max(share, 0.0))
    return own


def drop_band_gaps(
    out: NDArray[np.uint8], density: NDArray, nmc: NDArray[np.bool_], width: int,
    threshold: float,
) -> int:  # fmt: skip
    """Band SSE voxels whose spill-corrected density is pore-like become pore.

    Parameters
    ----------
    out : ndarray of uint8, (Z, Y, X)
        Phase codes with the band filled by the nearest-voxel rule; changed in place.
    density : ndarray, (Z, Y, X)
        Electron density (e/nm^3) of the same grid.
    nmc : ndarray of bool
        The NMC voxels.
    width : int
        Band width, voxels (0: nothing is changed).
    threshold : float
        The pore / solid density threshold found outside the band.

    Returns
    -------
    int
        The number of band SSE voxels made pore.

    Examples
    --------
    SSE 2 voxels from NMC (x < 4) behind a 1-voxel pore gap, blurred; pore beside:

    >>> from scipy.ndimage import gaussian_filter
    >>> truth = np.zeros((1, 16, 12), np.uint8); truth[..., :4] = 1
    >>> truth[:, :8, 5:] = 2
    >>> blur = lambda t: gaussian_filter(np.choose(t, [0.0, 1300.0, 500.0]), (0, 0, 0.7))
    >>> out = truth.copy(); out[:, :8, 4] = 2  # the gap filled from its nearest SSE
    >>> drop_band_gaps(out, blur(truth), truth == 1, 2, 230.0), out[0, 0, 3:8].tolist()
    (16, [1, 0, 0, 2, 2])

    SSE touching NMC stays:

    >>> truth[:, :8, 4] = 2; out = truth.copy()
    >>> drop_band_gaps(out, blur(truth), truth == 1, 2, 230.0), out[0, 0, 3:8].tolist()
    (0, [1, 2, 2, 2, 2])
    """
    if width <= 0 or not nmc.any():
        return 0
    dist = ndi.distance_transform_edt(~nmc)
    band = ~nmc & (dist <= width)
    pore_far = ~nmc & (dist > width) & (out == Phase.VOID)
    if not pore_far.any():
        return 0
    inner = ndi.binary_erosion(nmc, iterations=width)
    inner = inner if inner.any() else nmc
    shell = np.round(dist * dist).astype(np.int32)  # the grid's exact distance shells
    pore_level, nmc_level = float(np.median(density[pore_far])), float(np.median(density[inner]))
    own = _own_value(density, band, band & (out == Phase.VOID), shell, pore_level, nmc_level)
    ok = np.isfinite(own)
    weight = ndi.gaussian_filter(ok.astype(np.float32), GAP_SIGMA)
    mean = ndi.gaussian_filter(np.where(ok, own, 0.0).astype(np.float32), GAP_SIGMA)
    mean = mean / np.where(weight > 0, weight, np.inf)
    gap = ok & (out == Phase.SSE) & (mean <= GAP_FACTOR * threshold)
    out[gap] = Phase.VOID
    return int(gap.sum())
