"""Synthetic composite-cathode phantom for the simulated TXM.

The phantom is a 2D, section-like model of an all-solid-state composite cathode:
NMC811 secondary particles (projected as spheres), Li6PS5Cl solid electrolyte (SSE)
hugging the particles, and thin carbon fibres. Every pixel holds exactly one phase
(priority NMC > carbon > SSE > void), each with its own projected thickness.

The state of charge (SOC, fraction of the oxidised Ni3+ end member; Ni oxidation
state = 2 + SOC) carries the heterogeneity reported by Deng et al. (2025):

* **size dependence** (inter-particle): the designed particle mean SOC is
  ``soc_mean + soc_size_slope_per_um * (r - r_ref)`` with ``r_ref`` the middle of
  the radius range, plus a small per-particle scatter. The default slope is
  negative: smaller particles are more charged (delithiated).
* **conductive network** (intra-particle, ``soc_model="diffusion"``, default):
  the contacts with SSE (Li+) and carbon (e-) are a few point-like patches per
  particle (``point_contacts``), and the SOC rises with the combined impedance
  ``c`` of the diffusion-distance model (Deng et al. Fig. 4;
  `ssb_beamline.sim_devices.truth_distance.truth_distances` on the true phases,
  an algorithm independent of the analysis' `diffusion_distance_maps` it scores),
  ``soc += impedance_amplitude * (c - mean_particle(c))``; a particle without
  carbon (or SSE) contact uses its one normalised distance. The particle mean is
  unchanged, so the size law holds exactly; the SOC-weighted centroid moves away
  from the contacts (the polarisation is stored per particle).
* **polarisation** (``soc_model="linear"``): a linear SOC gradient along the unit
  vector pointing from the particle centre towards its contacts with SSE and
  carbon, ``soc += polarisation_amplitude * ((p - c) . u) / r``. For a full disc
  with mean SOC ``s0`` this moves the SOC-weighted centroid by
  ``polarisation_amplitude * r / (4 * s0)`` towards the contacts.
* small white noise per pixel, then clipping to ``[0.02, 0.98]``.

In both models the measured offset between the SOC-weighted and the geometric
centroid of every particle is `Phantom.polarisation_offset_um` and the Pearson r
of particle mean SOC against radius is `Phantom.soc_size_pearson_r`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .microstructure import (
    contact_directions,
    contact_patches,
    contacts,
    place_particles,
    render_fibres,
    render_spheres,
    render_sse,
    restrict_contacts,
)
from .phantom_config import SOC_CLIP, PhantomConfig, Phase
from .truth_distance import truth_distances

__all__ = ["SOC_CLIP", "Phantom", "PhantomConfig", "Phase", "make_phantom"]

logger = logging.getLogger(__name__)


@dataclass
class Phantom:
    """Ground truth of a phantom. Per-particle arrays are indexed by label.

    Per-particle arrays have length ``n_particles + 1``; entry 0 (no particle)
    is NaN, so ``phantom.particle_radius_um[phantom.labels]`` is a valid map.

    Attributes
    ----------
    config : PhantomConfig
        The configuration it was made from.
    phase : ndarray of uint8, (H, W)
        `Phase` code per pixel.
    labels : ndarray of int32, (H, W)
        NMC particle label, 0 = none.
    thickness_nmc_um, thickness_sse_um, thickness_carbon_um : ndarray of float32
        Projected thickness per phase, um.
    soc : ndarray of float32, (H, W)
        SOC in NMC pixels (clipped to `SOC_CLIP`), 0 elsewhere.
    contact_sse, contact_carbon : ndarray of bool, (H, W)
        NMC pixels 4-connected to an SSE (or carbon) pixel.
    particle_center_px : ndarray, (n + 1, 2)
        Designed sphere centres (row, col), pixels.
    particle_radius_um : ndarray, (n + 1,)
        Sphere radii, um.
    particle_soc_target : ndarray, (n + 1,)
        Designed mean SOC (size law + scatter), before polarisation and noise.
    particle_soc_mean, particle_soc_std : ndarray, (n + 1,)
        Mean and standard deviation of `soc` over each label.
    polarisation_direction : ndarray, (n + 1, 2)
        Unit vector (row, col) of the SOC gradient: towards the contacts
        (``"linear"``), or of the SOC-weighted centroid shift (``"diffusion"``).
    polarisation_offset_um : ndarray, (n + 1,)
        Distance between the SOC-weighted centroid and the geometric centroid of
        each label (unweighted pixel mask), um.
    touching_pairs : list of tuple of int
        Label pairs placed in contact.
    li_distance_um, e_distance_um : ndarray of float32 or None
        True Li+ / e- diffusion distances (NaN outside NMC or without contact).
    combined_impedance, core_shell : ndarray of float32 or None
        True combined-impedance and core-shell maps of the diffusion model
        (per-particle normalised, NaN outside NMC).
    """

    config: PhantomConfig
    phase: np.ndarray
    labels: np.ndarray
    thickness_nmc_um: np.ndarray
    thickness_sse_um: np.ndarray
    thickness_carbon_um: np.ndarray
    soc: np.ndarray
    contact_sse: np.ndarray
    contact_carbon: np.ndarray
    particle_center_px: np.ndarray
    particle_radius_um: np.ndarray
    particle_soc_target: np.ndarray
    particle_soc_mean: np.ndarray
    particle_soc_std: np.ndarray
    polarisation_direction: np.ndarray
    polarisation_offset_um: np.ndarray
    touching_pairs: list[tuple[int, int]] = field(default_factory=list)
    li_distance_um: np.ndarray | None = None
    e_distance_um: np.ndarray | None = None
    combined_impedance: np.ndarray | None = None
    core_shell: np.ndarray | None = None

    @property
    def n_particles(self) -> int:
        """Number of NMC particles actually placed."""
        return len(self.particle_radius_um) - 1

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape ``(H, W)``."""
        return self.labels.shape

    @property
    def oxidation_state(self) -> np.ndarray:
        """Ni oxidation state map, ``2 + soc`` in NMC pixels, NaN elsewhere."""
        return np.where(self.labels > 0, 2.0 + self.soc, np.nan).astype(np.float32)

    @property
    def soc_size_pearson_r(self) -> float:
        """Pearson r of the particles' true mean SOC against their radius (NaN if < 3)."""
        r, s = self.particle_radius_um[1:], self.particle_soc_mean[1:]
        if r.size < 3 or np.ptp(r) == 0 or np.ptp(s) == 0:
            return float("nan")
        return float(np.corrcoef(r, s)[0, 1])


