"""The simulated TXM IOC: all PV groups in one caproto server, on loopback.

`SimTXMIOC` assembles the motor records (`axes`), shutters, I0 and ring
current, the fault PVs and (when built with a data directory) the camera and
its HDF5 plugin into one PV database; `serve_sim_txm_ioc` runs it until
interrupted. Run it as a process with
``python -m ssb_beamline.sim_devices.ioc --prefix SSBSIM:``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from caproto.server import PVGroup, run

from .axes import default_axes
from .beam import BeamMonitors, ShutterRecord
from .faults import FaultPVs
from .motors import AxisSpec, MotorRecord

__all__ = ["LOOPBACK", "SimTXMIOC", "serve_sim_txm_ioc", "server_env", "validate_prefix"]

logger = logging.getLogger(__name__)

#: The only interface the simulated IOC listens on.
LOOPBACK = "127.0.0.1"


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a usable PV prefix (ends with ``:``), else raise ValueError."""
    if not isinstance(prefix, str) or not prefix.endswith(":") or len(prefix) < 2:
        raise ValueError(f"IOC prefix must be a non-empty string ending with ':', e.g. 'SSBSIM:'; "
                         f"got {prefix!r}")  # fmt: skip
    if any(c.isspace() for c in prefix) or "." in prefix:
        raise ValueError(f"IOC prefix {prefix!r} must not contain spaces or dots")
    return prefix


class SimTXMIOC:
    """The PV groups of the simulated TXM, sharing one prefix.

    Parameters
    ----------
    prefix : str
        PV prefix ending with ``:`` (e.g. ``"SSBSIM:"``).
    axes : dict of str to AxisSpec, optional
        Default `default_axes()`.

    Attributes
    ----------
    motors : dict of str to MotorRecord
        Keyed by the short axis names of `~ssb_beamline.sim_devices.ioc.axes.AXIS_KEYS`.
    fe_shutter, shutter : ShutterRecord
        ``Shtr:FE:`` and ``Shtr:Ph:``.
    beam : BeamMonitors
        ``I0:Counts`` and ``Ring:Current``.
    pvdb : dict
        Every PV, for ``caproto.server.run``.
    """

    def __init__(self, prefix: str, axes: dict[str, AxisSpec] | None = None) -> None:
        self.prefix = validate_prefix(prefix)
        self.motors = {key: MotorRecord(spec, prefix=prefix + spec.suffix)
                       for key, spec in (axes or default_axes()).items()}  # fmt: skip
        self.fe_shutter = ShutterRecord(prefix + "Shtr:FE:")
        self.shutter = ShutterRecord(prefix + "Shtr:Ph:")
        self.beam = BeamMonitors(prefix)
        by_suffix = {m.spec.suffix: m for m in self.motors.values()}
        self.faults = FaultPVs(prefix, by_suffix)
        self.groups: list[PVGroup] = [*self.motors.values(), self.fe_shutter, self.shutter,
                                      self.beam, self.faults]  # fmt: skip

    @property
    def pvdb(self) -> dict:
        """The PV database of every group."""
        db: dict = {}
        for group in self.groups:
            clash = db.keys() & group.pvdb.keys()
            if clash:
                raise ValueError(f"PV names served twice: {sorted(clash)}")
            db.update(group.pvdb)
        return db


def server_env(port: int) -> dict[str, str]:
    """Environment of a caproto server on ``port`` that listens and beacons on loopback only."""
    return {
        "EPICS_CA_SERVER_PORT": str(port),
        "EPICS_CAS_SERVER_PORT": str(port),
        "EPICS_CAS_INTF_ADDR_LIST": LOOPBACK,
        "EPICS_CAS_BEACON_ADDR_LIST": LOOPBACK,
        "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
        # beacons go to the server's own port: no caRepeater is needed or disturbed
        "EPICS_CAS_BEACON_PORT": str(port),
    }


def serve_sim_txm_ioc(
    prefix: str = "SSBSIM:",
    *,
    port: int = 5064,
    interfaces: Sequence[str] = (LOOPBACK,),
    ioc: SimTXMIOC | None = None,
) -> None:
    """Serve the simulated TXM over Channel Access until interrupted (blocking).

    Parameters
    ----------
    prefix : str
        PV prefix (ignored if ``ioc`` is given).
    port : int
        CA server port (UDP searches and first TCP port tried).
    interfaces : sequence of str
        Interfaces to listen on; loopback only unless you mean it.
    ioc : SimTXMIOC, optional
        A prebuilt IOC.
    """
    ioc = ioc or SimTXMIOC(prefix)
    os.environ.update(server_env(port))
    logger.info("Serving the simulated TXM IOC %r on %s port %d", ioc.prefix, interfaces, port)
    run(ioc.pvdb, interfaces=list(interfaces))
