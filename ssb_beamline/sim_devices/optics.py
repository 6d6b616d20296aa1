"""Zone-plate imaging optics of the TXM (pure functions).

Conventions
-----------
* ``zp_z`` (mm) is the sample-to-zone-plate distance ``p``.
* ``det_z`` (mm) is the zone-plate-to-detector distance ``q``.

For a Fresnel zone plate of diameter ``D`` and outermost zone width ``dr_N`` the
first-order focal length is ``f = D * dr_N / lambda``. At magnification ``M`` the
in-focus positions are ``p = f (M + 1) / M`` and ``q = M p`` (thin-lens equation
``1/p + 1/q = 1/f``). With FXI-like numbers (D = 244 um, dr_N = 30 nm, M = 50) at
8333 eV: f = 49.2 mm, p = 50.2 mm, q = 2509 mm, and the focus moves by about
6 um (zone plate) and 0.3 mm (detector) per eV.

Defocus blur is geometric: the image of the sample plane forms at
``q_img = 1 / (1/f - 1/p)``; a detector at ``q`` sees a disc of confusion of
radius ``|q - q_img| * (D/2) / q_img`` which, divided by the magnification at
the detector ``q / p`` (chief ray), is the blur radius referred to the sample
plane. For a zone-plate
error ``dp`` alone this is ``|dp| * NA`` with ``NA = lambda / (2 dr_N)``; a detector
error ``dq`` alone gives ``|dq| * NA / M**2``. The Gaussian sigma is half the
blur radius, added in quadrature to a resolution floor of ``1.22 dr_N / 2.355``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "HC_EV_NM",
    "MAGNIFICATION",
    "OUTERMOST_ZONE_NM",
    "ZONE_PLATE_DIAMETER_UM",
    "FocusPositions",
    "defocus_blur_radius_um",
    "defocus_blur_sigma_px",
    "focal_length_mm",
    "focus_positions",
    "numerical_aperture",
    "wavelength_nm",
]

#: h*c in eV*nm.
HC_EV_NM = 1239.8419843320026

ZONE_PLATE_DIAMETER_UM = 244.0
OUTERMOST_ZONE_NM = 30.0
MAGNIFICATION = 50.0


@dataclass(frozen=True)
class FocusPositions:
    """In-focus positions of the zone plate and detector.

    Attributes
    ----------
    zp_z_mm : float
        Sample-to-zone-plate distance ``p``, mm.
    det_z_mm : float
        Zone-plate-to-detector distance ``q``, mm.
    focal_length_mm : float
        Zone-plate focal length ``f``, mm.
    """

    zp_z_mm: float
    det_z_mm: float
    focal_length_mm: float


def wavelength_nm(energy_ev: float) -> float:
    """Photon wavelength, nm."""
    if energy_ev <= 0:
        raise ValueError(f"energy_ev must be > 0, got {energy_ev}")
    return HC_EV_NM / energy_ev


def focal_length_mm(
    energy_ev: float,
    *,
    zone_plate_diameter_um: float = ZONE_PLATE_DIAMETER_UM,
    outermost_zone_nm: float = OUTERMOST_ZONE_NM,
) -> float:
    """First-order zone-plate focal length ``f = D dr_N / lambda``, mm."""
    return zone_plate_diameter_um * 1e-3 * outermost_zone_nm / wavelength_nm(energy_ev)


def numerical_aperture(energy_ev: float, *, outermost_zone_nm: float = OUTERMOST_ZONE_NM) -> float:
    """Object-side numerical aperture ``lambda / (2 dr_N)``."""
    return wavelength_nm(energy_ev) / (2.0 * outermost_zone_nm)


def focus_positions(
    energy_ev: float,
    *,
    zone_plate_diameter_um: float = ZONE_PLATE_DIAMETER_UM,
    outermost_zone_nm: float = OUTERMOST_ZONE_NM,
    magnification: float = MAGNIFICATION,
) -> FocusPositions:
    """In-focus zone-plate and detector positions at ``energy_ev``.

    Examples
    --------
    >>> fp = focus_positions(8333.0)
    >>> round(fp.focal_length_mm, 2), round(fp.zp_z_mm, 2), round(fp.det_z_mm, 1)
    (49.2, 50.18, 2509.1)
    """
    if magnification <= 0:
        raise ValueError(f"magnification must be > 0, got {magnification}")
    f = focal_length_mm(
        energy_ev,
        zone_plate_diameter_um=zone_plate_diameter_um,
        outermost_zone_nm=outermost_zone_nm,
    )
    p = f * (magnification + 1.0) / magnification
    return FocusPositions(zp_z_mm=p, det_z_mm=magnification * p, focal_length_mm=f)


def defocus_blur_radius_um(
    energy_ev: float,
    zp_z_mm: float,
    det_z_mm: float,
    *,
    zone_plate_diameter_um: float = ZONE_PLATE_DIAMETER_UM,
    outermost_zone_nm: float = OUTERMOST_ZONE_NM,
) -> float:
    """Geometric blur radius referred to the sample plane, um (0 when in focus)."""
    f = focal_length_mm(
        energy_ev,
        zone_plate_diameter_um=zone_plate_diameter_um,
        outermost_zone_nm=outermost_zone_nm,
    )
    p, q = float(zp_z_mm), float(det_z_mm)
    if p <= f:
        # Object inside the focal length: no real image, everything is a blur of
        # the full aperture size.
        return zone_plate_diameter_um / 2.0
    q_img = 1.0 / (1.0 / f - 1.0 / p)
    radius_at_detector_um = abs(q - q_img) * (zone_plate_diameter_um / 2.0) / q_img
    # The chief ray through the zone-plate centre sets the scale at the detector:
    # sample-plane distances appear magnified by q / p there.
    return radius_at_detector_um * p / q


def defocus_blur_sigma_px(
    energy_ev: float,
    zp_z_mm: float,
    det_z_mm: float,
    pixel_size_um: float,
    *,
    zone_plate_diameter_um: float = ZONE_PLATE_DIAMETER_UM,
    outermost_zone_nm: float = OUTERMOST_ZONE_NM,
) -> float:
    """Gaussian blur sigma in pixels from zone-plate and detector defocus.

    Parameters
    ----------
    energy_ev : float
        Current photon energy, eV.
    zp_z_mm, det_z_mm : float
        Actual zone-plate (``p``) and detector (``q``) positions, mm.
    pixel_size_um : float
        Pixel size referred to the sample, um.

    Returns
    -------
    float
        ``sqrt((R/2)**2 + floor**2) / pixel_size_um`` with ``R`` the geometric blur
        radius and ``floor = 1.22 dr_N / 2.355`` the resolution limit.

    Examples
    --------
    >>> fp = focus_positions(8333.0)
    >>> defocus_blur_sigma_px(8333.0, fp.zp_z_mm, fp.det_z_mm, 0.13) < 0.5
    True
    >>> defocus_blur_sigma_px(8333.0, fp.zp_z_mm + 1.0, fp.det_z_mm, 0.13) > 5
    True
    """
    radius = defocus_blur_radius_um(
        energy_ev,
        zp_z_mm,
        det_z_mm,
        zone_plate_diameter_um=zone_plate_diameter_um,
        outermost_zone_nm=outermost_zone_nm,
    )
    floor_um = 1.22 * outermost_zone_nm * 1e-3 / 2.355
    return float(np.hypot(radius / 2.0, floor_um) / pixel_size_um)