def make_phantom(config: PhantomConfig | None = None) -> Phantom:
    """Generate a phantom (deterministic for a given config).

    Parameters
    ----------
    config : PhantomConfig, optional
        Parameters; defaults to ``PhantomConfig()`` (512x512, 0.13 um pixels).

    Returns
    -------
    Phantom
        Phase/label maps, thicknesses, the SOC field and per-particle truth.

    Examples
    --------
    >>> ph = make_phantom(PhantomConfig(shape=(128, 128), n_particles=5, seed=1))
    >>> ph.labels.shape, int(ph.labels.max()) <= 5
    ((128, 128), True)
    """
    config = config or PhantomConfig()
    rng = np.random.default_rng(config.seed)
    px = config.pixel_size_um
    geo = _geometry(config, rng)
    centers, radii_um, labels, phase = geo["centers"], geo["radii_um"], geo["labels"], geo["phase"]
    n = len(radii_um)
    nmc = labels > 0
    contact_sse = contacts(labels, phase == Phase.SSE)
    contact_carbon = contacts(labels, phase == Phase.CARBON)
    direction = contact_directions(labels, contact_sse | contact_carbon, centers, rng)
    soc, target, maps = _soc_field(config, rng, phase, labels, centers, radii_um, direction)
    mean, std, offset, shift_direction = _particle_truth(soc, nmc, labels, n, px)
    if maps is not None and n:  # the direction of the actual centroid shift
        direction = shift_direction
    nan1 = np.array([np.nan])
    t_nmc, t_sse, t_c, pairs = geo["t_nmc"], geo["t_sse"], geo["t_c"], geo["pairs"]

    def _pad(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=float)
        return np.concatenate([np.full((1, *a.shape[1:]), np.nan), a])

    logger.debug("Phantom %s: %d particles, %d touching pairs", config.shape, n, len(pairs))
    return Phantom(
        config=config,
        phase=phase,
        labels=labels,
        thickness_nmc_um=t_nmc,
        thickness_sse_um=t_sse,
        thickness_carbon_um=t_c,
        soc=soc,
        contact_sse=contact_sse,
        contact_carbon=contact_carbon,
        particle_center_px=_pad(centers.reshape(n, 2)),
        particle_radius_um=np.concatenate([nan1, radii_um]),
        particle_soc_target=np.concatenate([nan1, target]),
        particle_soc_mean=np.concatenate([nan1, mean]),
        particle_soc_std=np.concatenate([nan1, std]),
        polarisation_direction=_pad(direction.reshape(n, 2)),
        polarisation_offset_um=np.concatenate([nan1, offset]),
        touching_pairs=pairs,
        li_distance_um=None if maps is None else maps.li_distance_um,
        e_distance_um=None if maps is None else maps.e_distance_um,
        combined_impedance=None if maps is None else maps.combined,
        core_shell=None if maps is None else maps.core_shell,
    )


