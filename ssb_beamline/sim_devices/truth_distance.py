"""Ground-truth diffusion distances of a phantom, by an independent algorithm.

The simulator's SOC field follows the conductive-network model of Deng et al.
(Angew. Chem. 2025, Fig. 4): the SOC of an NMC pixel rises with its combined
Li+ / e- impedance, i.e. with its distance to the nearest NMC-SSE and NMC-carbon
contact points of its own particle.  The analysis measures the same maps with
:func:`ssb_beamline.analysis.diffusion_distance_maps` (a Euclidean distance
transform per particle bounding box).  A ground truth made by that same function
could not reveal an error in it, so this module computes the maps its own way:

* contact points and particle surfaces from padded neighbour comparisons
  (4-neighbours; the image border is not a surface);
* distances by a nearest-neighbour query of a k-d tree
  (:class:`scipy.spatial.cKDTree`) built on the contact pixels of each particle,
  which is exact Euclidean distance like the analysis' transform, so the two agree
  to float32 rounding wherever both apply (``tests/sim_devices/test_truth_distance.py``);
* per-particle normalisations in float64.

Conventions (the same as the analysis): distances in um, NaN outside NMC and in
particles without a contact of that kind; ``li_norm = li / max_particle(li)``;
``combined = li_norm + e_norm`` min-max rescaled to [0, 1] per particle;
``core_shell = d_surface / max_particle(d_surface)``.  A map is ``None`` when no
particle has a contact of its kind anywhere in the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import cKDTree

from ssb_beamline.physics import Phase

__all__ = ["TruthDistances", "truth_distances"]

_NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))


@dataclass
class TruthDistances:
    """Diffusion-distance maps of a phantom (float32, NaN outside the particles).

    Attributes
    ----------
    li_distance_um, e_distance_um : ndarray or None
        Distance to the nearest NMC-SSE / NMC-carbon contact of the same particle.
    li_norm, e_norm : ndarray or None
        Those divided by their per-particle maximum.
    combined : ndarray or None
        ``li_norm + e_norm`` min-max rescaled to [0, 1] per particle.
    core_shell : ndarray
        Distance to the particle surface divided by its per-particle maximum.
    """

    li_distance_um: NDArray[np.float32] | None
    e_distance_um: NDArray[np.float32] | None
    li_norm: NDArray[np.float32] | None
    e_norm: NDArray[np.float32] | None
    combined: NDArray[np.float32] | None
    core_shell: NDArray[np.float32]


def _neighbour_views(a: NDArray, fill: int) -> list[NDArray]:
    """The four face neighbours of every pixel of ``a`` (``fill`` beyond the edge)."""
    p = np.pad(a, 1, mode="constant", constant_values=fill)
    ny, nx = a.shape
    return [p[1 + dy : 1 + dy + ny, 1 + dx : 1 + dx + nx] for dy, dx in _NEIGHBOURS]


def _touching(labels: NDArray, phase: NDArray, code: int) -> NDArray[np.bool_]:
    """Particle pixels with a face neighbour of phase ``code``."""
    near = np.zeros(labels.shape, bool)
    for view in _neighbour_views(phase, -1):
        near |= view == code
    return near & (labels > 0)


def _surface(labels: NDArray) -> NDArray[np.bool_]:
    """Particle pixels with a face neighbour of another label (not across the border)."""
    out = np.zeros(labels.shape, bool)
    for view in _neighbour_views(labels, -1):
        out |= (view != labels) & (view != -1)
    return out & (labels > 0)


def _nearest(points: NDArray, targets: NDArray, px: float) -> NDArray[np.float64]:
    """Euclidean distance (um) from each point to its nearest target (k-d tree)."""
    return cKDTree(targets).query(points, k=1)[0] * px


def _per_particle(labels: NDArray, targets: NDArray[np.bool_], px: float) -> NDArray | None:
    """Distance map (float64, NaN where the particle has no target); None if no target."""
    if not targets.any():
        return None
    out = np.full(labels.shape, np.nan)
    for i, sl in enumerate(ndimage.find_objects(labels)):
        if sl is None:
            continue
        part = labels[sl] == i + 1
        hit = targets[sl] & part
        if hit.any():
            where = np.nonzero(part)
            d = _nearest(np.column_stack(where), np.argwhere(hit), px)
            out[sl][where] = d
    return out


def _scale(values: NDArray, labels: NDArray, shift: bool) -> NDArray:
    """Per-particle ``v / max`` (``shift``: ``(v - min) / (max - min)``), 0 if constant."""
    ok = np.isfinite(values) & (labels > 0)
    lab = labels[ok]
    v = values[ok]
    index = np.arange(int(labels.max()) + 1)
    hi = np.asarray(ndimage.maximum(v, lab, index), float)
    lo = np.asarray(ndimage.minimum(v, lab, index), float) if shift else np.zeros(index.size)
    span = (hi - lo)[lab]
    out = np.full(values.shape, np.nan)
    out[ok] = np.where(span > 0, (v - lo[lab]) / np.where(span > 0, span, 1.0), 0.0)
    return np.clip(out, 0.0, 1.0)


def truth_distances(phase: NDArray, labels: NDArray, pixel_size_um: float) -> TruthDistances:
    """Diffusion-distance, combined-impedance and core-shell maps of a 2-D phantom.

    Parameters
    ----------
    phase : ndarray of uint8, (H, W)
        True phase map (:class:`~ssb_beamline.physics.Phase` codes).
    labels : ndarray of int, (H, W)
        True particle labels (0 outside NMC).
    pixel_size_um : float
        Pixel size, um.

    Returns
    -------
    TruthDistances

    Examples
    --------
    >>> ph = np.full((3, 6), Phase.NMC, np.uint8)
    >>> ph[:, 0] = Phase.SSE; ph[:, -1] = Phase.CARBON
    >>> lab = (ph == Phase.NMC).astype(np.int32)
    >>> t = truth_distances(ph, lab, 0.5)
    >>> t.li_distance_um[1].tolist()
    [nan, 0.0, 0.5, 1.0, 1.5, nan]
    >>> t.combined[1, 1:-1].tolist()   # li_norm + e_norm = 1 everywhere -> 0
    [0.0, 0.0, 0.0, 0.0]
    """
    labels = np.where(phase == Phase.NMC, labels, 0).astype(np.int64)
    px = float(pixel_size_um)
    li = _per_particle(labels, _touching(labels, phase, Phase.SSE), px)
    e = _per_particle(labels, _touching(labels, phase, Phase.CARBON), px)
    li_norm = None if li is None else _scale(li, labels, shift=False)
    e_norm = None if e is None else _scale(e, labels, shift=False)
    combined = None
    if li_norm is not None and e_norm is not None:
        combined = _scale(li_norm + e_norm, labels, shift=True)
    shell = _per_particle(labels, _surface(labels), px)
    core = np.full(labels.shape, np.nan) if shell is None else _scale(shell, labels, shift=False)

    def f32(a: NDArray | None) -> NDArray[np.float32] | None:
        return None if a is None else a.astype(np.float32)

    return TruthDistances(f32(li), f32(e), f32(li_norm), f32(e_norm), f32(combined), f32(core))
