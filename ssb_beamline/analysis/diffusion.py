"""Conductive-network diffusion-distance model (Deng et al., Angew. Chem. 2025, Fig. 4).

For every NMC pixel the Li+ diffusion distance is the distance, inside its own
particle, to the nearest NMC-SSE contact point and the e- diffusion distance the
distance to the nearest NMC-carbon contact point; NMC-NMC contacts are ignored.
A contact point is an NMC pixel face-adjacent (``connectivity=1``, 4-neighbour
in 2-D) or also diagonal-adjacent (``connectivity=2``) to an SSE / carbon pixel.

Distances (``metric``):

* ``"euclidean"`` (default): straight-line distance from the pixel to the
  nearest contact pixel *of the same particle* (an exact distance transform
  per particle bounding box: compiled in 2-D, :mod:`._kernels_edt`, and
  ``distance_transform_edt`` in 3-D).  Exact for convex particles, which
  secondary NMC particles nearly are, and fast (~0.15 s of CPU for 1000
  particles on 2048 x 2048, see ``benchmarks/bench_particles.py``).
* ``"geodesic"``: shortest path that stays inside the particle
  (``skimage.graph.MCP_Geometric``, 8-connected steps, so up to ~8 % longer
  than Euclidean on oblique paths).  Better for cracked / concave particles
  (a U-shaped particle is not short-circuited across its gap) but ~6-10x
  slower, so it is opt-in.

Contacts and distances are taken per particle (its own bounding box), so with
``labels`` a pixel never reaches a contact point of a touching neighbour.

Normalisation (``normalize``): the paper normalises the distance maps of the
analysed particle, i.e. ``li_norm = li_distance / max(li_distance)`` over the
particle (``"particle"``, default) - or over all particles (``"global"``).
Combined impedance: ``c = li_norm + e_norm`` min-max rescaled to ``[0, 1]``
over the same scope, so the five paper bins [0-0.2] ... [0.8-1.0] span each
particle.  Core-shell model: ``core_shell_um`` = distance to the nearest
particle-surface pixel (particle pixels adjacent to any other label or phase;
the image border is not a surface), ``core_shell = core_shell_um / max``
(0 at the surface, 1 at the core).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage as ndi
from skimage.graph import MCP_Geometric

from ._kernels_edt import compiled_particle_distances
from .impedance import DistanceMap2D, distance_map_2d, impedance_bins
from .phases import Phase, _as_array, _check_pixel_size, _check_same_shape

__all__ = [
    "DiffusionMaps",
    "DistanceMap2D",
    "diffusion_distance_maps",
    "distance_map_2d",
    "impedance_bins",
]

logger = logging.getLogger(__name__)


@dataclass
class DiffusionMaps:
    """Result of :func:`diffusion_distance_maps` (float32 maps, NaN outside NMC).

    A map is ``None`` when it is unavailable (e.g. no SSE in the phase map);
    ``unavailable`` then holds the reason under ``"li"``, ``"e"`` or
    ``"combined"``.  Pixels of a particle that has no contact of a kind are NaN
    in that map and its label is listed in ``no_li_contact`` / ``no_e_contact``.

    Attributes
    ----------
    labels : ndarray of int32
        Particle labels used (NMC pixels only).
    li_distance_um, e_distance_um : ndarray or None
        Distance to the nearest NMC-SSE / NMC-carbon contact of the same particle.
    li_norm, e_norm : ndarray or None
        The distances divided by their max (per particle or global), in [0, 1].
    combined : ndarray or None
        Combined impedance, ``li_norm + e_norm`` min-max rescaled to [0, 1].
    core_shell_um, core_shell : ndarray
        Distance to the particle surface, and that divided by its max.
    li_contact, e_contact : ndarray of bool or None
        The contact points.
    no_li_contact, no_e_contact : ndarray of int64
        Labels of particles without any contact of that kind.
    unavailable : dict of str
        Reason per unavailable map (``"li"``, ``"e"``, ``"combined"``).
    metric, normalize : str
        The options used.
    """

    labels: NDArray[np.int32]
    li_distance_um: NDArray[np.float32] | None
    e_distance_um: NDArray[np.float32] | None
    li_norm: NDArray[np.float32] | None
    e_norm: NDArray[np.float32] | None
    combined: NDArray[np.float32] | None
    core_shell_um: NDArray[np.float32]
    core_shell: NDArray[np.float32]
    li_contact: NDArray[np.bool_] | None
    e_contact: NDArray[np.bool_] | None
    no_li_contact: NDArray[np.int64]
    no_e_contact: NDArray[np.int64]
    unavailable: dict[str, str] = field(default_factory=dict)
    metric: str = "euclidean"
    normalize: str = "particle"


def _surface(lab: NDArray) -> NDArray[np.bool_]:
    """Labelled pixels face-adjacent to a pixel with a different value."""
    surf = np.zeros(lab.shape, dtype=bool)
    for ax in range(lab.ndim):
        n = lab.shape[ax]
        lo = [slice(None)] * lab.ndim
        hi = [slice(None)] * lab.ndim
        lo[ax], hi[ax] = slice(0, n - 1), slice(1, n)
        diff = lab[tuple(lo)] != lab[tuple(hi)]
        surf[tuple(lo)] |= diff
        surf[tuple(hi)] |= diff
    return surf & (lab > 0)


def _adjacent(mask: NDArray[np.bool_], connectivity: int) -> NDArray[np.bool_]:
    """Pixels with a ``connectivity``-neighbour in ``mask`` (dilation minus centre)."""
    out = np.zeros(mask.shape, dtype=bool)
    offsets = np.argwhere(ndi.generate_binary_structure(mask.ndim, connectivity)) - 1
    for off in offsets:
        if not off.any():
            continue
        dst = tuple(slice(max(o, 0), n + min(o, 0)) for o, n in zip(off, mask.shape, strict=True))
        src = tuple(slice(max(-o, 0), n + min(-o, 0)) for o, n in zip(off, mask.shape, strict=True))
        out[dst] |= mask[src]
    return out


def _inv(span: NDArray | float) -> NDArray[np.float32]:
    """``1 / span`` as float32; 0 where the span is 0 (constant -> 0), NaN kept."""
    span = np.asarray(span, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(span > 0, 1.0 / span, np.where(np.isnan(span), np.nan, 0.0)).astype(
            np.float32
        )


def _unit(v: NDArray[np.float32], lo: NDArray | float, inv: NDArray | float) -> NDArray:
    """``(v - lo) * inv`` clipped to [0, 1] in float32 (NaN kept)."""
    out = (v - np.float32(lo) if np.ndim(lo) == 0 else v - lo) * inv
    return np.clip(out, 0.0, 1.0, out=out)


def _dist(
    target: NDArray[np.bool_], part: NDArray[np.bool_], where: NDArray, px: float, metric: str
) -> NDArray[np.float32]:
    """Distance (um) from the ``where`` pixels (ndim, n) of ``part`` to the nearest target."""
    if metric == "euclidean":  # feature transform, distances only where needed
        ft = ndi.distance_transform_edt(~target, return_distances=False, return_indices=True)
        diff = ft[(slice(None), *where)] - where
        return (np.sqrt(np.einsum("ij,ij->j", diff, diff)) * px).astype(np.float32)
    cost = np.where(part, 1.0, np.inf)
    mcp = MCP_Geometric(cost, fully_connected=True, sampling=(px,) * part.ndim)
    return mcp.find_costs(np.argwhere(target))[0][tuple(where)].astype(np.float32)


def diffusion_distance_maps(
    phases: ArrayLike,
    *,
    pixel_size_um: float,
    labels: ArrayLike | None = None,
    metric: Literal["euclidean", "geodesic"] = "euclidean",
    normalize: Literal["particle", "global"] = "particle",
    connectivity: int = 1,
) -> DiffusionMaps:
    """Li+ / e- diffusion-distance, combined-impedance and core-shell maps.

    Parameters
    ----------
    phases : array_like of int, shape (ny, nx) or (nz, ny, nx)
        Phase map with ``Phase`` codes.
    pixel_size_um : float
        Pixel (voxel) size in micrometres.
    labels : array_like of int, optional
        Particle labels (e.g. :func:`segment_particles`) to keep touching
        particles apart; only their NMC pixels are used.  Default: connected
        components of NMC (``connectivity``).
    metric : {"euclidean", "geodesic"}, default "euclidean"
        Distance inside the particle (see module docstring).
    normalize : {"particle", "global"}, default "particle"
        Scope of the max / min-max normalisations (see module docstring).
    connectivity : {1, 2}, default 1
        Adjacency defining contact points (1: face, 2: also diagonal).

    Returns
    -------
    DiffusionMaps

    Raises
    ------
    ValueError
        Non-integer or out-of-range phase codes, no NMC pixel, bad shapes,
        unknown ``metric`` / ``normalize`` / ``connectivity``.

    Examples
    --------
    >>> ph = np.full((5, 7), Phase.NMC, np.uint8)
    >>> ph[:, 0] = Phase.SSE; ph[:, -1] = Phase.CARBON
    >>> m = diffusion_distance_maps(ph, pixel_size_um=1.0)
    >>> m.li_distance_um[2].tolist()
    [nan, 0.0, 1.0, 2.0, 3.0, 4.0, nan]
    >>> m.combined[2, 1:-1].tolist()   # li_norm + e_norm = 1 everywhere
    [0.0, 0.0, 0.0, 0.0, 0.0]
    """
    ph, px, lab = _checked_inputs(phases, pixel_size_um, labels, metric, normalize, connectivity)
    contacts, unavailable = _contacts(ph, lab, connectivity)
    keys = [k for k in ("li", "e") if contacts[k] is not None]
    keys.append("cs")
    targets = {"li": contacts["li"], "e": contacts["e"], "cs": _surface(lab)}
    raw, dmax, missing = _particle_distances(lab, targets, keys, px, metric)
    norm, combined = _normalised(lab, raw, dmax, normalize)
    if combined is None:
        unavailable["combined"] = "needs both Li+ and e- distances: " + "; ".join(
            f"{k}: {v}" for k, v in unavailable.items()
        )
    for key, name in (("li", "SSE"), ("e", "carbon")):
        if missing[key]:
            logger.warning(
                "%d particle(s) have no NMC-%s contact (NaN distances): labels %s",
                len(missing[key]),
                name,
                missing[key][:10],
            )
    return DiffusionMaps(
        labels=lab,
        li_distance_um=raw.get("li"),
        e_distance_um=raw.get("e"),
        li_norm=norm.get("li"),
        e_norm=norm.get("e"),
        combined=combined,
        core_shell_um=raw["cs"],
        core_shell=norm["cs"],
        li_contact=contacts["li"],
        e_contact=contacts["e"],
        no_li_contact=np.asarray(missing["li"], dtype=np.int64),
        no_e_contact=np.asarray(missing["e"], dtype=np.int64),
        unavailable=unavailable,
        metric=metric,
        normalize=normalize,
    )


def _checked_inputs(phases, pixel_size_um, labels, metric, normalize, connectivity):
    """The phase map, pixel size and NMC particle labels, or a ValueError naming the fix."""
    ph = _as_array(phases, "phases", (2, 3))
    px = _check_pixel_size(pixel_size_um)
    if not np.issubdtype(ph.dtype, np.integer):
        raise ValueError(
            f"phases has dtype {ph.dtype}; pass an integer phase map with Phase codes "
            "(e.g. from segment_phases)"
        )
    codes = {int(p) for p in Phase}
    if ph.min() < min(codes) or ph.max() > max(codes):
        raise ValueError(
            f"phases has values outside the Phase codes {sorted(codes)}; "
            "map VOID=0, NMC=1, SSE=2, CARBON=3 before calling"
        )
    if metric not in ("euclidean", "geodesic"):
        raise ValueError(f"metric={metric!r}; use 'euclidean' or 'geodesic'")
    if normalize not in ("particle", "global"):
        raise ValueError(f"normalize={normalize!r}; use 'particle' or 'global'")
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity={connectivity}; use 1 (face) or 2 (also diagonal)")
    return ph, px, _nmc_labels(ph, labels, connectivity)


def _nmc_labels(ph: NDArray, labels, connectivity: int) -> NDArray[np.int32]:
    """Particle labels on the NMC pixels (connected components if ``labels`` is None)."""
    nmc = ph == Phase.NMC
    if not nmc.any():
        raise ValueError(
            "phase map has no NMC pixels (Phase.NMC=1); check the segmentation "
            "(thresholds / class order) or pass the right slice"
        )
    if labels is None:
        structure = ndi.generate_binary_structure(ph.ndim, connectivity)
        return ndi.label(nmc, structure=structure)[0].astype(np.int32)
    lab_in = _as_array(labels, "labels", (2, 3))
    _check_same_shape(ph, "phases", lab_in, "labels")
    if not np.issubdtype(lab_in.dtype, np.integer):
        raise ValueError(f"labels has dtype {lab_in.dtype}; pass an integer label image")
    lab = np.where(nmc, lab_in, 0).astype(np.int32)
    if not lab.any():
        raise ValueError(
            "labels has no particle over the NMC pixels of phases; pass labels "
            "segmented from the same image / grid as the phase map"
        )
    return lab


def _contacts(ph: NDArray, lab: NDArray, connectivity: int):
    """NMC-SSE (``"li"``) and NMC-carbon (``"e"``) contact pixels, and what is unavailable."""
    nmc = ph == Phase.NMC
    unavailable: dict[str, str] = {}
    contacts: dict[str, NDArray[np.bool_] | None] = {}
    for key, phase in (("li", Phase.SSE), ("e", Phase.CARBON)):
        other = ph == phase
        if not other.any():
            unavailable[key] = f"phase map has no {phase.name} pixels (code {int(phase)})"
            contacts[key] = None
            continue
        c = nmc & _adjacent(other, connectivity) & (lab > 0)
        if not c.any():
            unavailable[key] = f"no NMC pixel is adjacent to {phase.name}"
            contacts[key] = None
        else:
            contacts[key] = c
    for key, why in unavailable.items():
        # A phase absent from the map is the normal case of a 2-D Ni K-edge map
        # (carbon is not resolved there): information, not a warning on every run.
        level = logging.INFO if "pixels (code" in why else logging.WARNING
        logger.log(level, "%s diffusion distance unavailable: %s", key, why)
    return contacts, unavailable


def _particle_distances(lab, targets, keys, px: float, metric: str):
    """Raw distance maps, per-label max distances and the labels missing a target.

    2-D Euclidean: one compiled sweep over every particle box (:mod:`._kernels_edt`);
    otherwise one small distance transform per particle bounding box and map.
    """
    objs = ndi.find_objects(lab)
    if metric == "euclidean" and lab.ndim == 2:
        return compiled_particle_distances(lab, objs, targets, keys, px)
    n = len(objs)
    raw = {key: np.full(lab.shape, np.nan, dtype=np.float32) for key in keys}
    dmax = {key: np.full(n + 1, np.nan) for key in keys}  # per-label max distance
    missing: dict[str, list[int]] = {key: [] for key in ("li", "e", "cs")}
    for i, sl in enumerate(objs):
        if sl is None:
            continue
        lbl = i + 1
        part = lab[sl] == lbl
        where = np.array(np.nonzero(part))
        for key in keys:
            t = targets[key][sl] & part
            if not t.any():
                missing[key].append(lbl)
                continue
            d = _dist(t, part, where, px, metric)
            raw[key][sl][tuple(where)] = d
            dmax[key][lbl] = d.max()
    return raw, dmax, missing


def _combined_range(k_fg, n_labels: int, c):
    """Per-label min and max of the combined sum ``c`` (NaN for labels without one)."""
    finite = np.isfinite(c)
    k, v = k_fg[finite], c[finite]
    cmin, cmax = np.full(n_labels, np.inf, np.float32), np.full(n_labels, -np.inf, np.float32)
    np.minimum.at(cmin, k, v)
    np.maximum.at(cmax, k, v)
    seen = np.isfinite(cmin)  # float64: the span below is taken in float64
    return np.where(seen, cmin, np.nan).astype(float), np.where(seen, cmax, np.nan).astype(float)


def _normalised(lab, raw, dmax, normalize: str):
    """Normalised distance maps and the combined impedance (None without both)."""
    fg = np.flatnonzero(lab)
    k_fg = lab.ravel()[fg]

    def _full(flat_values: NDArray) -> NDArray[np.float32]:
        out = np.full(lab.size, np.nan, dtype=np.float32)
        out[fg] = flat_values
        return out.reshape(lab.shape)

    norm_fg: dict[str, NDArray] = {}
    for key in raw:
        v = raw[key].ravel()[fg]
        if normalize == "particle":
            norm_fg[key] = _unit(v, 0.0, _inv(dmax[key])[k_fg])
        else:
            norm_fg[key] = _unit(v, 0.0, _inv(np.nanmax(dmax[key], initial=0)))
    norm = {key: _full(v) for key, v in norm_fg.items()}
    if "li" not in norm or "e" not in norm:
        return norm, None
    c = norm_fg["li"] + norm_fg["e"]
    if normalize == "particle":
        # a particle's combined sum is finite on all its pixels or on none
        cmin, cmax = _combined_range(k_fg, dmax["li"].size, c)
        lo = cmin.astype(np.float32)
        return norm, _full(_unit(c, lo[k_fg], _inv(cmax - lo)[k_fg]))
    if np.isfinite(c).any():
        lo = np.nanmin(c)
        return norm, _full(_unit(c, lo, _inv(np.nanmax(c) - lo)))
    return norm, _full(c)
