"""Compiled exact Euclidean distance transforms, one per particle bounding box.

:func:`~ssb_beamline.analysis.diffusion.diffusion_distance_maps` needs, for every
pixel of a particle, the straight-line distance to the nearest target pixel
(contact or surface) *of the same particle*.  ``scipy.ndimage``'s feature
transform does it per bounding box, but a 2048 x 2048 map with 1000 particles
and three targets is 3000 calls plus their numpy indexing, about 0.5 s of CPU in
Python overhead around 0.15 s of transform.  Here one compiled call sweeps every
box of a chunk of particles with the separable transform of Felzenszwalb &
Huttenlocher (Theory of Computing 8, 2012): per column the distance to the
nearest target, then per row the lower envelope of parabolas.  Squared
distances are integers held exactly in float64, so every distance equals the
feature transform's, ``sqrt(dy**2 + dx**2) * pixel``, rounded once to float32.
Boxes of neighbouring particles may overlap; a call writes only the pixels of
its own label, so chunks of particles run on threads in parallel.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit_cache import install_locator
from ._parallel import run_chunks

install_locator()  # before the decorators below: they pick their cache directory

__all__ = ["compiled_particle_distances", "particle_edt_2d"]

_INF = np.inf


@njit(nogil=True, cache=True, boundscheck=False)
def _envelope_row(f, n, out, v, z):
    """``out[q] = min_p (q - p)^2 + f[p]`` over the finite ``f[p]`` (inf if none)."""
    k = -1
    for q in range(n):
        fq = f[q]
        if fq == _INF:
            continue
        if k < 0:
            k = 0
            v[0] = q
            z[0] = -_INF
            z[1] = _INF
            continue
        while True:
            p = v[k]
            s = ((fq + q * q) - (f[p] + p * p)) / (2.0 * (q - p))
            if s <= z[k]:
                k -= 1  # z[0] = -inf: k never drops below 0
            else:
                break
        k += 1
        v[k] = q
        z[k] = s
        z[k + 1] = _INF
    if k < 0:
        for q in range(n):
            out[q] = _INF
        return
    k = 0
    for q in range(n):
        while z[k + 1] < q:
            k += 1
        p = v[k]
        out[q] = (q - p) * (q - p) + f[p]


@njit(nogil=True, cache=True, boundscheck=False)
def _column_pass(lab, target, lbl, y0, x0, h, w, g):
    """``g[i, j]``: distance along column ``j`` of the box to the nearest target of ``lbl``.

    Returns whether the box holds any target of ``lbl``.
    """
    found = False
    for j in range(w):
        d = _INF
        for i in range(h):
            if target[y0 + i, x0 + j] and lab[y0 + i, x0 + j] == lbl:
                d = 0.0
                found = True
            elif d != _INF:
                d += 1.0
            g[i, j] = d
        d = _INF
        for i in range(h - 1, -1, -1):
            if g[i, j] == 0.0:
                d = 0.0
            elif d != _INF:
                d += 1.0
            g[i, j] = min(g[i, j], d)
    return found


@njit(nogil=True, cache=True, boundscheck=False)
def particle_edt_2d(lab, target, boxes, first, stop, px, out, dmax):
    """Distances of the particles ``boxes[first:stop]`` to their own target pixels.

    Parameters
    ----------
    lab : int32 (H, W)
        Particle labels.
    target : bool (H, W)
        Target pixels (only those of each box's own label count).
    boxes : int64 (M, 5)
        ``label, y0, y1, x0, x1`` per particle (its bounding box).
    first, stop : int
        The boxes this call handles.
    px : float
        Pixel size.
    out : float32 (H, W)
        Receives ``sqrt(d2) * px`` on the pixels of each handled label that has
        a target (others untouched).
    dmax : float64 (n_labels + 1,)
        Receives each handled label's largest distance (NaN: no target).
    """
    hmax = 1
    wmax = 1
    for b in range(first, stop):
        hmax = max(hmax, boxes[b, 2] - boxes[b, 1])
        wmax = max(wmax, boxes[b, 4] - boxes[b, 3])
    g = np.empty((hmax, wmax), np.float64)
    row = np.empty(wmax, np.float64)
    env = np.empty(wmax, np.float64)
    v = np.empty(wmax, np.int64)
    z = np.empty(wmax + 1, np.float64)
    for b in range(first, stop):
        lbl, y0, y1, x0, x1 = boxes[b, 0], boxes[b, 1], boxes[b, 2], boxes[b, 3], boxes[b, 4]
        h, w = y1 - y0, x1 - x0
        if not _column_pass(lab, target, lbl, y0, x0, h, w, g):
            dmax[lbl] = np.nan
            continue
        best = -1.0
        for i in range(h):  # row pass: lower envelope of the parabolas g^2 + (x - p)^2
            for j in range(w):
                gij = g[i, j]
                row[j] = gij * gij if gij != _INF else _INF
            _envelope_row(row, w, env, v, z)
            for j in range(w):
                if lab[y0 + i, x0 + j] == lbl:
                    dist = np.float32(np.sqrt(env[j]) * px)
                    out[y0 + i, x0 + j] = dist
                    if dist > best:
                        best = np.float64(dist)
        dmax[lbl] = best


def compiled_particle_distances(
    lab: np.ndarray, objs: list, targets: dict, keys: list[str], px: float
) -> tuple[dict, dict, dict]:
    """Distance maps, per-label max distances and labels without a target, per key.

    ``objs`` is ``ndi.find_objects(lab)``; ``targets[key]`` a bool map per key.
    The maps are NaN outside the particles (and on a particle without a target of
    that key); the boxes run in chunks on the analysis thread pool.
    """
    boxes = np.array(
        [(i + 1, sl[0].start, sl[0].stop, sl[1].start, sl[1].stop)
         for i, sl in enumerate(objs) if sl is not None],
        dtype=np.int64,
    ).reshape(-1, 5)  # fmt: skip
    lab = np.ascontiguousarray(lab, dtype=np.int32)
    raw, dmax, missing = {}, {}, {key: [] for key in ("li", "e", "cs")}
    for key in keys:
        out = np.full(lab.shape, np.nan, dtype=np.float32)
        top = np.full(len(objs) + 1, np.nan)
        target = np.ascontiguousarray(targets[key], dtype=bool)

        def sweep(s: slice, target=target, out=out, top=top) -> None:
            particle_edt_2d(lab, target, boxes, s.start, s.stop, float(px), out, top)

        run_chunks(sweep, len(boxes), 64, limit_blas=False)
        raw[key], dmax[key] = out, top
        missing[key] = [int(b) for b in boxes[:, 0] if np.isnan(top[b])]
    return raw, dmax, missing
