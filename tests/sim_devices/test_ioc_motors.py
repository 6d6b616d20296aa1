"""The simulated TXM IOC (a real caproto server subprocess) driven by stock ophyd-async classes."""

from __future__ import annotations

import asyncio

import pytest
from aioca import CANothing, caget, caput
from bluesky.run_engine import RunEngine, call_in_bluesky_event_loop
from ophyd_async.core import wait_for_value
from ophyd_async.epics.core import epics_signal_r as ca_r
from ophyd_async.epics.core import epics_signal_rw as ca_rw
from ophyd_async.epics.motor import Motor, MotorLimitsError

from ssb_beamline.devices.shutter import ShutterState
from ssb_beamline.sim_devices.ioc import running_sim_ioc
from ssb_beamline.sim_devices.ioc.launch import ca_search

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def ioc(tmp_path_factory):
    """One IOC subprocess for the module (unique prefix, own CA port, loopback)."""
    with running_sim_ioc(data_dir=tmp_path_factory.mktemp("ioc"), args=["--size", "64"]) as h:
        yield h


@pytest.fixture(scope="module")
def run():
    """Run a coroutine in the bluesky event loop (where ophyd-async devices live)."""
    RunEngine()  # creates the bluesky event loop

    def _run(coro, timeout: float = 60.0):
        return call_in_bluesky_event_loop(coro, timeout=timeout)

    return _run


async def _motor(prefix: str, name: str) -> Motor:
    motor = Motor(prefix, name=name)
    await motor.connect(timeout=10)
    return motor


def test_motor_connects_moves_and_reports_units(ioc, run):
    async def go():
        energy = await _motor(ioc.pv("Mono:Energy"), "energy")
        start = await energy.user_readback.get_value()
        await energy.set(start + 25.0)
        reading = await energy.read()
        config = await energy.read_configuration()
        return start, reading, config, await energy.motor_done_move.get_value()

    start, reading, config, done = run(go())
    assert start == pytest.approx(8333.0)
    assert reading["energy"]["value"] == pytest.approx(start + 25.0)
    assert config["energy-motor_egu"]["value"] == "eV"
    assert done == 1


def test_move_put_completes_only_at_the_target(ioc, run):
    """The VAL put-callback holds until the axis arrives; RBV and DMOV update on the way."""

    async def go():
        det = await _motor(ioc.pv("Det:Z"), "det_z")
        await det.velocity.set(500.0)
        start = await det.user_readback.get_value()
        seen: dict[str, list] = {"rbv": [], "dmov": []}

        def note(key: str):
            return lambda reading: seen[key].extend(r["value"] for r in reading.values())

        on_rbv, on_dmov = note("rbv"), note("dmov")
        det.user_readback.subscribe_reading(on_rbv)
        det.motor_done_move.subscribe_reading(on_dmov)
        await det.set(start + 100.0)
        end = await caget(ioc.pv("Det:Z.RBV"))  # a fresh read, not the monitor cache
        await wait_for_value(det.motor_done_move, 1, timeout=5)  # monitors may lag the put
        det.user_readback.clear_sub(on_rbv)
        det.motor_done_move.clear_sub(on_dmov)
        return start, seen, end

    start, seen, end = run(go())
    assert end == pytest.approx(start + 100.0)
    assert any(start < v < start + 100.0 for v in seen["rbv"]), seen
    assert seen["dmov"][0] == 1 and 0 in seen["dmov"] and seen["dmov"][-1] == 1, seen


def test_limits_refuse_out_of_range_moves(ioc, run):
    async def go():
        energy = await _motor(ioc.pv("Mono:Energy"), "energy")
        before = await energy.user_readback.get_value()
        with pytest.raises(MotorLimitsError, match="11000"):
            await energy.set(11500.0)
        # bypassing the client check: the IOC itself refuses the put, nothing moves
        with pytest.raises(CANothing):
            await caput(ioc.pv("Mono:Energy.VAL"), 4000.0, wait=True, timeout=5)
        lvio = await caget(ioc.pv("Mono:Energy.LVIO"))
        return before, await energy.user_readback.get_value(), lvio, await energy.read()

    before, after, lvio, _ = run(go())
    assert after == before
    assert lvio == 1


def test_stop_and_stalled_axis(ioc, run):
    """A stalled axis never reports DMOV=1: the move times out naming the PV; STOP frees it."""

    async def go():
        zp_x = await _motor(ioc.pv("ZP:X"), "zp_x")
        stall = ca_rw(str, ioc.pv("Sim:StallAxis"))
        await stall.connect(timeout=5)
        await stall.set("ZP:X")
        with pytest.raises(TimeoutError) as info:
            await zp_x.set(1.0, timeout=1.0)
        done_while_stalled = await zp_x.motor_done_move.get_value()
        await zp_x.motor_stop.set(1)
        await asyncio.sleep(0.2)
        done_after_stop = await zp_x.motor_done_move.get_value()
        await stall.set("")
        await zp_x.set(0.5)
        return str(info.value), done_while_stalled, done_after_stop, await zp_x.locate()

    message, stalled, stopped, where = run(go())
    assert "ZP:X" in message
    assert (stalled, stopped) == (0, 1)
    assert where["readback"] == pytest.approx(0.5)


def test_shutters_ring_and_i0(ioc, run):
    async def go():
        cmd = ca_rw(ShutterState, ioc.pv("Shtr:Ph:Cmd"))
        sts = ca_r(ShutterState, ioc.pv("Shtr:Ph:Sts"))
        ring = ca_r(float, ioc.pv("Ring:Current"))
        i0 = ca_r(float, ioc.pv("I0:Counts"))
        await asyncio.gather(*(s.connect(timeout=5) for s in (cmd, sts, ring, i0)))
        await cmd.set(ShutterState.CLOSED)
        closed = await sts.get_value()
        await cmd.set(ShutterState.OPEN)
        return closed, await sts.get_value(), await ring.get_value(), await i0.get_value()

    closed, opened, ring_ma, i0 = run(go())
    assert (closed, opened) == (ShutterState.CLOSED, ShutterState.OPEN)
    assert 399.0 < ring_ma < 401.0
    assert i0 >= 0.0


def test_two_iocs_at_once_do_not_see_each_other(ioc, run, tmp_path):
    """A second IOC (own prefix, own port) runs beside the first; each answers only its PVs.

    Then it is SIGKILLed: its PVs stop answering, the first IOC is untouched.
    """
    with running_sim_ioc(data_dir=tmp_path, args=["--size", "64"]) as other:
        assert other.port != ioc.port and other.prefix != ioc.prefix
        assert ca_search(other.pv("ZP:Z.RBV"), other.port)
        assert not ca_search(ioc.pv("ZP:Z.RBV"), other.port, timeout=0.3)

        async def go():
            mine = await _motor(ioc.pv("ZP:Z"), "mine")
            theirs = await _motor(other.pv("ZP:Z"), "theirs")
            before = await mine.user_readback.get_value()
            await theirs.set(49.0)
            return before, await mine.user_readback.get_value(), await theirs.locate()

        before, after, theirs = run(go())
        other.kill()  # SIGKILL: the fault "IOC dies mid-scan"
        assert not other.alive
        gone = run(caget(other.pv("Det:Z.RBV"), timeout=1.0, throw=False))  # never opened before
        assert not gone.ok
        assert not ca_search(other.pv("ZP:Z.RBV"), other.port, timeout=0.3)
    assert after == before
    assert theirs["readback"] == pytest.approx(49.0)
