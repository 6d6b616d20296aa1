"""Motor axes, shutter, I0 monitor and the state adapter."""

from __future__ import annotations

import time

import bluesky.plan_stubs as bps
import numpy as np
import pytest
from bluesky.utils import FailedStatus
from ophyd.sim import SynAxis
from ophyd_async.core import soft_signal_rw
from ophyd_async.epics.motor import MotorLimitsError
from ophyd_async.plan_stubs import ensure_connected

from ssb_beamline.sim_devices import (
    ENERGY_LIMITS_EV,
    AxisLimitsError,
    FluxDriftModel,
    I0Monitor,
    ShutterState,
    SimAxis,
    SimShutter,
    read_value,
)


def test_limits_raise_before_motion(RE, run):
    axis = SimAxis(8333.0, "eV", limits=ENERGY_LIMITS_EV, velocity=1000.0, name="energy")
    RE(ensure_connected(axis))
    with pytest.raises(FailedStatus) as info:
        RE(bps.mv(axis, 30000.0))
    err = info.value.__cause__
    assert isinstance(err, AxisLimitsError)
    assert isinstance(err, MotorLimitsError) and isinstance(err, ValueError)
    assert "outside the travel limits" in str(err) and "30000" in str(err)
    assert run(axis.user_readback.get_value()) == 8333.0
    assert run(axis.user_setpoint.get_value()) == 8333.0
    # Direct set raises the error itself.
    with pytest.raises(AxisLimitsError):
        run(axis.set, 100.0)
    # Plans can read the limits before moving anything.
    lo = RE(bps.rd(axis.low_limit_travel)).plan_result
    hi = RE(bps.rd(axis.high_limit_travel)).plan_result
    assert (lo, hi) == ENERGY_LIMITS_EV


def test_move_time_grows_with_distance(RE, run):
    axis = SimAxis(0.0, "mm", limits=(-10, 10), velocity=10.0, settle_time=0.02, name="ax")
    RE(ensure_connected(axis))
    durations = []
    for target in (0.5, 3.5):  # steps of 0.5 mm and 3 mm
        t0 = time.monotonic()
        RE(bps.mv(axis, target))
        durations.append(time.monotonic() - t0)
        assert RE(bps.rd(axis.user_readback)).plan_result == target
    # a move takes at least distance / velocity + settle (no upper bound: the
    # suite must pass on a loaded machine)
    assert durations[0] >= 0.05 + 0.02 - 0.005
    assert durations[1] >= 0.3 + 0.02 - 0.005
    assert run(axis.motor_done_move.get_value()) == 1
    cfg = run(axis.read_configuration())
    assert {"ax-low_limit_travel", "ax-high_limit_travel", "ax-velocity"} <= set(cfg)


def test_axis_validation():
    with pytest.raises(ValueError, match="outside limits"):
        SimAxis(20.0, limits=(0.0, 10.0))
    with pytest.raises(ValueError, match=">= 0"):
        SimAxis(0.0, velocity=-1.0)


def test_shutter(RE, run):
    shutter = SimShutter(actuation_time=0.05, name="shutter")
    RE(ensure_connected(shutter))
    assert run(shutter.is_open())
    t0 = time.monotonic()
    RE(bps.mv(shutter, "Closed"))
    assert time.monotonic() - t0 >= 0.05
    assert run(shutter.state.get_value()) == ShutterState.CLOSED
    reading = run(shutter.read())
    assert reading["shutter-state"]["value"] == "Closed"
    with pytest.raises(ValueError, match="invalid shutter position"):
        run(shutter.set, "Half")


def test_flux_model_drifts_deterministically():
    a, b = FluxDriftModel(seed=1), FluxDriftModel(seed=1)
    t = np.linspace(0, 60, 601)
    np.testing.assert_array_equal(a(t), b(t))
    f = a(t)
    assert 0.98 < f.min() < f.max() < 1.02
    assert f.max() - f.min() > 1e-3  # visible drift over a minute
    assert not np.allclose(FluxDriftModel(seed=2)(t), f)


def test_i0_monitor_reads_current_flux(RE, run):
    clock = {"t": 100.0}
    i0 = I0Monitor(FluxDriftModel(seed=4), clock=lambda: clock["t"], name="i0")
    RE(ensure_connected(i0))
    first = run(i0.flux.get_value())
    assert first == pytest.approx(i0.model(0.0))
    clock["t"] += 30.0
    # Still fresh while staged (the signal is uncached).
    run(i0.stage)
    later = run(i0.read())["i0-flux"]["value"]
    run(i0.unstage)
    assert later == pytest.approx(i0.model(30.0))
    assert later != pytest.approx(first, abs=1e-5)


def test_read_value_adapter(RE, run):
    syn = SynAxis(name="syn")
    syn.set(3.5).wait()
    assert run(read_value(syn)) == 3.5
    sig = soft_signal_rw(float, 2.0, name="sig")
    RE(ensure_connected(sig))
    assert run(read_value(sig)) == 2.0
    axis = SimAxis(1.5, name="axis")
    RE(ensure_connected(axis))
    assert run(read_value(axis)) == 1.5
    assert run(read_value(7.0)) == 7.0
    assert run(read_value(lambda: 8.0)) == 8.0
