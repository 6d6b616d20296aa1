"""Microstructure of the phantom: particle placement, phase rendering, contacts.

All functions are private helpers of `make_phantom`; lengths are in pixels unless
the name says ``_um``.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from .phantom_config import PhantomConfig

__all__ = [
    "contact_directions",
    "contact_patches",
    "contacts",
    "place_particles",
    "render_fibres",
    "render_spheres",
    "render_sse",
    "restrict_contacts",
]

logger = logging.getLogger(__name__)


def place_particles(
    config: PhantomConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Place spheres (centres in px, radii in um) mostly apart, a few touching."""
    h, w = config.shape
    px = config.pixel_size_um
    radii = np.sort(rng.uniform(*config.radius_range_um, size=config.n_particles))[::-1]
    gap_px = config.min_gap_um / px
    centers = np.empty((0, 2))
    placed_r = np.empty(0)
    pairs: list[tuple[int, int]] = []
    for r_um in radii:
        r = r_um / px
        lo = np.array([r + 2, r + 2])
        hi = np.array([h - r - 3, w - r - 3])
        if np.any(hi <= lo):
            continue
        touch = placed_r.size > 0 and rng.random() < config.touching_fraction
        for _ in range(200):
            if touch:
                j = rng.integers(placed_r.size)
                ang = rng.uniform(0, 2 * np.pi)
                # 2% overlap in projection: the spheres touch (sinter neck).
                c = centers[j] + 0.98 * (r + placed_r[j]) * np.array([np.sin(ang), np.cos(ang)])
                if np.any(c < lo) or np.any(c > hi):
                    continue
                d = np.hypot(*(centers - c).T) - placed_r - r
                d[j] = np.inf
            else:
                c = rng.uniform(lo, hi)
                d = np.hypot(*(centers - c).T) - placed_r - r
            if d.size == 0 or d.min() >= gap_px:
                if touch:
                    pairs.append((int(j) + 1, placed_r.size + 1))
                centers = np.vstack([centers, c])
                placed_r = np.append(placed_r, r)
                break
    if placed_r.size < config.n_particles:
        logger.warning(
            "Placed %d of %d particles in a %s field; reduce n_particles or radii",
            placed_r.size,
            config.n_particles,
            config.shape,
        )
    return centers, placed_r * px, pairs


