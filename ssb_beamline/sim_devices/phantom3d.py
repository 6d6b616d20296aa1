"""Synthetic 3D composite-cathode phantom for tomography and holotomography.

A voxel volume ``(Z, Y, X)``: NMC811 secondary particles (spheres, a few
touching), Li6PS5Cl solid electrolyte (SSE, a smooth random network in the pores)
and carbon (wrinkled graphite flakes or straight fibres); one `Phase` per voxel
(NMC > carbon > SSE > pore). The separator is the ``z = 0`` face (depth
``z * voxel_size_um``). SOC (Ni oxidation state ``2 + soc``) follows the rules of
the 2D phantom (`ssb_beamline.sim_devices.phantom`):

* **size** (inter-particle): designed particle mean ``soc_mean + slope * (r -
  r_ref)`` (``r_ref`` the geometric middle of the radius range) plus a scatter,
  larger for small particles (Deng et al. 2025). The scatter is made orthogonal to
  the radii and scaled so that the Pearson r of designed SOC against radius is
  exactly ``-size_correlation`` (0.6651 as in the paper) for any seed and count.
* **polarisation** (intra-particle, diffusion-distance model): ``c`` is the mean
  of the per-particle normalised distances to the nearest NMC-SSE (Li+) and
  NMC-carbon (e-) contact voxels (those present), and ``soc += a * (c -
  mean_particle(c))`` with ``a = polarisation_strength * sqrt(r / r_ref)``:
  regions far from the channels stay charged, and the spread grows with size.
* per-voxel white noise, then clipping to `SOC_CLIP`.

Electron densities (e/nm^3; derivation in `ssb_beamline.sim_devices.refraction`):
NMC811 ``1370 (1 - 0.0515 soc)`` (denser when discharged), SSE 478 (uniform),
graphite 662 or carbon fibre 541.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import ndimage

from ssb_beamline.physics import Phase

from .phantom_config import SOC_CLIP
from .refraction import (
    CARBON_FIBRE_DENSITY_G_CM3,
    GRAPHITE_DENSITY_G_CM3,
    SSE_DENSITY_G_CM3,
    SSE_FORMULA,
    electron_density_per_nm3,
    nmc_electron_density,
)
from .xray_physics import truth_edge_energy

__all__ = ["Phantom3D", "Phantom3DConfig", "make_phantom3d"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phantom3DConfig:
    """Parameters of a 3D composite-cathode phantom (which is a pure function of them).

    Parameters
    ----------
    shape : tuple of int
        Volume shape ``(Z, Y, X)``, voxels; ``z = 0`` is the separator face.
    voxel_size_um : float
        Voxel edge, um.
    radius_range_um : tuple of float
        Min and max NMC radius, um; radii are log-uniform (more small particles).
    n_particles : int
        Requested NMC particles (fewer are placed if they do not fit; logged).
    touching_fraction, min_gap_um : float
        Fraction of particles placed touching an earlier one; minimum gap of the
        others, um.
    sse_fraction, carbon_fraction : float
        Volume fractions of SSE and carbon (of the whole volume).
    carbon_form : {"graphite", "fibre"}
        Wrinkled graphite flakes (2.2 g/cm3) or straight carbon fibres (1.8 g/cm3).
    carbon_thickness_um : float
        Flake thickness or fibre diameter, um.
    soc_mean, soc_size_slope_per_um : float
        Designed particle SOC ``soc_mean + slope * (r - r_ref)``; a negative slope
        leaves small particles charged (less dense).
    size_correlation : float
        |Pearson r| of designed particle SOC against radius, in (0, 1] (no
        scatter if 1 or if the slope is 0).
    polarisation_strength : float
        Intra-particle SOC amplitude of the diffusion-distance term at ``r_ref``.
    soc_noise_sigma : float
        Per-voxel white noise on the SOC.
    seed : int
        Random seed.
    """

    shape: tuple[int, int, int] = (64, 128, 128)
    voxel_size_um: float = 0.1
    radius_range_um: tuple[float, float] = (0.4, 2.2)
    n_particles: int = 40
    touching_fraction: float = 0.15
    min_gap_um: float = 0.1
    sse_fraction: float = 0.3
    carbon_fraction: float = 0.04
    carbon_form: Literal["graphite", "fibre"] = "graphite"
    carbon_thickness_um: float = 0.3
    soc_mean: float = 0.35
    soc_size_slope_per_um: float = -0.06
    size_correlation: float = 0.6651
    polarisation_strength: float = 0.1
    soc_noise_sigma: float = 0.01
    seed: int = 0

    def _require(self, ok: bool, name: str, fix: str) -> None:
        if not ok:
            raise ValueError(f"{name}={getattr(self, name)!r} is invalid: {fix}")

    def __post_init__(self) -> None:
        req, vox = self._require, self.voxel_size_um
        shape_ok = len(self.shape) == 3 and all(int(s) == s >= 16 for s in self.shape)
        req(shape_ok, "shape", "pass three ints (Z, Y, X), each >= 16, e.g. (64, 128, 128)")
        req(bool(np.isfinite(vox) and vox > 0), "voxel_size_um", "pass a size > 0 in um, e.g. 0.1")
        lo, hi = self.radius_range_um
        req(0 < lo <= hi, "radius_range_um", "pass (min, max) with 0 < min <= max")
        req(2 * lo / vox + 4 <= min(self.shape), "radius_range_um", "enlarge shape to fit min")
        req(lo / vox >= 1.5, "radius_range_um", "min radius must span >= 1.5 voxels")
        for name in ("touching_fraction", "sse_fraction", "carbon_fraction", "soc_mean"):
            req(0 <= getattr(self, name) <= 1, name, "must lie in [0, 1]")
        req(self.sse_fraction + self.carbon_fraction < 0.9, "sse_fraction", "sum with carbon < 0.9")
        req(self.carbon_form in ("graphite", "fibre"), "carbon_form", "use 'graphite' or 'fibre'")
        req(self.carbon_thickness_um >= vox, "carbon_thickness_um", "must be >= voxel_size_um")
        req(0 < self.size_correlation <= 1, "size_correlation", "must lie in (0, 1]")
        for name in ("n_particles", "min_gap_um", "polarisation_strength", "soc_noise_sigma"):
            req(getattr(self, name) >= 0, name, "must be >= 0")

    @property
    def reference_radius_um(self) -> float:
        """Geometric middle of the radius range, um (1.0 for the default)."""
        return float(np.sqrt(self.radius_range_um[0] * self.radius_range_um[1]))

    @property
    def carbon_density_g_cm3(self) -> float:
        """Mass density of the carbon phase, g/cm3."""
        graphite = self.carbon_form == "graphite"
        return GRAPHITE_DENSITY_G_CM3 if graphite else CARBON_FIBRE_DENSITY_G_CM3


@dataclass
class Phantom3D:
    """Ground truth of a 3D phantom.

    Attributes
    ----------
    config : Phantom3DConfig
    labels : ndarray of int32, (Z, Y, X)
        NMC particle label, 0 = none; labels are ``1..n_particles``.
    phases : ndarray of uint8, (Z, Y, X)
        `Phase` code per voxel (VOID = pore).
    soc : ndarray of float32
        SOC in NMC voxels, NaN elsewhere.
    electron_density : ndarray of float32
        Electrons per nm^3 of every voxel (0 in pores).
    oxidation_state, edge_energy : ndarray of float32
        Ni oxidation state ``2 + soc`` and the half-step Ni K-edge energy (eV) of
        `truth_edge_energy`; NaN outside NMC.
    particles : pandas.DataFrame
        Per-particle truth indexed by ``label``: centre ``z, y, x`` (voxels),
        ``radius_um``, ``depth_um`` (centre to separator), ``n_voxels``,
        ``soc_target``, ``soc_mean/std``, ``electron_density_mean/std`` (of the
        voxels), ``has_sse_contact``, ``has_carbon_contact``.
    touching_pairs : list of tuple of int
        Labels placed in contact.
    """

    config: Phantom3DConfig
    labels: np.ndarray
    phases: np.ndarray
    soc: np.ndarray
    electron_density: np.ndarray
    oxidation_state: np.ndarray
    edge_energy: np.ndarray
    particles: pd.DataFrame
    touching_pairs: list[tuple[int, int]] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Volume shape ``(Z, Y, X)``."""
        return self.labels.shape

    @property
    def voxel_size_um(self) -> float:
        """Voxel edge, um."""
        return self.config.voxel_size_um

    @property
    def n_particles(self) -> int:
        """Number of NMC particles placed."""
        return len(self.particles)

    def density_size_pearson_r(self) -> float:
        """Pearson r of particle mean electron density against radius (NaN if < 3)."""
        r = self.particles["radius_um"].to_numpy()
        d = self.particles["electron_density_mean"].to_numpy()
        if r.size < 3 or np.ptp(r) == 0 or np.ptp(d) == 0:
            return float("nan")
        return float(np.corrcoef(r, d)[0, 1])


