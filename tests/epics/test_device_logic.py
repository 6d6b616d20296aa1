"""Unit tests (ophyd-async mock mode) of the CA round-trip savings in the EPICS devices.

The axis reads limits, readback, velocity and acceleration in one round and reuses
velocity/acceleration only for the timeout of the same move; the area detector keeps
monitors on the signals every trigger waits on. The real-IOC behaviour is covered by
the other tests of this folder.
"""

from __future__ import annotations

import asyncio

import pytest
from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider, set_mock_value
from ophyd_async.epics.motor import MotorLimitsError

from ssb_beamline.devices.area_detector import TXMAreaDetector
from ssb_beamline.devices.axis import BeamlineAxis


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
