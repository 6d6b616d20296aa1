"""Scheduled faults: ring current, front-end shutter, fault schedule, suspenders, pause safety."""

from __future__ import annotations

import threading
import time

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import h5py
import numpy as np
import pytest
from bluesky.run_engine import call_in_bluesky_event_loop
from bluesky.suspenders import SuspendBoolLow, SuspendFloor
from bluesky.utils import Msg
from ophyd_async.plan_stubs import ensure_connected

from ssb_beamline.callbacks.frames import uri_to_path
from ssb_beamline.plans.suspenders import (
    SignalWatch,
    beamline_suspenders,
    checkpoint_after_each_event,
)
from ssb_beamline.sim_devices import BeamlineStateSources, PhantomConfig, make_sim_txm
from ssb_beamline.sim_devices.detector import DATA_PATH
from ssb_beamline.sim_devices.factory import PauseSafeTXMDetector
from ssb_beamline.sim_devices.faults import (
    Fault,
    FaultKind,
    FaultSchedule,
    fe_shutter_closure,
    pause_request,
    ring_dump,
)
from ssb_beamline.sim_devices.ring import RingCurrentModel, SimRingCurrent
from ssb_beamline.sim_devices.shutter import ShutterState, SimShutter

pytestmark = pytest.mark.timeout(120)

TINY = PhantomConfig(shape=(64, 64), n_particles=3, radius_range_um=(0.8, 2.0), min_gap_um=0.3)


def in_loop(func, *args):
    """Call a plain function inside the RunEngine's event loop (as a fault would)."""

    async def call():
        return func(*args)

    return call_in_bluesky_event_loop(call(), timeout=10)


def wait_until(predicate, timeout: float = 30.0) -> float:
    """Poll ``predicate`` until true; return the seconds it took."""
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
    return time.monotonic() - t0


@pytest.fixture
def txm(RE, tmp_path):
    txm = make_sim_txm(TINY, directory=tmp_path, exposure_time=0.02)
    RE(ensure_connected(*txm.devices))
    return txm