def render_spheres(
    shape: tuple[int, int], centers: np.ndarray, radii_px: np.ndarray, px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Projected sphere thickness (um) and labels (largest chord wins)."""
    thick = np.zeros(shape, np.float32)
    best = np.zeros(shape, np.float32)
    labels = np.zeros(shape, np.int32)
    for i, ((cy, cx), r) in enumerate(zip(centers, radii_px, strict=True), start=1):
        y0, y1 = max(int(cy - r) - 1, 0), min(int(cy + r) + 2, shape[0])
        x0, x1 = max(int(cx - r) - 1, 0), min(int(cx + r) + 2, shape[1])
        yy, xx = np.ogrid[y0:y1, x0:x1]
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        t = (2.0 * px * np.sqrt(np.clip(r * r - d2, 0.0, None))).astype(np.float32)
        thick[y0:y1, x0:x1] += t
        win = t > best[y0:y1, x0:x1]
        labels[y0:y1, x0:x1][win] = i
        best[y0:y1, x0:x1] = np.maximum(best[y0:y1, x0:x1], t)
    return thick, labels


def render_sse(config: PhantomConfig, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SSE thickness (um): a smooth random field biased to hug the particles.

    With ``point_contacts`` the field is not biased (the contacts are designed
    patches, see `restrict_contacts`).
    """
    px = config.pixel_size_um
    free = labels == 0
    field_ = ndimage.gaussian_filter(rng.standard_normal(config.shape), sigma=1.5 / px)
    field_ /= field_.std() + 1e-12
    dist_um = ndimage.distance_transform_edt(free) * px
    field_ += (0.0 if config.point_contacts else 1.5) * np.exp(-dist_um / 2.0)
    n_target = round(config.sse_fraction * labels.size)
    values = field_[free]
    if n_target <= 0 or values.size == 0:
        return np.zeros(config.shape, np.float32)
    n_target = min(n_target, values.size)
    thr = np.partition(values, values.size - n_target)[values.size - n_target]
    lo, hi = config.sse_thickness_um
    excess = np.clip(field_ - thr, 0.0, None)
    scale = np.median(excess[free & (field_ >= thr)]) + 1e-12
    thick = lo + (hi - lo) * (1.0 - np.exp(-excess / scale))
    return np.where(free & (field_ >= thr), thick, 0.0).astype(np.float32)


def _draw_fibre(out: np.ndarray, p0: np.ndarray, p1: np.ndarray, half_w: float, px: float) -> int:
    """Add a straight cylinder (axis ``p0`` -> ``p1``, px) to ``out``; newly covered pixels."""
    h, w = out.shape
    y0 = max(int(min(p0[0], p1[0]) - half_w) - 1, 0)
    y1 = min(int(max(p0[0], p1[0]) + half_w) + 2, h)
    x0 = max(int(min(p0[1], p1[1]) - half_w) - 1, 0)
    x1 = min(int(max(p0[1], p1[1]) + half_w) + 2, w)
    if y1 <= y0 or x1 <= x0:
        return 0
    yy, xx = np.ogrid[y0:y1, x0:x1]
    seg = p1 - p0
    t = np.clip(((yy - p0[0]) * seg[0] + (xx - p0[1]) * seg[1]) / (seg @ seg), 0.0, 1.0)
    d2 = (yy - p0[0] - t * seg[0]) ** 2 + (xx - p0[1] - t * seg[1]) ** 2
    chord = (2.0 * px * np.sqrt(np.clip(half_w**2 - d2, 0.0, None))).astype(np.float32)
    window = out[y0:y1, x0:x1]
    new = int(np.count_nonzero((chord > 0) & (window == 0)))
    np.maximum(window, chord, out=window)
    return new


def render_fibres(
    config: PhantomConfig,
    rng: np.random.Generator,
    tangents: list[tuple[np.ndarray, float, float]] = (),
) -> np.ndarray:
    """Carbon fibre thickness (um): straight cylinders of random length/orientation.

    ``tangents`` lists ``(centre_px, radius_px, angle)``: a fibre is first laid
    tangent to each of these particles at polar ``angle`` (so it touches the
    particle there, nowhere else), then random fibres fill the area budget.
    """
    h, w = config.shape
    px = config.pixel_size_um
    out = np.zeros(config.shape, np.float32)
    target = config.carbon_fraction * h * w
    half_w = 0.5 * config.carbon_fibre_width_um / px
    length_range = (8.0 / px, 25.0 / px)
    covered = 0
    for centre, r, ang in tangents:
        radial = np.array([np.sin(ang), np.cos(ang)])
        along = np.array([-radial[1], radial[0]])
        touch = centre + (r + 0.3 * half_w) * radial
        length = rng.uniform(*length_range)
        s = rng.uniform(0.2, 0.8) * length
        covered += _draw_fibre(out, touch - s * along, touch + (length - s) * along, half_w, px)
    for _ in range(100_000):
        if covered >= target:
            break
        p0 = rng.uniform([0, 0], [h, w])
        length = rng.uniform(*length_range)
        ang = rng.uniform(0, np.pi)
        p1 = p0 + length * np.array([np.sin(ang), np.cos(ang)])
        covered += _draw_fibre(out, p0, p1, half_w, px)
    return out


def contact_patches(
    config: PhantomConfig, n: int, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Polar angles of the designed SSE and carbon contact patches of each particle.

    Each particle gets ``sse_contacts_per_particle`` SSE patches and, with
    probability ``carbon_contact_probability``, one carbon patch, at random angles.
    """
    sse = [rng.uniform(0, 2 * np.pi, config.sse_contacts_per_particle) for _ in range(n)]
    has_c = rng.random(n) < config.carbon_contact_probability
    carbon = [rng.uniform(0, 2 * np.pi, int(k)) for k in has_c]
    return sse, carbon


def restrict_contacts(
    config: PhantomConfig,
    labels: np.ndarray,
    centers: np.ndarray,
    t_sse: np.ndarray,
    t_c: np.ndarray,
    patches: tuple[list[np.ndarray], list[np.ndarray]],
) -> None:
    """Make NMC-SSE / NMC-carbon contacts point-like (in place).

    SSE and carbon in the one-pixel ring around the particles (8-neighbours) are
    removed outside the designed patches (half-width ``contact_patch_deg``); SSE
    fills each SSE patch out to 0.4 um from the particle so that every patch
    is a contact.
    """
    nmc = labels > 0
    if not nmc.any():
        return
    dist, (iy, ix) = ndimage.distance_transform_edt(~nmc, return_indices=True)
    near = (dist > 0) & (dist <= 0.4 / config.pixel_size_um + 0.5)
    ring = (dist > 0) & (dist < 1.5)
    rows, cols = np.nonzero(near)
    lab = labels[iy[rows, cols], ix[rows, cols]]
    theta = np.arctan2(rows - centers[lab - 1, 0], cols - centers[lab - 1, 1])
    half = np.radians(config.contact_patch_deg)

    def in_patch(angles: list[np.ndarray]) -> np.ndarray:
        ok = np.zeros(rows.size, bool)
        for k in np.unique(lab):
            sel = lab == k
            for a in angles[k - 1]:
                ok[sel] |= np.abs(np.angle(np.exp(1j * (theta[sel] - a)))) <= half
        return ok

    sse_ok, c_ok = in_patch(patches[0]), in_patch(patches[1])
    on_ring = ring[rows, cols]
    t_sse[rows[on_ring & ~sse_ok], cols[on_ring & ~sse_ok]] = 0.0
    t_c[rows[on_ring & ~c_ok], cols[on_ring & ~c_ok]] = 0.0
    pad = sse_ok & ~c_ok
    lo = config.sse_thickness_um[0]
    t_sse[rows[pad], cols[pad]] = np.maximum(t_sse[rows[pad], cols[pad]], lo)


def contacts(labels: np.ndarray, partner: np.ndarray) -> np.ndarray:
    """NMC pixels 4-connected to a ``partner`` pixel."""
    grown = ndimage.binary_dilation(partner, structure=ndimage.generate_binary_structure(2, 1))
    return (labels > 0) & grown


def contact_directions(
    labels: np.ndarray,
    contact: np.ndarray,
    centers: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Unit vector (row, col) from each centre towards the mean of its contacts."""
    n = len(centers)
    rows, cols = np.nonzero(contact)
    lab = labels[rows, cols]
    vy = rows - centers[lab - 1, 0]
    vx = cols - centers[lab - 1, 1]
    norm = np.hypot(vy, vx) + 1e-9
    sy = np.bincount(lab, weights=vy / norm, minlength=n + 1)[1:]
    sx = np.bincount(lab, weights=vx / norm, minlength=n + 1)[1:]
    mag = np.hypot(sy, sx)
    ang = rng.uniform(0, 2 * np.pi, size=n)
    no_contact = mag < 1e-6
    sy = np.where(no_contact, np.sin(ang), sy / np.where(no_contact, 1.0, mag))
    sx = np.where(no_contact, np.cos(ang), sx / np.where(no_contact, 1.0, mag))
    return np.stack([sy, sx], axis=1)
