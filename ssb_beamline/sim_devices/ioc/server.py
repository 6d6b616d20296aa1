"""The simulated TXM IOC: all PV groups in one caproto server, on loopback.

`SimTXMIOC` assembles the motor records (`axes`), shutters, I0 and ring
current, the fault PVs and (when built with a data directory) the camera and
its HDF5 plugin into one PV database; `serve_sim_txm_ioc` runs it until
interrupted. Run it as a process with
``python -m ssb_beamline.sim_devices.ioc --prefix SSBSIM:``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from caproto import ChannelEnum
from caproto.asyncio.server import Context as AsyncioContext
from caproto.server import PVGroup
from caproto.server import common as caproto_server_common

from ..tomo_detector import TomoState
from .axes import default_axes
from .beam import BeamMonitors, ShutterRecord
from .camera import CameraDriver
from .faults import FaultPVs
from .frames import BEAM_THRESHOLD_MA, FrameSource, SimConfig
from .hdf import HDFPlugin
from .motors import AxisSpec, MotorRecord
from .ndattributes import AttributeSpec, parse_ndattributes, value_attributes

__all__ = [
    "LOOPBACK",
    "PARENT_ENV",
    "NoDelayContext",
    "SimTXMIOC",
    "serve_sim_txm_ioc",
    "server_env",
    "validate_prefix",
]

logger = logging.getLogger(__name__)

#: The only interface the simulated IOC listens on.
LOOPBACK = "127.0.0.1"
#: Environment variable naming the PID the IOC must not outlive (set by `launch`).
PARENT_ENV = "SSB_SIM_IOC_PARENT_PID"
#: caproto holds a monitor update back until no other has followed it for this long
#: (``CAPROTO_SERVER_HIGH_LOAD_TIMEOUT_SEC``, 10 ms by default), to batch bursts. Each
#: frame ends with a burst (counters, I0, NumCaptured, state), so 10 ms would be added
#: to every frame a client waits for; 1 ms still batches a burst's updates.
MONITOR_BATCH_S = 0.001
BATCH_ENV = "CAPROTO_SERVER_HIGH_LOAD_TIMEOUT_SEC"


class NoDelayContext(AsyncioContext):
    """caproto's asyncio server with Nagle's algorithm off on every client circuit.

    Why: EPICS base's IOC server (rsrv) sets ``TCP_NODELAY`` on each circuit socket;
    caproto's asyncio server does not (it binds its listening socket with protocol 0,
    so asyncio's own ``TCP_NODELAY`` on stream transports is skipped). With Nagle on,
    when a client sends several requests at once (ophyd-async gathers the soft-limit
    check's gets before each move, and a bluesky event's reads), the IOC sends the
    first reply at once but holds the next small one until the client ACKs the first,
    and the client delays that ACK by up to 40 ms (Linux delayed ACK) because it has
    nothing to send: measured ~45 ms for 7 gathered gets against ~2 ms each one after
    the other. With ``TCP_NODELAY`` each reply leaves when it is ready, as from a real IOC.
    """

    async def tcp_handler(self, client, addr):
        """Turn Nagle off on the new circuit's socket, then serve it as caproto does."""
        sock = client.writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as exc:  # not fatal: the circuit works, only slower
                logger.warning("TCP_NODELAY not set on the circuit to %s: %s", addr, exc)
        return await super().tcp_handler(client, addr)


#: Set to ``1`` in the IOC's environment to serve with caproto's plain context (Nagle on),
#: only to measure what `NoDelayContext` saves (``benchmarks/bench_epics.py --nagle``).
NAGLE_ENV = "SSB_SIM_IOC_NAGLE"


