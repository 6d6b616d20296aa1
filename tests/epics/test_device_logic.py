"""Unit tests (ophyd-async mock mode) of the CA round-trip savings in the EPICS devices.

The axis keeps its readback, done flag, limits, velocity and acceleration monitored,
checks the limits in one round and reuses velocity/acceleration only for the timeout
of the same move, and a move ends when the monitors show the arrival; I0 and the
area detector keep monitors on what every event reads or waits on. The real-IOC
behaviour is covered by the other tests of this folder.
"""

from __future__ import annotations

import asyncio

import pytest
from ophyd_async.core import (
    DeviceMock,
    StaticPathProvider,
    UUIDFilenameProvider,
    set_mock_value,
)
from ophyd_async.epics.motor import MotorLimitsError

from ssb_beamline.devices.area_detector import TXMAreaDetector
from ssb_beamline.devices.axis import BeamlineAxis
from ssb_beamline.devices.beam_monitors import I0Monitor


async def _axis(velocity: float = 10.0) -> BeamlineAxis:
    axis = BeamlineAxis("MOCK:Mono:Energy", name="energy")
    await axis.connect(mock=True)
    for signal, value in ((axis.low_limit_travel, 8000.0), (axis.high_limit_travel, 9000.0),
                          (axis.dial_low_limit_travel, 8000.0),
                          (axis.dial_high_limit_travel, 9000.0), (axis.velocity, velocity),
                          (axis.acceleration_time, 0.5), (axis.user_readback, 8300.0)):  # fmt: skip
        set_mock_value(signal, value)
    return axis


def test_limit_check_refuses_a_target_outside_llm_hlm_and_honours_zero_dial_limits():
    async def run() -> None:
        axis = await _axis()
        logic = axis._logic
        await logic.check_move(8500.0)  # inside: no error
        with pytest.raises(MotorLimitsError, match=r"from 8300.0.* to 9100.0.*9000.0"):
            await logic.check_move(9100.0)
        set_mock_value(axis.dial_low_limit_travel, 0.0)
        set_mock_value(axis.dial_high_limit_travel, 0.0)
        await logic.check_move(9100.0)  # dial limits 0, 0: the record has no limits

    asyncio.run(run())


def test_timeout_reuses_the_check_only_in_the_same_move():
    async def run() -> None:
        axis = await _axis(velocity=10.0)
        logic = axis._logic
        logic.margin_s = 1.0
        await logic.check_move(8400.0)
        set_mock_value(axis.velocity, 1.0)  # e.g. a fly scan slows the axis after checking
        # same task, same target: the values read with the limits (100 eV / 10 eV/s)
        assert await logic.calculate_timeout(8300.0, 8400.0) == pytest.approx(10 + 1 + 1)
        await logic.check_move(8400.0)
        # another task (a fly scan's kickoff): velocity read afresh (100 eV / 1 eV/s)
        other = asyncio.create_task(logic.calculate_timeout(8300.0, 8400.0))
        assert await other == pytest.approx(100 + 1 + 1)
        # a different target in the same task: read afresh too
        await logic.check_move(8400.0)
        assert await logic.calculate_timeout(8300.0, 8350.0) == pytest.approx(50 + 1 + 1)
        set_mock_value(axis.velocity, 0.0)
        with pytest.raises(ValueError, match="zero velocity"):
            await logic.calculate_timeout(8300.0, 8350.0)

    asyncio.run(run())


@pytest.mark.parametrize("keep", [True, False])
def test_detector_monitors_the_trigger_signals_from_stage_on(tmp_path, keep):
    async def run() -> None:
        det = TXMAreaDetector("MOCK:", StaticPathProvider(UUIDFilenameProvider(), tmp_path),
                              name="detector")  # fmt: skip
        await det.connect(mock=True)
        det.keep_monitors = keep
        signals = [det.driver.acquire, det.driver.detector_state, det.hdf.num_captured,
                   det.hdf.capture]  # fmt: skip
        assert all(s._cache is None for s in signals)
        await det.stage()
        await det.unstage()
        await det.stage()  # a second stage makes no second subscription
        assert [s._cache is not None for s in signals] == [keep] * len(signals)

    asyncio.run(run())


def test_axis_serves_its_checks_from_monitors_and_a_move_waits_for_the_monitored_arrival():
    """A put may complete before the last readback update: the move waits for the monitors."""

    async def run() -> None:
        axis = BeamlineAxis("MOCK:Mono:Energy", name="energy")
        await axis.connect(mock=DeviceMock())  # a plain mock: the readback does not follow
        assert all(getattr(axis, attr)._cache is not None for attr in BeamlineAxis.MONITORED)
        set_mock_value(axis.motor_done_move, 1)
        set_mock_value(axis.user_readback, 8300.0)
        logic = axis._logic
        move = asyncio.create_task(logic.move(8400.0, lambda: 5.0))
        await asyncio.sleep(0.05)
        assert not move.done()  # the put completed; RBV and DMOV have not told the arrival
        set_mock_value(axis.user_readback, 8350.0)
        await asyncio.sleep(0.05)
        assert not move.done()  # a readback on the way is not the arrival
        set_mock_value(axis.user_readback, 8400.0)
        await asyncio.wait_for(move, 1.0)
        # a stopped move never reaches its target: DMOV back to 1 ends the wait
        move = asyncio.create_task(logic.move(8500.0, lambda: 5.0))
        await asyncio.sleep(0.05)
        assert not move.done()
        set_mock_value(axis.motor_done_move, 0)
        set_mock_value(axis.motor_done_move, 1)
        await asyncio.wait_for(move, 1.0)
        assert await axis.user_readback.get_value() == 8400.0  # served by the monitor

    asyncio.run(run())


@pytest.mark.parametrize("keep", [True, False])
def test_i0_is_monitored_from_connection_on(keep, monkeypatch):
    async def run() -> None:
        monkeypatch.setattr(I0Monitor, "keep_monitors", keep)
        i0 = I0Monitor("MOCK:I0:Counts", name="i0")
        await i0.connect(mock=True)
        set_mock_value(i0.flux, 1234.0)
        assert (i0.flux._cache is not None) == keep
        assert (await i0.read())[i0.flux.name]["value"] == 1234.0

    asyncio.run(run())
