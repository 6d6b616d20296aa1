"""Configuration of the synthetic composite-cathode phantom.

Phase codes are :class:`ssb_beamline.physics.Phase` (re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ssb_beamline.physics import Phase

__all__ = ["SOC_CLIP", "PhantomConfig", "Phase"]

#: SOC values inside particles are clipped to this range.
SOC_CLIP = (0.02, 0.98)


@dataclass(frozen=True)
class PhantomConfig:
    """Parameters of a synthetic composite-cathode phantom.

    Parameters
    ----------
    shape : tuple of int
        Image shape ``(H, W)`` in pixels.
    pixel_size_um : float
        Pixel size at the sample, um.
    radius_range_um : tuple of float
        Min and max NMC particle radius, um (drawn uniformly).
    n_particles : int
        Number of NMC particles requested (fewer are placed if they do not fit;
        a warning is logged).
    touching_fraction : float
        Fraction of particles placed in contact with an earlier particle; the
        rest keep a gap of at least ``min_gap_um``.
    min_gap_um : float
        Minimum gap between separated particles, um.
    sse_fraction : float
        Fraction of the whole field area covered by SSE (in pixels not covered
        by NMC).
    carbon_fraction : float
        Fraction of the whole field area covered by carbon fibres.
    sse_thickness_um : tuple of float
        Range of the projected SSE thickness, um.
    carbon_fibre_width_um : float
        Diameter of the carbon fibres, um (also their maximum thickness).
    soc_mean : float
        Designed SOC of a particle of radius ``r_ref`` (middle of the radius range).
    soc_size_slope_per_um : float
        Linear size dependence of the designed particle mean SOC, per um of radius.
    soc_particle_sigma : float
        Random per-particle scatter of the designed mean SOC.
    polarisation_amplitude : float
        SOC difference between the particle centre and its rim on the contact side.
    soc_noise_sigma : float
        Per-pixel white noise on the SOC.
    soc_model : {"diffusion", "linear"}
        Intra-particle SOC field. ``"diffusion"`` (default): the SOC rises with the
        combined Li+/e- impedance of the diffusion-distance model,
        ``soc = target + impedance_amplitude * (c - mean_particle(c))``, where ``c``
        is :func:`ssb_beamline.analysis.diffusion_distance_maps`' ``combined``
        map of the true phases (regions far from both contacts stay charged, as
        measured by Deng et al. 2025, Fig. 4c). ``"linear"``: a linear gradient
        towards the contacts of amplitude ``polarisation_amplitude``.
    impedance_amplitude : float
        SOC difference between combined impedance 1 and 0 (``"diffusion"`` model).
    point_contacts : bool
        Restrict the NMC-SSE and NMC-carbon contacts to a few patches per
        particle (as in the paper's model cathode) instead of wherever the SSE
        field and the fibres happen to touch a particle.
    sse_contacts_per_particle : int
        Number of SSE contact patches per particle (``point_contacts``).
    carbon_contact_probability : float
        Probability that a particle has a carbon contact (a fibre laid tangent
        to it); the others have no e- channel (``point_contacts``).
    contact_patch_deg : float
        Angular half-width of a contact patch, degrees.
    seed : int
        Seed of the random generator; the phantom is a pure function of the config.
    """

    shape: tuple[int, int] = (512, 512)
    pixel_size_um: float = 0.13
    radius_range_um: tuple[float, float] = (0.5, 5.0)
    n_particles: int = 40
    touching_fraction: float = 0.1
    min_gap_um: float = 0.4
    sse_fraction: float = 0.3
    carbon_fraction: float = 0.04
    sse_thickness_um: tuple[float, float] = (1.0, 4.0)
    carbon_fibre_width_um: float = 0.5
    soc_mean: float = 0.5
    soc_size_slope_per_um: float = -0.05
    soc_particle_sigma: float = 0.06
    polarisation_amplitude: float = 0.12
    soc_noise_sigma: float = 0.01
    soc_model: Literal["diffusion", "linear"] = "diffusion"
    impedance_amplitude: float = 0.25
    point_contacts: bool = True
    sse_contacts_per_particle: int = 1
    carbon_contact_probability: float = 0.85
    contact_patch_deg: float = 25.0
    seed: int = 0

    def __post_init__(self) -> None:
        lo, hi = self.radius_range_um
        if not 0 < lo <= hi:
            raise ValueError(f"radius_range_um must satisfy 0 < min <= max, got {lo}, {hi}")
        if self.pixel_size_um <= 0:
            raise ValueError(f"pixel_size_um must be > 0, got {self.pixel_size_um}")
        if min(self.shape) < 8:
            raise ValueError(f"shape must be at least 8x8 pixels, got {self.shape}")
        if not 0 <= self.sse_fraction + self.carbon_fraction < 1:
            raise ValueError("sse_fraction + carbon_fraction must lie in [0, 1)")
        if self.soc_model not in ("diffusion", "linear"):
            raise ValueError(f"soc_model must be 'diffusion' or 'linear', got {self.soc_model!r}")
        if not 0 <= self.carbon_contact_probability <= 1:
            raise ValueError("carbon_contact_probability must lie in [0, 1]")
        if self.sse_contacts_per_particle < 0 or not 0 < self.contact_patch_deg <= 180:
            raise ValueError(
                "sse_contacts_per_particle must be >= 0 and contact_patch_deg in (0, 180]"
            )

    @property
    def reference_radius_um(self) -> float:
        """Radius at which the designed mean SOC equals ``soc_mean``, um."""
        return 0.5 * (self.radius_range_um[0] + self.radius_range_um[1])

    def designed_particle_soc(self, radius_um: np.ndarray | float) -> np.ndarray:
        """Designed particle mean SOC (without scatter) for a radius, um."""
        r = np.asarray(radius_um, dtype=float)
        return self.soc_mean + self.soc_size_slope_per_um * (r - self.reference_radius_um)
