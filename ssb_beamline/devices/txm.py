"""The EPICS TXM: every device of a beamline file, named as the simulator names them.

`EpicsTXM` has the attributes the sessions and plans use on the simulated TXM
(``energy``, ``zp_z``, ``det_z``, ``sample`` with ``x``/``y``/``z``/``rotation``,
``shutter``, ``fe_shutter``, ``i0``, ``ring_current``, ``detector``, ``holo_z``),
so the same plans run on it unchanged and produce the same data keys
(``energy``, ``zp_z``, ``det_z``, ``sample_x``, ``i0_flux``, ``ring_current``,
``shutter_state``, ``detector``, ``detector-timestamp``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ophyd_async.core import Device, PathProvider

from .area_detector import TXMAreaDetector
from .axis import BeamlineAxis
from .beam_monitors import I0Monitor, RingCurrent
from .beamline_file import BeamlineFile
from .detector_stage import DetectorStage
from .energy import MonochromatorEnergy
from .epics_shutter import EpicsShutter
from .holo import PropagationDistance
from .sample_stage import SampleStage
from .zone_plate import ZonePlateStage

__all__ = ["DEVICE_KEYS", "EpicsTXM", "make_epics_txm"]

#: Device attribute -> the beamline-file key its PVs come from.
DEVICE_KEYS = {
    "energy": "devices.energy.pv",
    "zone_plate": "devices.zone_plate.prefix",
    "detector_stage": "devices.detector_stage.prefix",
    "sample": "devices.sample_stage.prefix",
    "holo_z": "devices.holo_distance.pv",
    "shutter": "devices.shutter.prefix",
    "fe_shutter": "devices.fe_shutter.prefix",
    "i0": "devices.i0.pv",
    "ring_current": "devices.ring_current.pv",
    "detector": "devices.detector.prefix",
}


@dataclass
class EpicsTXM:
    """The devices of one beamline file (not connected: see `make_epics_txm`).

    Attributes
    ----------
    energy : MonochromatorEnergy
        Monochromator energy, eV.
    zone_plate : ZonePlateStage
        Zone-plate x, y, z (z: sample-to-zone-plate distance, mm).
    detector_stage : DetectorStage
        Detector z (zone-plate-to-detector distance, mm).
    sample : SampleStage
        Sample x, y, z (um) and rotation (degrees).
    shutter : EpicsShutter
        The photon shutter closed for darks and at the end of a run.
    i0 : I0Monitor
        Incident-flux monitor read with every frame.
    detector : TXMAreaDetector
        The areaDetector camera with its HDF5 writer.
    holo_z : PropagationDistance or None
        Holotomography propagation distance, mm; None when the file has none.
    fe_shutter : EpicsShutter or None
        Front-end shutter the suspenders watch; None when not configured.
    ring_current : RingCurrent or None
        Storage-ring current, mA, for the suspenders; None when not configured.
    faults : None
        Always None (fault injection exists on the simulator only).
    """

    energy: MonochromatorEnergy
    zone_plate: ZonePlateStage
    detector_stage: DetectorStage
    sample: SampleStage
    shutter: EpicsShutter
    i0: I0Monitor
    detector: TXMAreaDetector
    holo_z: PropagationDistance | None = None
    fe_shutter: EpicsShutter | None = None
    ring_current: RingCurrent | None = None
    faults: None = field(default=None, repr=False)  # no fault injection at a beamline

    @property
    def zp_z(self) -> BeamlineAxis:
        """Zone-plate z (sample-to-zone-plate distance, mm)."""
        return self.zone_plate.z

    @property
    def det_z(self) -> BeamlineAxis:
        """Detector z (zone-plate-to-detector distance, mm)."""
        return self.detector_stage.z

    def named_devices(self) -> dict[str, Device]:
        """Attribute name -> top-level device, for every configured device."""
        names = ("energy", "zone_plate", "detector_stage", "sample", "shutter", "i0",
                 "detector", "holo_z", "fe_shutter", "ring_current")  # fmt: skip
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    @property
    def devices(self) -> list[Device]:
        """All top-level devices (for ``init_devices`` / ``ensure_connected``)."""
        return list(self.named_devices().values())


def make_epics_txm(config: BeamlineFile, path_provider: PathProvider) -> EpicsTXM:
    """Build (not connect) the devices a beamline file names, with the simulator's names.

    Parameters
    ----------
    config : BeamlineFile
        The validated beamline file (``load_beamline_file(path).config``).
    path_provider : PathProvider
        Where the detector writes its HDF5 files (the file's
        ``detector_files.ioc_directory``).

    Returns
    -------
    EpicsTXM
        The devices, named as on the simulator (``zp``, ``det``, ``ring``, ...); not
        connected: connect them with ``init_devices`` or ``ensure_connected``.

    Examples
    --------
    >>> from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider
    >>> from ssb_beamline.devices.beamline_file import (
    ...     default_beamline_file, load_beamline_file)
    >>> config = load_beamline_file(default_beamline_file(), prefix="T1:").config
    >>> txm = make_epics_txm(config, StaticPathProvider(UUIDFilenameProvider(), "/tmp"))
    >>> txm.zp_z.name, txm.zp_z.user_readback.source
    ('zp_z', 'ca://T1:ZP:Z.RBV')
    """
    p, d = config.prefix, config.devices
    txm = EpicsTXM(
        energy=MonochromatorEnergy(p + d.energy.pv),
        zone_plate=ZonePlateStage(p + d.zone_plate.prefix),
        detector_stage=DetectorStage(p + d.detector_stage.prefix),
        sample=SampleStage(p + d.sample_stage.prefix),
        shutter=EpicsShutter(p + d.shutter.prefix, timeout=d.shutter.timeout_s),
        i0=I0Monitor(p + d.i0.pv),
        detector=TXMAreaDetector(
            p + d.detector.prefix,
            path_provider,
            driver_suffix=d.detector.driver_suffix,
            hdf_suffix=d.detector.hdf_suffix,
        ),
        holo_z=PropagationDistance(p + d.holo_distance.pv) if d.holo_distance else None,
        fe_shutter=(
            EpicsShutter(p + d.fe_shutter.prefix, timeout=d.fe_shutter.timeout_s)
            if d.fe_shutter
            else None
        ),
        ring_current=RingCurrent(p + d.ring_current.pv) if d.ring_current else None,
    )
    names = {"zone_plate": "zp", "detector_stage": "det", "ring_current": "ring"}
    for attr, device in txm.named_devices().items():
        device.set_name(names.get(attr, attr), child_name_separator="_")
    return txm
