"""Frame formation for simulated tomography: projector + beamline state -> uint16 frame.

`ProjectionImageModel` turns the noiseless, flat-normalised intensity of a
`Projector` (a 3-D sample seen at a rotation angle, energy and propagation
distance) into camera counts::

    counts = counts_per_s * exposure * flux * beam * blur(I(angle, E, z_eff))

then shot noise (Poisson), dark offset and Gaussian read noise, clipped to uint16
(saturation). A closed shutter gives dark frames; a sample moved out of the field
of view gives flat fields.

Two geometries (``mode``):

``"txm"``
    Zone-plate microscope, absorption contrast (distance 0). Zone-plate and
    detector positions away from focus blur the image (`defocus_blur_sigma_px`).
``"holo"``
    Cone-beam projection microscope (holotomography). ``holo_z`` is the
    focus-to-sample distance ``z1``; with the focus-to-detector distance ``D`` the
    effective propagation distance is ``z1 (D - z1) / D``. Images are delivered at
    the projector's pixel size (already rescaled to a common magnification); the
    zone-plate positions do not matter.

`SphereProjector` is a small analytic projector (absorbing, phase-shifting spheres,
exact chords) that satisfies the `Projector` protocol.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np
from scipy import ndimage

from .beam import make_beam_profile
from .image_model import (
    DetectorNoiseConfig,
    OpticsConfig,
    defocus_blur,
    noisy_frame,
    optics_blur_sigma_px,
)
from .optics import HC_EV_NM

if TYPE_CHECKING:
    from .tomo_detector import TomoState

__all__ = [
    "HoloGeometry",
    "ProjectionImageModel",
    "Projector",
    "Sphere",
    "SphereProjector",
    "default_spheres",
]

logger = logging.getLogger(__name__)

TomoMode = Literal["txm", "holo"]


@runtime_checkable
class Projector(Protocol):
    """What the model needs from a 3-D sample: projections at any angle and energy."""

    @property
    def detector_shape(self) -> tuple[int, int]:
        """``(Z, X)``: rows along the rotation axis, columns across it."""
        ...

    @property
    def pixel_size_um(self) -> float:
        """Pixel size at the sample, um."""
        ...

    def intensity(
        self, angle_deg: float, energy_ev: float, propagation_distance_m: float = 0.0
    ) -> np.ndarray:
        """Noiseless flat-normalised intensity, float32 ``(Z, X)``."""
        ...


@dataclass(frozen=True)
class HoloGeometry:
    """Cone-beam geometry of holotomography.

    Parameters
    ----------
    focus_to_detector_m : float
        Distance ``D`` from the beam focus to the detector, m. None means a
        parallel beam: the propagation distance is ``holo_z`` itself.
    """

    focus_to_detector_m: float | None = 1.2

    def effective_distance_m(self, holo_z_mm: float) -> float:
        """Effective propagation distance (m) for a focus-to-sample distance ``holo_z``."""
        z1 = max(float(holo_z_mm), 0.0) * 1e-3
        if self.focus_to_detector_m is None:
            return z1
        big_d = float(self.focus_to_detector_m)
        if not 0.0 <= z1 < big_d:
            raise ValueError(
                f"holo_z = {holo_z_mm} mm must lie between the focus and the detector "
                f"(0 <= z1 < {big_d * 1e3:g} mm)."
            )
        return z1 * (big_d - z1) / big_d


@dataclass
class ProjectionImageModel:
    """Computes tomography frames of a `Projector` for a `TomoState`.

    Parameters
    ----------
    projector : Projector
        The sample.
    mode : {"txm", "holo"}
        Geometry (see module docstring).
    noise : DetectorNoiseConfig
        Counts per second, dark offset, read noise, noise seed.
    optics : OpticsConfig
        Zone-plate optics for the defocus blur (``mode="txm"``).
    holo : HoloGeometry
        Cone-beam geometry (``mode="holo"``).
    beam_seed : int
        Seed of the illumination profile.
    """

    projector: Projector
    mode: TomoMode = "txm"
    noise: DetectorNoiseConfig = field(default_factory=DetectorNoiseConfig)
    optics: OpticsConfig = field(default_factory=OpticsConfig)
    holo: HoloGeometry = field(default_factory=HoloGeometry)
    beam_seed: int = 0
    beam_profile: np.ndarray = field(init=False, repr=False)
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in ("txm", "holo"):
            raise ValueError(f"mode must be 'txm' or 'holo', not {self.mode!r}")
        self.beam_profile = make_beam_profile(self.detector_shape, self.beam_seed)
        self._rng = np.random.default_rng(self.noise.seed)

    @property
    def detector_shape(self) -> tuple[int, int]:
        """Frame shape ``(Z, X)``."""
        z, x = self.projector.detector_shape
        return int(z), int(x)

    @property
    def pixel_size_um(self) -> float:
        """Pixel size at the sample, um."""
        return float(self.projector.pixel_size_um)

    @property
    def field_of_view_um(self) -> tuple[float, float]:
        """(height, width) of the field of view, um."""
        z, x = self.detector_shape
        return z * self.pixel_size_um, x * self.pixel_size_um

    def propagation_distance_m(self, state: TomoState) -> float:
        """Effective propagation distance: 0 for ``txm``, from ``holo_z`` for ``holo``."""
        if self.mode == "txm":
            return 0.0
        return self.holo.effective_distance_m(state.holo_z_mm)

    def blur_sigma_px(self, state: TomoState) -> float:
        """Zone-plate defocus blur sigma (px); 0 in ``holo`` mode."""
        if self.mode != "txm":
            return 0.0
        return optics_blur_sigma_px(state, self.pixel_size_um, self.optics)

    def sample_intensity(self, state: TomoState) -> np.ndarray:
        """Flat-normalised intensity of the (shifted) sample; 1 where there is none."""
        h, w = self.detector_shape
        dy = state.sample_y_um / self.pixel_size_um
        dx = state.sample_x_um / self.pixel_size_um
        if abs(dy) >= h or abs(dx) >= w:
            return np.ones((h, w), np.float32)
        image = np.asarray(
            self.projector.intensity(
                state.rotation_deg, state.energy_ev, self.propagation_distance_m(state)
            ),
            dtype=np.float32,
        )
        if image.shape != (h, w):
            raise ValueError(f"projector returned {image.shape}, expected {(h, w)}")
        if dy or dx:
            image = ndimage.shift(image, (dy, dx), order=1, mode="constant", cval=1.0)
        return image

    def expected_intensity(self, state: TomoState) -> np.ndarray:
        """Noiseless flat-normalised frame (sample and defocus blur), float32."""
        return defocus_blur(self.sample_intensity(state), self.blur_sigma_px(state))

    def expected_counts(self, state: TomoState, exposure_s: float) -> np.ndarray:
        """Noiseless mean counts above the dark offset, float32 ``(Z, X)``."""
        if not state.shutter_open:
            return np.zeros(self.detector_shape, np.float32)
        scale = np.float32(self.noise.counts_per_s * exposure_s * state.flux)
        return self.beam_profile * self.expected_intensity(state) * scale

    def render(self, state: TomoState, exposure_s: float) -> np.ndarray:
        """One noisy uint16 frame ``(Z, X)`` (Poisson + read noise, dark offset, clip)."""
        return noisy_frame(self.expected_counts(state, exposure_s), self.noise, self._rng)


@dataclass(frozen=True)
class Sphere:
    """A homogeneous sphere for `SphereProjector` (sample coordinates, um).

    ``x``/``y`` lie in the rotation plane (``x`` along the detector columns at
    angle 0, ``y`` along the beam), ``z`` along the rotation axis (rows).
    """

    x_um: float
    y_um: float
    z_um: float
    radius_um: float
    mu_pre_per_um: float = 0.05
    mu_post_per_um: float = 0.25
    phase_per_um: float = 0.5


@dataclass
class SphereProjector:
    """Analytic projector of spheres (exact chords) with a Ni K-edge absorption step.

    ``mu(E) = mu_pre + (mu_post - mu_pre) * (1 + tanh((E - edge_ev) / edge_width_ev)) / 2``
    and the phase shift scales as ``8333 / E``. Distance 0 gives ``exp(-sum mu t)``;
    a positive distance propagates the complex transmission (Fresnel, paraxial).
    The rotation axis is the column ``cx = (X - 1) / 2 + center_offset_px`` and a
    point ``(x, y)`` projects onto column ``cx + (x cos(theta) - y sin(theta)) / px``
    (the convention of `ssb_beamline.sim_devices.projection`).

    Examples
    --------
    >>> p = SphereProjector([Sphere(0.0, 0.0, 0.0, 1.0)], shape=(16, 16), pixel_size_um=0.2)
    >>> p.intensity(0.0, 8400.0).shape
    (16, 16)
    """

    spheres: Sequence[Sphere]
    shape: tuple[int, int] = (64, 64)
    pixel_size_um: float = 0.13
    center_offset_px: float = 0.0
    edge_ev: float = 8345.0
    edge_width_ev: float = 4.0

    @property
    def detector_shape(self) -> tuple[int, int]:
        """``(Z, X)``."""
        return self.shape

    @property
    def rotation_center_px(self) -> float:
        """Column of the rotation axis."""
        return (self.shape[1] - 1) / 2 + self.center_offset_px

    def mu_per_um(self, sphere: Sphere, energy_ev: float) -> float:
        """Linear absorption coefficient of ``sphere`` at ``energy_ev``, 1/um."""
        step = 0.5 * (1.0 + np.tanh((energy_ev - self.edge_ev) / self.edge_width_ev))
        return sphere.mu_pre_per_um + (sphere.mu_post_per_um - sphere.mu_pre_per_um) * step

    def optical_depth(self, angle_deg: float, energy_ev: float) -> tuple[np.ndarray, np.ndarray]:
        """``(sum mu t, sum phi t)`` projected at ``angle_deg``, float64 ``(Z, X)``."""
        nz, nx = self.shape
        px = self.pixel_size_um
        u = (np.arange(nx) - self.rotation_center_px) * px
        v = (np.arange(nz) - (nz - 1) / 2) * px
        theta = np.deg2rad(angle_deg)
        absorb = np.zeros(self.shape)
        phase = np.zeros(self.shape)
        for s in self.spheres:
            u0 = s.x_um * np.cos(theta) - s.y_um * np.sin(theta)
            d2 = (u[None, :] - u0) ** 2 + (v[:, None] - s.z_um) ** 2
            chord = 2.0 * np.sqrt(np.clip(s.radius_um**2 - d2, 0.0, None))
            absorb += self.mu_per_um(s, energy_ev) * chord
            phase += s.phase_per_um * 8333.0 / energy_ev * chord
        return absorb, phase

    def intensity(
        self, angle_deg: float, energy_ev: float, propagation_distance_m: float = 0.0
    ) -> np.ndarray:
        """Flat-normalised intensity at ``angle_deg``, ``energy_ev`` and a distance."""
        absorb, phase = self.optical_depth(angle_deg, energy_ev)
        if propagation_distance_m <= 0:
            return np.exp(-absorb).astype(np.float32)
        wave = np.exp(-0.5 * absorb - 1j * phase)
        nz, nx = self.shape
        padded = np.pad(wave, ((nz // 2, nz // 2), (nx // 2, nx // 2)), mode="edge")
        wavelength_m = HC_EV_NM / energy_ev * 1e-9
        fz = np.fft.fftfreq(padded.shape[0], self.pixel_size_um * 1e-6)
        fx = np.fft.fftfreq(padded.shape[1], self.pixel_size_um * 1e-6)
        kernel = np.exp(
            -1j * np.pi * wavelength_m * propagation_distance_m * (fz[:, None] ** 2 + fx**2)
        )
        out = np.fft.ifft2(np.fft.fft2(padded) * kernel)
        out = out[nz // 2 : nz // 2 + nz, nx // 2 : nx // 2 + nx]
        return (np.abs(out) ** 2).astype(np.float32)


def default_spheres(seed: int = 0, n: int = 5, fov_um: float = 8.0) -> list[Sphere]:
    """A few non-overlapping spheres inside a cylinder of the field of view."""
    rng = np.random.default_rng(seed)
    spheres: list[Sphere] = []
    limit = 0.35 * fov_um
    for _ in range(1000 * n):
        if len(spheres) == n:
            break
        r = float(rng.uniform(0.08, 0.16) * fov_um)
        x, y = rng.uniform(-limit + r, limit - r, 2)
        z = float(rng.uniform(-limit + r, limit - r))
        if np.hypot(x, y) > limit - r:
            continue
        if any(np.sqrt((x - s.x_um) ** 2 + (y - s.y_um) ** 2 + (z - s.z_um) ** 2) < r + s.radius_um
               for s in spheres):  # fmt: skip
            continue
        spheres.append(Sphere(float(x), float(y), z, r))
    if len(spheres) < n:
        raise ValueError(f"Could not place {n} spheres in a {fov_um} um field of view")
    return spheres
