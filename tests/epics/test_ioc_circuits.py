"""The simulated IOC's Channel Access circuits behave like a real IOC's: Nagle off.

EPICS base's IOC server sets ``TCP_NODELAY`` on every client circuit; caproto's
asyncio server does not, and then replies to requests sent together (a gathered
limit check, an event's reads) wait for the client's delayed ACK (~40 ms each
burst). `NoDelayContext` turns Nagle off; this serves a small PV group with it on
loopback, opens a real CA circuit to it with caproto's client and checks the socket
option on the server's side of that circuit.
"""

from __future__ import annotations

import asyncio
import socket

from caproto.asyncio.client import Context as ClientContext
from caproto.server import PVGroup, pvproperty

from ssb_beamline.sim_devices.ioc.launch import _free_port
from ssb_beamline.sim_devices.ioc.server import LOOPBACK, NoDelayContext, server_env


class _Tiny(PVGroup):
    value = pvproperty(name="Value", value=1.5)


def test_every_circuit_of_the_ioc_has_nagle_off(monkeypatch):
    port = _free_port()
    for key, value in server_env(port).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("EPICS_CA_ADDR_LIST", f"{LOOPBACK}:{port}")
    monkeypatch.setenv("EPICS_CA_AUTO_ADDR_LIST", "NO")
    prefix = f"NODELAY{port}:"

    async def run() -> tuple[float, list[int]]:
        server = NoDelayContext(_Tiny(prefix=prefix).pvdb, [LOOPBACK])
        serving = asyncio.create_task(server.run())
        client = ClientContext()
        try:
            (pv,) = await asyncio.wait_for(client.get_pvs(prefix + "Value"), 10)
            await asyncio.wait_for(pv.wait_for_connection(), 10)
            reading = await asyncio.wait_for(pv.read(), 10)
            flags = [
                circuit.client.writer.get_extra_info("socket").getsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY
                )
                for circuit in server.circuits
            ]
            return float(reading.data[0]), flags
        finally:
            await client.disconnect()
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)

    value, flags = asyncio.run(asyncio.wait_for(run(), 30))
    assert value == 1.5
    assert flags and all(flags), f"circuits with Nagle on: {flags}"
