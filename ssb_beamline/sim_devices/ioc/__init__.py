"""Simulated TXM IOC: the in-process physics served over EPICS Channel Access.

Why caproto (and not pythonSoftIOC): caproto is pure Python (no EPICS base
build or shipped binaries), its ``PVGroup``/``pvproperty`` let one class
describe a motor record or an areaDetector plugin as a group of fields with
async put handlers (put-callback completes when the handler returns, exactly
what ``motor.VAL`` and ``cam1:Acquire`` need), and the server runs in one
asyncio loop together with the frame physics. pythonSoftIOC would need every
field declared as a separate record and its own thread for the physics.

Modules: `motion` (axis kinematics), `motors` (motor-record PVs), `axes`
(record names, units, limits), `beam` (shutters, I0, ring current), `faults`
(hidden ``Sim:StallAxis`` and ``Sim:Model`` PVs), `frames` (the in-process image
models fed by the served axes), `adbase`, `camera` (``cam1:``), `hdf` and
`hdf_file` (``HDF1:`` and its files), `ndattributes` (per-frame attributes),
`server` (`SimTXMIOC`, `serve_sim_txm_ioc`), `launch` (subprocess helper
`running_sim_ioc` for tests and the CLI). Nothing here imports the analysis,
callbacks, storage, plans or profiles layers.

Serve it: ``python -m ssb_beamline.sim_devices.ioc --prefix SSBSIM: --data-dir D``
(loopback only); clients set ``EPICS_CA_ADDR_LIST=127.0.0.1:<port>`` and
``EPICS_CA_AUTO_ADDR_LIST=NO`` before their first CA connection.
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
