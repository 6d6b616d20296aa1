"""Forward physics of (holo)tomography in one place: a facade over the pure modules.

`PhantomProjector` (defined in `ssb_beamline.sim_devices.projection`) turns a
`Phantom3D` into noiseless, flat-normalised detector images; the functions below
are the building blocks (3D phantom, refractive index, projection, Fresnel
propagation).
"""

from __future__ import annotations

from .fresnel import exit_wave, fresnel_number, fresnel_propagate, holo_intensity
from .phantom3d import Phantom3D, Phantom3DConfig, make_phantom3d
from .projection import PhantomProjector, project, project_many
from .refraction import electron_density_from_delta, refractive_index, wavelength_m

__all__ = [
    "Phantom3D",
    "Phantom3DConfig",
    "PhantomProjector",
    "electron_density_from_delta",
    "exit_wave",
    "fresnel_number",
    "fresnel_propagate",
    "holo_intensity",
    "make_phantom3d",
    "project",
    "project_many",
    "refractive_index",
    "wavelength_m",
]
