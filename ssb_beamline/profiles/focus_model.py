"""The zone-plate focus model of a beamline file: energy -> (zone-plate z, detector z).

A plain, named callable (so a registry of focus models can list it by ``name``):
the thin-lens positions of :func:`ssb_beamline.sim_devices.optics.focus_positions`
for the file's zone plate and magnification, plus the motor offsets of the file
(motor position = optical distance + offset).
"""

from __future__ import annotations

from dataclasses import dataclass

from ssb_beamline.devices.beamline_file import FocusCalibration
from ssb_beamline.sim_devices.optics import focus_positions

__all__ = ["ZonePlateFocusModel"]


@dataclass(frozen=True)
class ZonePlateFocusModel:
    """Energy (eV) -> (zone-plate z, detector z) in mm, at a fixed magnification.

    Attributes
    ----------
    name : str
        Name the model is registered under, recorded with each run.
    zone_plate_diameter_um : float
        Zone-plate diameter, um (> 0).
    outermost_zone_nm : float
        Outermost zone width, nm (> 0); with the diameter it sets the focal length
        ``f = D dr / lambda``.
    magnification : float
        Fixed magnification the detector distance keeps (> 0).
    zp_z_offset_mm, det_z_offset_mm : float, default 0.0
        Motor position minus thin-lens distance, mm (from the beamline's focus
        calibration).

    Examples
    --------
    >>> model = ZonePlateFocusModel("fxi-like", 244.0, 30.0, 50.0)
    >>> [round(v, 2) for v in model(8333.0)]
    [50.18, 2509.09]
    """

    name: str
    zone_plate_diameter_um: float
    outermost_zone_nm: float
    magnification: float
    zp_z_offset_mm: float = 0.0
    det_z_offset_mm: float = 0.0

    @classmethod
    def from_calibration(cls, calibration: FocusCalibration) -> ZonePlateFocusModel:
        """The model of a beamline file's ``focus`` section."""
        return cls(
            calibration.name,
            calibration.zone_plate_diameter_um,
            calibration.outermost_zone_nm,
            calibration.magnification,
            calibration.zp_z_offset_mm,
            calibration.det_z_offset_mm,
        )

    def __call__(self, energy_ev: float) -> tuple[float, float]:
        """In-focus (zone-plate z, detector z), mm, at ``energy_ev``."""
        positions = focus_positions(
            float(energy_ev),
            zone_plate_diameter_um=self.zone_plate_diameter_um,
            outermost_zone_nm=self.outermost_zone_nm,
            magnification=self.magnification,
        )
        return (positions.zp_z_mm + self.zp_z_offset_mm, positions.det_z_mm + self.det_z_offset_mm)

    def __repr__(self) -> str:
        return f"ZonePlateFocusModel({self.name!r})"