def _place(cfg: Phantom3DConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list]:
    """Sphere centres (voxels), radii (um), touching pairs; largest first."""
    lo, hi = np.log(cfg.radius_range_um)
    radii = np.sort(np.exp(rng.uniform(lo, hi, cfg.n_particles)))[::-1]
    shape, vox, gap = np.array(cfg.shape, float), cfg.voxel_size_um, cfg.min_gap_um
    centres, placed, pairs = np.empty((0, 3)), np.empty(0), []
    for r_um in radii:
        r = r_um / vox
        box_lo, box_hi = np.full(3, r + 1.0), shape - r - 2.0
        if np.any(box_hi < box_lo):
            continue
        touch = placed.size > 0 and rng.random() < cfg.touching_fraction
        k = 1024  # candidate centres tried at once
        if touch:  # 2% overlap: a sinter neck
            j, u = rng.integers(placed.size, size=k), rng.normal(size=(k, 3))
            u /= np.linalg.norm(u, axis=1, keepdims=True)
            cand = centres[j] + 0.98 * (r + placed[j])[:, None] * u
        else:
            cand = rng.uniform(box_lo, box_hi, size=(k, 3))
        ok = np.all((cand >= box_lo) & (cand <= box_hi), axis=1)
        if placed.size:
            d = np.linalg.norm(cand[:, None] - centres[None], axis=2) - placed - r
            if touch:
                d[np.arange(k), j] = np.inf
            ok &= d.min(axis=1) >= gap / vox
        if ok.any():
            i = int(np.argmax(ok))
            if touch:
                pairs.append((int(j[i]) + 1, placed.size + 1))
            centres, placed = np.vstack([centres, cand[i]]), np.append(placed, r)
    if placed.size < cfg.n_particles:
        logger.info("Placed %d of %d particles in %s", placed.size, cfg.n_particles, cfg.shape)
    return centres, placed * vox, pairs