async def _serve(pvdb: dict, interfaces: list[str]) -> None:
    nagle = os.environ.get(NAGLE_ENV) == "1"
    if nagle:
        logger.warning("%s=1: serving with Nagle on (caproto's plain context)", NAGLE_ENV)
    await (AsyncioContext if nagle else NoDelayContext)(pvdb, interfaces).run()


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
    config : SimConfig, optional
        Phantom size, seed and frame model of the camera.
    data_dir : str or Path, optional
        The HDF5 plugin writes only inside this directory (anywhere if None).

    Attributes
    ----------
    motors : dict of str to MotorRecord
        Keyed by the short axis names of `~ssb_beamline.sim_devices.ioc.axes.AXIS_KEYS`.
    fe_shutter, shutter : ShutterRecord
        ``Shtr:FE:`` and ``Shtr:Ph:``.
    beam : BeamMonitors
        ``I0:Counts`` and ``Ring:Current``.
    camera : CameraDriver
        ``cam1:``; ``camera.frames`` renders the frames.
    hdf : HDFPlugin
        ``HDF1:``.
    pvdb : dict
        Every PV, for ``caproto.server.run``.
    """

    def __init__(
        self,
        prefix: str,
        axes: dict[str, AxisSpec] | None = None,
        config: SimConfig | None = None,
        data_dir: str | Path | None = None,
    ) -> None:
        self.prefix = validate_prefix(prefix)
        self.motors = {key: MotorRecord(spec, prefix=prefix + spec.suffix)
                       for key, spec in (axes or default_axes()).items()}  # fmt: skip
        self.fe_shutter = ShutterRecord(prefix + "Shtr:FE:")
        self.shutter = ShutterRecord(prefix + "Shtr:Ph:")
        self.beam = BeamMonitors(prefix)
        by_suffix = {m.spec.suffix: m for m in self.motors.values()}
        self.frames = FrameSource(config or SimConfig(), self.state_at)
        self.faults = FaultPVs(prefix, by_suffix, self.frames, self._model_changed)
        self.camera = CameraDriver(prefix + "cam1:", self.frames, self.state_at,
                                   self.attribute_values, self.beam.i0.write)  # fmt: skip
        self.hdf = HDFPlugin(prefix + "HDF1:", self.attribute_specs, data_dir)
        self.hdf.init_array_shape(*self.frames.shape)
        self.camera.add_plugins([self.hdf])
        self.groups: list[PVGroup] = [*self.motors.values(), self.fe_shutter, self.shutter,
                                      self.beam, self.faults, self.camera, self.hdf]  # fmt: skip
        self._pvdb: dict | None = None

    async def _model_changed(self) -> None:
        """Refuse a model switch while acquiring or capturing; else publish the new shape."""
        if self.camera.acquiring or self.hdf.capturing:
            raise RuntimeError("Sim:Model cannot change while cam1 acquires or HDF1 captures")
        for group in (self.camera, self.hdf):
            await group.set_array_shape(*self.frames.shape)

    def _position(self, key: str, t: float, default: float = 0.0) -> float:
        motor = self.motors.get(key)
        return motor.axis.position_at(t) if motor is not None else default

    def state_at(self, t: float) -> TomoState:
        """Beamline state at UNIX time ``t``: exact axis positions, shutters, ring, flux."""
        ring_ma = self.beam.current_ma()
        fe_open = self.fe_shutter.is_open
        p = self._position
        return TomoState(
            energy_ev=p("energy", t), zp_z_mm=p("zp_z", t), det_z_mm=p("det_z", t),
            sample_x_um=p("sample_x", t), sample_y_um=p("sample_y", t),
            shutter_open=self.shutter.is_open and fe_open and ring_ma >= BEAM_THRESHOLD_MA,
            flux=self.frames.relative_flux(self.beam.relative_current()),
            fe_shutter_open=fe_open, ring_current_ma=ring_ma,
            rotation_deg=p("rotation", t), holo_z_mm=p("holo_z", t), timestamp=t,
        )  # fmt: skip

    def attribute_specs(self) -> list[AttributeSpec]:
        """NDAttribute datasets declared by the camera's and the plugin's XML."""
        return parse_ndattributes(self.camera.nd_attributes_file.value,
                                  self.hdf.nd_attributes_file.value)  # fmt: skip

    def attribute_values(self, t: float, info: dict[str, Any]) -> dict[str, Any]:
        """NDAttribute values of a frame exposed at ``t`` (motor readbacks exact at ``t``)."""
        exact = {m.prefix + ".RBV": (lambda m=m: m.axis.position_at(t))
                 for m in self.motors.values()}  # fmt: skip
        return value_attributes(self.attribute_specs(), info, exact, self._current)

    def _current(self, pv: str) -> Any:
        data = self.pvdb[pv]
        if isinstance(data, ChannelEnum):
            return data.enum_strings.index(data.value)
        return data.value

    @property
    def pvdb(self) -> dict:
        """The PV database of every group."""
        if self._pvdb is None:
            db: dict = {}
            for group in self.groups:
                clash = db.keys() & group.pvdb.keys()
                if clash:
                    raise ValueError(f"PV names served twice: {sorted(clash)}")
                db.update(group.pvdb)
            self._pvdb = db
        return self._pvdb


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
    config: SimConfig | None = None,
    data_dir: str | Path | None = None,
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
    config : SimConfig, optional
        Phantom size, seed and frame model (ignored if ``ioc`` is given).
    data_dir : str or Path, optional
        Directory the HDF5 plugin may write to (ignored if ``ioc`` is given).
    """
    ioc = ioc or SimTXMIOC(prefix, config=config, data_dir=data_dir)
    os.environ.update(server_env(port))
    if BATCH_ENV not in os.environ:
        caproto_server_common.HIGH_LOAD_TIMEOUT = MONITOR_BATCH_S
    logger.info("Serving the simulated TXM IOC %r on %s port %d", ioc.prefix, interfaces, port)
    _let_ctrl_c_stop_it()
    with contextlib.suppress(KeyboardInterrupt):  # as caproto.asyncio.server.run
        asyncio.run(_serve(ioc.pvdb, list(interfaces)))


def _let_ctrl_c_stop_it() -> None:
    """Take SIGINT as Ctrl-C whatever this process inherited (a blocked or ignored SIGINT).

    A parent that blocks SIGINT in the thread that starts the IOC (seen in a
    pytest-xdist worker of the full suite) passes the blocked mask on, and the IOC
    then ignores every Ctrl-C. Only the main thread may set signal handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
