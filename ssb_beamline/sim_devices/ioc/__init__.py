"""Simulated TXM IOC: the in-process physics served over EPICS Channel Access.

Why caproto (and not pythonSoftIOC): caproto is pure Python (no EPICS base
build or shipped binaries), its ``PVGroup``/``pvproperty`` let one class
describe a motor record or an areaDetector plugin as a group of fields with
async put handlers (put-callback completes when the handler returns, exactly
what ``motor.VAL`` and ``cam1:Acquire`` need), and the server runs in one
asyncio loop together with the frame physics. pythonSoftIOC would need every
field declared as a separate record and its own thread for the physics.

Modules: `motion` (axis kinematics), `motors` (motor-record PVs), `beam`
(shutters, I0, ring current), `faults` (hidden ``Sim:`` PVs), `axes` (record
names and limits), `server` (`SimTXMIOC`, `serve_sim_txm_ioc`), `launch`
(subprocess helper `running_sim_ioc`). Nothing here imports the analysis,
callbacks, storage or plans layers.
"""

from .launch import (
    IOCHandle,
    IOCStartError,
    configure_ca_client,
    running_sim_ioc,
    start_sim_ioc,
    unique_prefix,
)
from .server import SimTXMIOC, serve_sim_txm_ioc

__all__ = [
    "IOCHandle",
    "IOCStartError",
    "SimTXMIOC",
    "configure_ca_client",
    "running_sim_ioc",
    "serve_sim_txm_ioc",
    "start_sim_ioc",
    "unique_prefix",
]
