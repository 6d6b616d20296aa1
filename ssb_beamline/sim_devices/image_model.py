"""Frame formation of the simulated TXM: phantom + beamline state -> uint16 frame."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .beam import make_beam_profile
from .optics import (
    MAGNIFICATION,
    OUTERMOST_ZONE_NM,
    ZONE_PLATE_DIAMETER_UM,
    defocus_blur_sigma_px,
    focus_positions,
)
from .phantom import Phantom
from .state import BeamlineState
from .xray_physics import transmission

__all__ = [
    "MIN_BLUR_SIGMA_PX",
    "POISSON_EXACT_BELOW",
    "UINT16_MAX",
    "DetectorNoiseConfig",
    "DriftConfig",
    "OpticsConfig",
    "TXMImageModel",
    "defocus_blur",
    "noisy_frame",
    "optics_blur_sigma_px",
]

logger = logging.getLogger(__name__)

#: Blur below this sigma (px) is not applied (it is below the pixel size).
MIN_BLUR_SIGMA_PX = 0.3
UINT16_MAX = 65535
#: Mean counts below which shot noise is drawn exactly from a Poisson law.
POISSON_EXACT_BELOW = 50.0


@dataclass(frozen=True)
class DetectorNoiseConfig:
    """Camera response.

    Parameters
    ----------
    counts_per_s : float
        Open-beam counts per second at the beam maximum and nominal flux.
    dark_offset : float
        Dark (bias) level, counts.
    read_noise : float
        Gaussian read noise sigma, counts.
    seed : int
        Seed of the Poisson/read noise generator.
    """

    counts_per_s: float = 1.0e6
    dark_offset: float = 100.0
    read_noise: float = 3.0
    seed: int = 0


@dataclass(frozen=True)
class DriftConfig:
    """Random sample drift, a fixed offset per energy (off by default).

    Parameters
    ----------
    max_drift_px : float
        Offsets are uniform in ``[-max_drift_px, max_drift_px]`` in x and y.
    seed : int
        Seed; the offset at an energy is a pure function of (seed, energy).
    """

    max_drift_px: float = 0.0
    seed: int = 0

    def offset_px(self, energy_ev: float) -> tuple[float, float]:
        """(dy, dx) drift at ``energy_ev`` (rounded to 0.01 eV), pixels."""
        if self.max_drift_px <= 0:
            return 0.0, 0.0
        rng = np.random.default_rng([self.seed, round(energy_ev * 100)])
        dy, dx = rng.uniform(-self.max_drift_px, self.max_drift_px, 2)
        return float(dy), float(dx)


@dataclass(frozen=True)
class OpticsConfig:
    """Zone-plate optics used for the defocus blur (see `optics`)."""

    zone_plate_diameter_um: float = ZONE_PLATE_DIAMETER_UM
    outermost_zone_nm: float = OUTERMOST_ZONE_NM
    magnification: float = MAGNIFICATION

    def focus(self, energy_ev: float):
        """In-focus `FocusPositions` at ``energy_ev``."""
        return focus_positions(
            energy_ev,
            zone_plate_diameter_um=self.zone_plate_diameter_um,
            outermost_zone_nm=self.outermost_zone_nm,
            magnification=self.magnification,
        )


def optics_blur_sigma_px(state: BeamlineState, pixel_size_um: float, optics: OpticsConfig) -> float:
    """Zone-plate defocus blur sigma (px) for the state's energy and optics positions."""
    return defocus_blur_sigma_px(
        state.energy_ev,
        state.zp_z_mm,
        state.det_z_mm,
        pixel_size_um,
        zone_plate_diameter_um=optics.zone_plate_diameter_um,
        outermost_zone_nm=optics.outermost_zone_nm,
    )