def _geometry(config: PhantomConfig, rng: np.random.Generator) -> dict:
    """Particles, electrolyte and carbon: thicknesses, labels and the phase map."""
    px = config.pixel_size_um
    centers, radii_um, pairs = place_particles(config, rng)
    n = len(radii_um)
    t_nmc, labels = render_spheres(config.shape, centers, radii_um / px, px)
    nmc = labels > 0
    t_sse = render_sse(config, labels, rng)
    tangents: list = []
    patches = None
    if config.point_contacts:
        patches = contact_patches(config, n, rng)
        tangents = [(centers[i], radii_um[i] / px, a) for i in range(n) for a in patches[1][i]]
    t_c = render_fibres(config, rng, tangents)
    if patches is not None:
        restrict_contacts(config, labels, centers, t_sse, t_c, patches)
    t_c[nmc] = 0.0
    carbon = t_c > 0
    t_sse[nmc | carbon] = 0.0
    phase = np.full(config.shape, Phase.VOID, np.uint8)
    phase[t_sse > 0] = Phase.SSE
    phase[carbon] = Phase.CARBON
    phase[nmc] = Phase.NMC
    return dict(centers=centers, radii_um=radii_um, pairs=pairs, labels=labels, phase=phase,
                t_nmc=t_nmc, t_sse=t_sse, t_c=t_c)  # fmt: skip


def _soc_field(config, rng, phase, labels, centers, radii_um, direction):
    """SOC per NMC pixel: the particle's target plus the diffusion (or linear) gradient.

    Returns the SOC map, the per-particle targets and the truth distance maps
    (None for the linear model).
    """
    px = config.pixel_size_um
    n = len(radii_um)
    target = config.designed_particle_soc(radii_um) + rng.normal(
        0.0, config.soc_particle_sigma, size=n
    )
    rows, cols = np.nonzero(labels > 0)
    lab = labels[rows, cols] - 1
    maps = None
    if config.soc_model == "diffusion" and n:
        maps = truth_distances(phase, labels, px)
        gradient = config.impedance_amplitude * _impedance_term(maps, labels, n)[rows, cols]
    else:
        proj = (rows - centers[lab, 0]) * direction[lab, 0] + (cols - centers[lab, 1]) * direction[
            lab, 1
        ]
        gradient = config.polarisation_amplitude * proj / (radii_um[lab] / px)
    values = target[lab] + gradient + rng.normal(0.0, config.soc_noise_sigma, size=rows.size)
    soc = np.zeros(config.shape, np.float32)
    soc[rows, cols] = np.clip(values, *SOC_CLIP)
    return soc, target, maps


def _particle_truth(soc, nmc, labels, n: int, px: float):
    """Per-particle SOC mean / std, centroid offset (um) and its direction."""
    if not n:
        empty = np.empty(0)
        return empty, empty, empty, np.empty((0, 2))
    index = np.arange(1, n + 1)
    mean = np.asarray(ndimage.mean(soc, labels, index))
    std = np.asarray(ndimage.standard_deviation(soc, labels, index))
    geo = np.asarray(ndimage.center_of_mass(nmc, labels, index)).reshape(n, 2)
    wtd = np.asarray(ndimage.center_of_mass(soc, labels, index)).reshape(n, 2)
    shift = wtd - geo
    offset = np.hypot(*shift.T) * px
    return mean, std, offset, shift / np.maximum(np.hypot(*shift.T), 1e-12)[:, None]


def _impedance_term(maps, labels: np.ndarray, n: int) -> np.ndarray:
    """``c - mean_particle(c)`` per NMC pixel (0 elsewhere).

    ``c`` is the combined impedance; where a particle lacks one kind of contact
    its one normalised distance is used, and without any contact the term is 0.
    """
    c = maps.combined
    for alt in (maps.li_norm, maps.e_norm):
        if alt is not None:
            c = alt if c is None else np.where(np.isfinite(c), c, alt)
    if c is None:
        return np.zeros(labels.shape, np.float32)
    ok = np.isfinite(c) & (labels > 0)
    cnt = np.bincount(labels[ok], minlength=n + 1)
    mean = np.bincount(labels[ok], c[ok], minlength=n + 1) / np.maximum(cnt, 1)
    return np.where(ok, c - mean[labels], 0.0).astype(np.float32)