def _box(centre: np.ndarray, half: float, shape: tuple[int, ...]) -> tuple[slice, ...]:
    lims = zip(centre, shape, strict=True)
    return tuple(slice(max(int(c - half) - 1, 0), min(int(c + half) + 2, n)) for c, n in lims)


def _render_spheres(shape: tuple, centres: np.ndarray, radii_vox: np.ndarray) -> np.ndarray:
    labels = np.zeros(shape, np.int32)
    best = np.full(shape, np.inf, np.float32)  # normalised distance of the owner
    for i, (c, r) in enumerate(zip(centres, radii_vox, strict=True), start=1):
        sl = _box(c, r, shape)
        zz, yy, xx = np.ogrid[sl]
        nd = np.sqrt((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) / r
        win = (nd <= 1.0) & (nd < best[sl])
        labels[sl][win] = i
        best[sl][win] = nd[win]
    return labels


def _smooth_field(shape: tuple, corr_vox: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance periodic Gaussian random field, correlation length ~``corr_vox``."""
    spec = np.fft.rfftn(rng.standard_normal(shape).astype(np.float32))
    fz, fy = np.fft.fftfreq(shape[0])[:, None, None], np.fft.fftfreq(shape[1])[:, None]
    spec *= np.exp(-2 * (np.pi * corr_vox) ** 2 * (fz**2 + fy**2 + np.fft.rfftfreq(shape[2]) ** 2))
    full = np.fft.irfftn(spec, shape, axes=(0, 1, 2))
    return ((full - full.mean()) / (full.std() + 1e-12)).astype(np.float32)


def _render_carbon(cfg: Phantom3DConfig, free: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shape, vox = cfg.shape, cfg.voxel_size_um
    out = np.zeros(shape, bool)
    target = cfg.carbon_fraction * out.size
    half_t = 0.5 * cfg.carbon_thickness_um / vox
    if cfg.carbon_form == "fibre":
        axis, n_vox, tries = np.zeros(shape, bool), 0.0, 0  # fibre axes, thickened by an EDT
        g = np.arange(-int(half_t), int(half_t) + 1)
        area = np.count_nonzero(g[:, None] ** 2 + g**2 <= half_t**2)  # voxels per section
        while n_vox < target and (tries := tries + 1) <= 10_000:
            p0, u = rng.uniform(0, np.array(shape) - 1), rng.normal(size=3)
            length = rng.uniform(4.0, 12.0) / vox
            t = np.linspace(0, length, int(2 * length))[:, None]
            pts = np.round(p0 + t * u / np.linalg.norm(u)).astype(int)
            pts = pts[np.all((pts >= 0) & (pts < shape), axis=1)]
            axis[tuple(pts.T)] = True
            n_vox += area * np.count_nonzero(free[tuple(pts.T)]) / 2  # 2 points per voxel
        return (ndimage.distance_transform_edt(~axis) <= half_t) & free
    for _ in range(10_000):  # wrinkled graphite flakes
        if out.sum() >= target:
            break
        c = rng.uniform(0, np.array(shape) - 1)
        n, e1, e2 = np.linalg.qr(rng.normal(size=(3, 3)))[0].T  # random orthonormal frame
        rad, amp = rng.uniform(1.0, 2.5) / vox, 0.15 / vox
        k1, k2 = 2 * np.pi * vox / rng.uniform(0.6, 1.2, size=2)
        ph1, ph2 = rng.uniform(0, 2 * np.pi, size=2)
        sl = _box(c, rad + amp + half_t, shape)
        zz, yy, xx = np.ogrid[sl]
        d = (zz - c[0], yy - c[1], xx - c[2])
        s, t, h = (sum(v[i] * d[i] for i in range(3)) for v in (e1, e2, n))
        wrinkle = amp * (np.sin(k1 * s + ph1) + np.sin(k2 * t + ph2))
        out[sl] |= (np.abs(h - wrinkle) <= half_t) & (s * s + t * t <= rad * rad) & free[sl]
    return out


def _impedance_term(
    labels: np.ndarray, sse: np.ndarray, carbon: np.ndarray, centres: np.ndarray, radii: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``c - mean_particle(c)`` per voxel, (has SSE, has carbon) per particle; radii in voxels."""
    six = ndimage.generate_binary_structure(3, 1)
    near_sse, near_c = (ndimage.binary_dilation(v, six) for v in (sse, carbon))
    term = np.zeros(labels.shape, np.float32)
    flags = np.zeros((len(radii), 2), bool)
    for i, (c, r) in enumerate(zip(centres, radii, strict=True), start=1):
        sl = _box(c, r, labels.shape)
        mask = labels[sl] == i
        dists = []
        for k, near in enumerate((near_sse, near_c)):
            contact = mask & near[sl]
            flags[i - 1, k] = contact.any()
            if flags[i - 1, k]:
                d = ndimage.distance_transform_edt(~contact)[mask]
                dists.append(d / max(d.max(), 1e-6))
        if dists and mask.any():
            cval = np.mean(dists, axis=0)
            term[sl][mask] = cval - cval.mean()
    return term, flags


def _particle_soc(cfg: Phantom3DConfig, radii: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Designed particle mean SOC: size law + scatter (see module docstring)."""
    r_ref = cfg.reference_radius_um
    e = rng.normal(size=radii.size) * np.sqrt(r_ref / radii)  # small: more scatter
    base = cfg.soc_mean + cfg.soc_size_slope_per_um * (radii - r_ref)
    x = radii - radii.mean()
    e = e - e.mean()
    e -= (e @ x) / (x @ x + 1e-12) * x  # (no scatter left for fewer than 3 particles)
    rho = cfg.size_correlation
    scale = abs(cfg.soc_size_slope_per_um) * np.linalg.norm(x) * np.sqrt(1 - rho**2) / rho
    return base + e * scale / max(np.linalg.norm(e), 1e-12)


def make_phantom3d(config: Phantom3DConfig | None = None) -> Phantom3D:
    """Generate a 3D phantom (deterministic for a given config).

    Parameters
    ----------
    config : Phantom3DConfig, optional
        Defaults to ``Phantom3DConfig()`` (64 x 128 x 128 voxels of 0.1 um).

    Returns
    -------
    Phantom3D

    Examples
    --------
    >>> ph = make_phantom3d(Phantom3DConfig(shape=(32, 48, 48), n_particles=4, seed=1))
    >>> ph.labels.shape, ph.n_particles <= 4
    ((32, 48, 48), True)
    """
    cfg = config or Phantom3DConfig()
    rng = np.random.default_rng(cfg.seed)
    vox = cfg.voxel_size_um
    centres, radii, pairs = _place(cfg, rng)
    n = radii.size
    centres = centres.reshape(n, 3)
    labels = _render_spheres(cfg.shape, centres, radii / vox)
    nmc = labels > 0
    carbon = _render_carbon(cfg, ~nmc, rng)
    field_ = _smooth_field(cfg.shape, 0.8 / vox, rng)
    free = ~nmc & ~carbon
    vals = field_[free]
    k = max(vals.size - round(cfg.sse_fraction * labels.size), 0)  # SSE: the top of the field
    sse = free & (field_ >= np.partition(vals, k)[k]) if k < vals.size else np.zeros_like(free)
    phases = np.full(cfg.shape, Phase.VOID, np.uint8)
    phases[sse], phases[carbon], phases[nmc] = Phase.SSE, Phase.CARBON, Phase.NMC

    term, flags = _impedance_term(labels, sse, carbon, centres, radii / vox)
    target = _particle_soc(cfg, radii, rng) if n else np.empty(0)
    amp = cfg.polarisation_strength * np.sqrt(radii / cfg.reference_radius_um)
    lab = labels[nmc] - 1
    values = target[lab] + amp[lab] * term[nmc] + rng.normal(0, cfg.soc_noise_sigma, lab.size)
    soc = np.full(cfg.shape, np.nan, np.float32)
    soc[nmc] = np.clip(values, *SOC_CLIP)

    e_density = np.zeros(cfg.shape, np.float32)
    e_density[nmc] = nmc_electron_density(soc[nmc])
    e_density[sse] = electron_density_per_nm3(SSE_FORMULA, SSE_DENSITY_G_CM3)
    e_density[carbon] = electron_density_per_nm3("C", cfg.carbon_density_g_cm3)

    lab1 = labels[nmc]
    cnt = np.bincount(lab1, minlength=n + 1)[1:]
    cols = {"z": centres[:, 0], "y": centres[:, 1], "x": centres[:, 2], "radius_um": radii}
    cols |= {"depth_um": centres[:, 0] * vox, "n_voxels": cnt, "soc_target": target}
    for name, vol in (("soc", soc), ("electron_density", e_density)):
        v = vol[nmc].astype(np.float64)
        mean = np.bincount(lab1, v, n + 1)[1:] / np.maximum(cnt, 1)
        var = np.bincount(lab1, (v - mean[lab1 - 1]) ** 2, n + 1)[1:] / np.maximum(cnt, 1)
        cols[f"{name}_mean"], cols[f"{name}_std"] = mean, np.sqrt(var)
    cols |= {"has_sse_contact": flags[:, 0], "has_carbon_contact": flags[:, 1]}
    particles = pd.DataFrame(cols, index=pd.Index(np.arange(1, n + 1), name="label"))
    logger.debug("Phantom3D %s: %d particles, %d touching pairs", cfg.shape, n, len(pairs))
    ox, edge = (2.0 + soc).astype(np.float32), truth_edge_energy(soc).astype(np.float32)
    return Phantom3D(cfg, labels, phases, soc, e_density, ox, edge, particles, pairs)
