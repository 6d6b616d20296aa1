"""Analytic sphere phantoms for the tomography tests: exact parallel-beam line integrals."""

from __future__ import annotations

import numpy as np

NX, NZ = 64, 12
MU = 0.02
SPHERES = [(32.0, 32.0, 6.0, 14.0, MU), (24.0, 27.0, 5.0, 5.0, 0.03), (42.0, 41.0, 7.0, 6.0, 0.015)]


def sphere_projections(angles_deg, center, spheres=SPHERES, nx=NX, nz=NZ):
    """Exact line integrals (at pixel centres) of spheres (x, y, z, r, mu) in slice pixels."""
    th = np.radians(np.asarray(angles_deg, float))[:, None, None]
    u = np.arange(nx)[None, None, :]
    z = np.arange(nz)[None, :, None]
    c0 = (nx - 1) / 2
    p = np.zeros((th.shape[0], nz, nx))
    for x0, y0, z0, r, mu in spheres:
        us = center + (x0 - c0) * np.cos(th) - (y0 - c0) * np.sin(th)
        p += 2 * mu * np.sqrt(np.clip(r * r - (u - us) ** 2 - (z - z0) ** 2, 0, None))
    return p.astype(np.float32)


#: the rotation axis 3.5 px right of the detector middle, and a 1-degree half scan
CENTER = (NX - 1) / 2 + 3.5
ANG = np.arange(0, 180, 1.0)