class Targets:
    """Fault targets that record what was done to them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self.threads: list[int] = []

    def dump(self, duration_s: float) -> None:
        self.calls.append(("dump", duration_s))

    def close_for(self, duration_s: float) -> None:
        self.calls.append(("close", duration_s))

    def pause(self) -> None:
        self.threads.append(threading.get_ident())
        self.calls.append(("pause", 0.0))


def feed(schedule, streams: dict[str, int], uid: str = "run-1") -> None:
    """Start a run and emit ``streams[name]`` events per stream, in order."""
    schedule("start", {"uid": uid})
    for name, n in streams.items():
        schedule("descriptor", {"uid": f"d-{name}", "name": name})
        for i in range(n):
            schedule("event", {"descriptor": f"d-{name}", "seq_num": i + 1})


# --- ring current ------------------------------------------------------------------


def test_ring_model_top_up_dump_and_refill():
    model = RingCurrentModel(top_up_ma=400.0, ripple_ma=0.5, top_up_period_s=30.0, refill_s=0.4)
    t = np.linspace(0, 120, 1201)
    top_up = np.array([model.current(x, []) for x in t])
    assert 399.5 <= top_up.min() < top_up.max() <= 400.5  # small sawtooth ripple
    dumps = [(10.0, 12.0)]
    assert model.current(9.99, dumps) == pytest.approx(model.top_up(9.99))
    assert model.current(10.0, dumps) == 0.0 and model.current(11.99, dumps) == 0.0
    assert model.current(12.2, dumps) == pytest.approx(0.5 * model.top_up(12.2), rel=1e-6)
    assert model.current(12.4, dumps) == pytest.approx(model.top_up(12.4))
    with pytest.raises(ValueError, match="ripple_ma"):
        RingCurrentModel(ripple_ma=500.0)


def test_sim_ring_current_follows_its_dump_schedule():
    clock = {"t": 50.0}
    ring = SimRingCurrent(RingCurrentModel(refill_s=1.0), clock=lambda: clock["t"], name="ring")
    assert ring.current.name == "ring_current"
    assert ring.current_ma() == pytest.approx(400.0, abs=0.5)
    ring.dump(2.0, delay_s=1.0)  # outside an event loop: nothing published, still scheduled
    assert ring.dumps == [(1.0, 3.0)]
    for t, expected in [(0.9, 400.0), (1.0, 0.0), (2.99, 0.0), (3.5, 200.0), (4.1, 400.0)]:
        clock["t"] = 50.0 + t
        assert ring.current_ma() == pytest.approx(expected, abs=0.6), t
        assert ring.relative_current() == pytest.approx(expected / 400.0, abs=0.002)
        assert ring.beam_lost() == (1.0 <= t < 3.0)
    with pytest.raises(ValueError, match="duration_s > 0"):
        ring.dump(0.0)


def test_a_dump_reaches_subscribers_at_once_and_the_refill_by_polling(RE, run):
    ring = SimRingCurrent(RingCurrentModel(refill_s=0.0), poll_period_s=0.02, name="ring")
    RE(ensure_connected(ring))
    seen: list[tuple[float, float]] = []

    def record(value, **kwargs):
        seen.append((time.monotonic(), value))

    watch = SignalWatch(ring.current)
    watch.subscribe(record)
    assert seen[-1][1] == pytest.approx(400.0, abs=0.5)  # the current value, at once

    t0 = time.monotonic()
    in_loop(ring.dump, 0.3)
    assert seen[-1][1] == 0.0  # published before dump() returned
    assert watch.get() == 0.0
    wait_until(lambda: seen[-1][1] > 390.0)
    back = next(t for t, v in seen if t > t0 and v > 390.0) - t0
    assert 0.29 <= back < 1.0, back  # the dump lasted 0.3 s (+ one poll period)
    assert run(ring.read())["ring_current"]["value"] > 390.0
    watch.clear_sub(record)
    n = len(seen)
    time.sleep(0.1)
    assert len(seen) == n  # unsubscribed: no more updates


# --- front-end shutter, I0 and frames ------------------------------------------------


def test_fe_shutter_closure_holds_it_closed_then_restores_the_command(RE, run):
    clock = {"t": 10.0}
    shutter = SimShutter(actuation_time=0.0, name="fe", clock=lambda: clock["t"])
    RE(ensure_connected(shutter))
    shutter.close_for(1.0, delay_s=0.5)
    assert run(shutter.is_open())
    clock["t"] = 10.7
    assert shutter.interlocked() and not run(shutter.is_open())
    assert run(shutter.read())["fe-state"]["value"] == "Closed"
    RE(bps.mv(shutter, "Open"))  # commanded open, still held closed
    assert run(shutter.state.get_value()) == ShutterState.CLOSED
    clock["t"] = 11.6  # closure over: the command applies
    assert run(shutter.is_open())
    RE(bps.mv(shutter, "Closed"))
    clock["t"] = 20.0
    assert run(shutter.state.get_value()) == ShutterState.CLOSED


def test_flux_and_frames_follow_the_ring_and_the_fe_shutter(txm, run):
    sources = txm.detector.sources
    assert txm.i0.current_flux() == pytest.approx(1.0, abs=0.02)
    normal = run(sources.snapshot())
    assert normal.shutter_open and normal.fe_shutter_open
    assert normal.ring_current_ma == pytest.approx(400.0, abs=0.6)
    bright = txm.model.render(normal, 0.02).mean()
    dark = txm.model.render(
        run(BeamlineStateSources(0, 0, 0, 0, 0, shutter="Closed").snapshot()), 0.02
    ).mean()

    in_loop(txm.ring_current.dump, 30.0)
    assert txm.i0.current_flux() < 1e-3
    dumped = run(sources.snapshot())
    assert not dumped.shutter_open and dumped.fe_shutter_open and dumped.ring_current_ma < 1.0
    txm.ring_current.clear_dumps()

    in_loop(txm.fe_shutter.close_for, 30.0)
    closed = run(sources.snapshot())
    assert not closed.shutter_open and not closed.fe_shutter_open
    for state in (dumped, closed):
        mean = txm.model.render(state, 0.02).mean()
        assert abs(mean - dark) < 0.05 * (bright - dark), (mean, dark, bright)
    # without the new (optional) sources the state is as before
    legacy = run(BeamlineStateSources(8333.0, 1.0, 2.0, 0.0, 0.0).snapshot())
    assert legacy.shutter_open and np.isnan(legacy.ring_current_ma)


# --- fault schedule -----------------------------------------------------------------


def test_faults_need_exactly_one_valid_trigger():
    with pytest.raises(ValueError, match="exactly one trigger"):
        Fault(FaultKind.RING_DUMP, 1.0)
    with pytest.raises(ValueError, match="exactly one trigger"):
        ring_dump(1.0, at_s=1.0, after_events=2)
    with pytest.raises(ValueError, match="duration_s > 0"):
        fe_shutter_closure(0.0, at_s=1.0)
    with pytest.raises(ValueError, match="after_events must be >= 1"):
        pause_request(after_events=0)
    assert Fault("ring_dump", 2.0, after_events=3).describe() == (
        "ring_dump for 2 s after 3 primary event(s)"
    )


def test_event_count_faults_fire_once_per_run_after_the_nth_event():
    targets = Targets()
    schedule = FaultSchedule(
        [
            ring_dump(1.5, after_events=3),
            fe_shutter_closure(0.5, after_events=2, stream="dark"),
            pause_request(after_events=5),
        ],
        ring=targets,
        fe_shutter=targets,
        pause=targets.pause,
    )
    schedule("start", {"uid": "run-1"})
    schedule("descriptor", {"uid": "d-dark", "name": "dark"})
    schedule("descriptor", {"uid": "d-prim", "name": "primary"})
    calls_after = []
    for descriptor in ["d-dark", "d-dark", "d-prim", "d-prim", "d-prim"]:
        schedule("event", {"descriptor": descriptor})
        calls_after.append(list(targets.calls))
    assert calls_after[0] == [] and calls_after[1] == [("close", 0.5)]
    assert calls_after[3] == [("close", 0.5)]
    assert calls_after[4] == [("close", 0.5), ("dump", 1.5)]  # right after the 3rd image
    for _ in range(3):
        schedule("event", {"descriptor": "d-prim"})
    wait_until(lambda: ("pause", 0.0) in targets.calls)
    assert targets.threads[0] != threading.get_ident()  # pause hooks run on their own thread
    assert targets.calls.count(("dump", 1.5)) == 1  # once per run
    assert [(f.fault.kind, f.events, f.run_uid) for f in schedule.fired] == [
        (FaultKind.FE_SHUTTER_CLOSURE, 2, "run-1"),
        (FaultKind.RING_DUMP, 3, "run-1"),
        (FaultKind.PAUSE, 5, "run-1"),
    ]
    schedule("stop", {"run_start": "run-1"})
    feed(schedule, {"primary": 3}, uid="run-2")  # a new run re-arms the schedule
    assert targets.calls.count(("dump", 1.5)) == 2 and schedule.counts() == {"primary": 3}


def test_timed_faults_fire_on_time_and_stop_cancels_them(caplog):
    targets = Targets()
    schedule = FaultSchedule([ring_dump(1.0, at_s=0.2)], ring=targets)
    t0 = time.monotonic()
    schedule("start", {"uid": "run-1"})
    wait_until(lambda: targets.calls, timeout=30.0)
    # not before its time (no upper bound: a loaded machine may fire it late)
    assert time.monotonic() - t0 >= 0.19
    assert schedule.fired[0].elapsed_s >= 0.19

    late = FaultSchedule([fe_shutter_closure(1.0, at_s=0.3)], fe_shutter=targets)
    late("start", {"uid": "run-2"})
    late("stop", {"run_start": "run-2"})
    time.sleep(0.5)
    assert targets.calls == [("dump", 1.0)] and late.fired == [] and len(late.pending()) == 1

    unbound = FaultSchedule([ring_dump(1.0, after_events=1)])
    feed(unbound, {"primary": 1})  # a missing target is logged, never raised into the RE
    assert "No ring-current device bound" in caplog.text


# --- suspenders ---------------------------------------------------------------------


def test_beamline_suspenders_trip_on_a_dump_and_a_closure_and_release(RE, txm):
    with pytest.raises(ValueError, match="resume_ma"):
        beamline_suspenders(txm.ring_current, txm.fe_shutter, ring_floor_ma=300, resume_ma=200)
    assert beamline_suspenders(None, None) == []
    floor, shutter = beamline_suspenders(txm.ring_current, txm.fe_shutter, sleep_s=0.1)
    assert isinstance(floor, SuspendFloor) and isinstance(shutter, SuspendBoolLow)
    for suspender in (floor, shutter):
        RE.install_suspender(suspender)
    assert not floor.tripped and not shutter.tripped
    in_loop(txm.ring_current.dump, 0.3)
    assert floor.tripped and "ring_current" in floor._get_justification()
    wait_until(lambda: not floor.tripped, timeout=30.0)
    in_loop(txm.fe_shutter.close_for, 0.3)
    assert shutter.tripped and not floor.tripped
    wait_until(lambda: not shutter.tripped, timeout=30.0)
    RE.clear_suspenders()


def test_a_plan_waits_out_a_dump_and_stores_each_point_once(RE, txm):
    docs: list[tuple[str, dict]] = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    RE.subscribe(txm.detector.observe)
    RE.preprocessors.append(checkpoint_after_each_event)
    for suspender in beamline_suspenders(txm.ring_current, txm.fe_shutter, sleep_s=0.1):
        RE.install_suspender(suspender)
    schedule = FaultSchedule([ring_dump(0.5, after_events=2)], ring=txm.ring_current)
    RE.subscribe(schedule)
    RE(bp.count([txm.detector, txm.i0, txm.ring_current], 5))
    events = [d for n, d in docs if n == "event"]
    assert [e["seq_num"] for e in events] == [1, 2, 3, 4, 5]
    assert min(e["data"]["ring_current"] for e in events) > 390.0
    assert min(e["data"]["i0_flux"] for e in events) > 0.9
    assert events[2]["time"] - events[1]["time"] >= 0.5  # it waited for the beam
    datums = [d["indices"] for n, d in docs if n == "stream_datum"]
    assert datums == [{"start": i, "stop": i + 1} for i in range(5)]
    (resource,) = [d for n, d in docs if n == "stream_resource"]
    with h5py.File(uri_to_path(resource["uri"]), "r") as f:
        assert f[DATA_PATH].shape[0] == 5  # no frame taken while the beam was down


def test_checkpoint_after_each_event_inserts_a_checkpoint_after_every_save():
    plan = [Msg("create", name="primary"), Msg("save"), Msg("null"), Msg("save")]
    out = [m.command for m in checkpoint_after_each_event(iter(plan))]
    assert out == ["create", "save", "checkpoint", "null", "save", "checkpoint"]


# --- pause safety of the detector ----------------------------------------------------


def test_a_pause_drops_frames_of_unsaved_events_from_the_file(RE, txm):
    det, fe = txm.detector, txm.fe_shutter
    assert isinstance(det, PauseSafeTXMDetector)
    docs: list[tuple[str, dict]] = []
    RE.subscribe(det.observe)
    RE.subscribe(lambda name, doc: docs.append((name, doc)))

    def plan():
        yield from bps.open_run()
        yield from bps.stage(det, group="stage", wait=True)
        for _ in range(2):
            yield from bps.trigger_and_read([det, txm.i0])
        # 1) a frame read into an event that was never saved (pause between read and save)
        yield from bps.trigger(det, wait=True)
        yield from bps.create("primary")
        yield from bps.read(det)
        yield from bps.read(txm.i0)
        yield from bps.drop()
        yield from bps.wait_for([det.pause])
        # 2) an exposure in flight when the pause comes, with the beam off
        yield from bps.mv(fe, "Closed")
        yield from bps.trigger(det, group="in-flight")
        yield from bps.wait_for([det.pause])
        yield from bps.mv(fe, "Open")
        yield from bps.trigger_and_read([det, txm.i0])  # the rewind takes it again
        yield from bps.unstage(det, group="stage", wait=True)
        yield from bps.close_run()

    RE(plan())
    assert det.frames_dropped == 2
    datums = [d["indices"] for n, d in docs if n == "stream_datum"]
    assert datums == [{"start": i, "stop": i + 1} for i in range(3)]
    (resource,) = [d for n, d in docs if n == "stream_resource"]
    with h5py.File(uri_to_path(resource["uri"]), "r") as f:
        frames = f[DATA_PATH][()]
    means = frames.reshape(len(frames), -1).mean(axis=1)
    assert frames.shape[0] == 3 and means.min() > 0.8 * means.max()  # no dark orphan