def defocus_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``sigma`` px, or ``image`` itself below `MIN_BLUR_SIGMA_PX`."""
    if sigma >= MIN_BLUR_SIGMA_PX:
        return ndimage.gaussian_filter(image, sigma, mode="nearest", truncate=3.0)
    return image


def noisy_frame(
    mean: np.ndarray, noise: DetectorNoiseConfig, rng: np.random.Generator
) -> np.ndarray:
    """One uint16 frame from mean counts: shot and read noise, dark offset, clipped.

    Shot noise is exact Poisson below `POISSON_EXACT_BELOW` mean counts and its
    normal approximation (combined with the read noise) above.
    """
    read_var = np.float32(noise.read_noise**2)
    z = rng.standard_normal(mean.shape, dtype=np.float32)
    counts = mean + np.sqrt(mean + read_var) * z
    low = mean < POISSON_EXACT_BELOW
    if np.any(low):
        exact = rng.poisson(mean[low]).astype(np.float32)
        counts[low] = exact + np.float32(noise.read_noise) * z[low]
    counts += np.float32(noise.dark_offset)
    return np.clip(np.rint(counts), 0, UINT16_MAX).astype(np.uint16)


@dataclass
class TXMImageModel:
    """Computes TXM frames of a phantom for a `BeamlineState`.

    ``counts = counts_per_s * exposure * flux * beam * blur(T(shifted sample))``
    then shot noise (Poisson), plus dark offset and Gaussian read noise, clipped to
    uint16. A closed shutter gives dark frames. The sample is shifted by
    ``(sample_y, sample_x) / pixel_size`` (+ drift); beyond the field of view the
    frame is a flat field.
    """

    phantom: Phantom
    noise: DetectorNoiseConfig = field(default_factory=DetectorNoiseConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    optics: OpticsConfig = field(default_factory=OpticsConfig)
    beam_seed: int = 0
    beam_profile: np.ndarray = field(init=False, repr=False)
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.beam_profile = make_beam_profile(self.phantom.shape, self.beam_seed)
        self._rng = np.random.default_rng(self.noise.seed)

    @property
    def pixel_size_um(self) -> float:
        """Pixel size at the sample, um."""
        return self.phantom.config.pixel_size_um

    @property
    def field_of_view_um(self) -> tuple[float, float]:
        """(height, width) of the field of view, um."""
        h, w = self.phantom.shape
        return h * self.pixel_size_um, w * self.pixel_size_um

    def blur_sigma_px(self, state: BeamlineState) -> float:
        """Defocus blur sigma (px) for the state's energy and optics positions."""
        return optics_blur_sigma_px(state, self.pixel_size_um, self.optics)

    def sample_transmission(self, state: BeamlineState) -> np.ndarray:
        """Transmission of the (shifted, drifted) sample; 1 where there is none."""
        h, w = self.phantom.shape
        dy, dx = self.drift.offset_px(state.energy_ev)
        dy += state.sample_y_um / self.pixel_size_um
        dx += state.sample_x_um / self.pixel_size_um
        if abs(dy) >= h or abs(dx) >= w:
            return np.ones((h, w), np.float32)
        t = transmission(self.phantom, state.energy_ev)
        if dy or dx:
            t = ndimage.shift(t, (dy, dx), order=1, mode="constant", cval=1.0, prefilter=False)
        return t

    def expected_counts(self, state: BeamlineState, exposure_s: float) -> np.ndarray:
        """Noiseless mean counts above the dark offset, (H, W) float32."""
        if not state.shutter_open:
            return np.zeros(self.phantom.shape, np.float32)
        scale = np.float32(self.noise.counts_per_s * exposure_s * state.flux)
        image = self.beam_profile * self.sample_transmission(state)
        image = defocus_blur(image, self.blur_sigma_px(state))
        return image * scale

    def render(self, state: BeamlineState, exposure_s: float) -> np.ndarray:
        """One noisy uint16 frame, (H, W).

        Shot noise is exact Poisson below `POISSON_EXACT_BELOW` mean counts and its
        normal approximation (combined with the read noise) above, which is
        several times faster and indistinguishable at those counts.
        """
        return noisy_frame(self.expected_counts(state, exposure_s), self.noise, self._rng)
