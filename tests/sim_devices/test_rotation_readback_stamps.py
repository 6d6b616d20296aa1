"""The monitored rotation readback is exact at its own time stamps, however busy the CPU.

Fly-scan angles are interpolated from the monitored readback at the frames' time
stamps (issue 11, finding 9): a readback stamped later than the instant its value
belongs to shifts every angle by velocity x lag. Another thread holding the GIL
(as the live reconstruction does) makes that lag milliseconds on any machine.
"""

from __future__ import annotations

import threading

import bluesky.plan_stubs as bps
import numpy as np
from ophyd_async.plan_stubs import ensure_connected

from ssb_beamline.sim_devices.tomo_factory import RotationAxis


def _spin(stop: threading.Event) -> None:
    while not stop.is_set():  # pure-Python work: holds the GIL in 5 ms slices
        sum(i * i for i in range(2000))


def test_each_monitored_angle_is_the_exact_angle_at_its_time_stamp(RE, docs):
    rotation = RotationAxis(velocity=360.0, max_velocity=720.0, update_period=0.002,
                            name="rot")  # fmt: skip
    RE(ensure_connected(rotation))
    trajectories: list[tuple] = []

    def record_trajectory(name: str, doc: dict) -> None:
        if name == "event" and (trajectory := rotation.movable_logic.trajectory) is not None:
            trajectories.append(trajectory)

    def move_monitored():
        yield from bps.open_run()
        yield from bps.monitor(rotation.user_readback, name="rotation_monitor")
        yield from bps.mv(rotation, 180.0)
        yield from bps.unmonitor(rotation.user_readback)
        yield from bps.close_run()

    RE.subscribe(record_trajectory)
    stop = threading.Event()
    busy = [threading.Thread(target=_spin, args=(stop,), daemon=True) for _ in range(2)]
    for thread in busy:
        thread.start()
    try:
        RE(move_monitored())
    finally:
        stop.set()
        for thread in busy:
            thread.join()
    start, old, new, duration = trajectories[0]
    assert (old, new) == (0.0, 180.0) and len(set(trajectories)) == 1
    key = rotation.user_readback.name
    samples = [(e["timestamps"][key], e["data"][key]) for e in docs.events("rotation_monitor")]
    t, angle = np.array([s for s in samples if s[0] >= start]).T
    assert t.size >= 5, "the readback was not monitored during the move"
    truth = old + (new - old) * np.clip((t - start) / duration, 0.0, 1.0)
    np.testing.assert_allclose(angle, truth, rtol=0, atol=1e-9)
