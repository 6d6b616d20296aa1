"""Frames taken with the fly rotation at rest: their angles repeat, never fail the analysis.

At very high load (40-48) the fly tomography over CA once failed with a "duplicate
angle" from `check_angles`: a camera that started exposing before the rotation's
flight began had frames interpolated between the rest readback (stamped when the
run-up move ended, seconds earlier) and the first moving readback (a few
microseconds into the flight). Their angles differed by less than a microdegree:
``np.unique`` kept both, `check_angles` refused them. These tests build that
condition exactly (no IOC, no timing) and check both fixes: the analysis treats
near-repeats as one angle, and the simulated IOC posts the start of every move.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ssb_beamline.analysis.fly_angles import angles_from_monitor, drop_repeated_angles
from ssb_beamline.analysis.tomography import check_angles
from ssb_beamline.sim_devices.ioc.motion import AxisMotion

PRE, VELOCITY, PERIOD = -5.0, 174.0, 0.0517  # run-up start (deg), deg/s, frame period (s)


def _flight(frames_before_start: int):
    """Monitor samples and frame times of a flight whose camera started first."""
    rest_t, start = 100.0, 110.0  # the run-up move ended 10 s before the flight began
    moving_t = start + 5e-6 + 0.02 * np.arange(60)  # the first update 5 us into the flight
    t_mon = np.concatenate([[rest_t], moving_t])
    a_mon = np.concatenate([[PRE], PRE + VELOCITY * (moving_t - start)])
    early = start - PERIOD * np.arange(frames_before_start, 0, -1) + 0.001
    frames = np.concatenate([early, start + 0.03 + PERIOD * np.arange(21)])
    return frames, t_mon, a_mon


def test_frames_before_the_flight_get_near_repeated_angles_that_np_unique_keeps():
    frames, t_mon, a_mon = _flight(frames_before_start=2)
    angles = angles_from_monitor(frames, t_mon, a_mon)
    # the failure condition: two different angles closer than check_angles tolerates
    step = np.median(np.diff(np.sort(angles)))
    assert angles[0] != angles[1] and abs(angles[1] - angles[0]) < 1e-6 * step
    unique = np.unique(angles)
    assert unique.size == angles.size
    with pytest.raises(ValueError, match="duplicate angle"):
        check_angles(unique)
    kept, keep = drop_repeated_angles(angles)
    assert keep.tolist() == [0, *range(2, angles.size)]  # the first frame at rest is kept
    np.testing.assert_array_equal(kept, angles[keep])
    check_angles(kept, keep.size)  # the tomogram is analysed


def test_drop_repeated_angles_keeps_distinct_angles_and_exact_repeats_once():
    angles = np.array([180.0, 0.0, 90.0, 180.0, 45.0, 180.0 - 1e-9])
    kept, keep = drop_repeated_angles(angles)
    assert kept.tolist() == [0.0, 45.0, 90.0, 180.0] and keep.tolist() == [1, 4, 2, 0]
    assert drop_repeated_angles(angles, rel_tol=0.0)[0].size == 5  # only exact repeats
    assert drop_repeated_angles([])[0].size == 0
    with pytest.raises(ValueError, match="rel_tol"):
        drop_repeated_angles(angles, rel_tol=-1.0)


def test_the_sim_ioc_axis_posts_the_start_of_each_move():
    """With the start posted, a frame before the flight gets the rest angle exactly."""
    posted: list[tuple[float, float]] = []

    async def publish(position: float, t: float) -> None:
        posted.append((position, t))

    axis = AxisMotion(position=PRE, velocity=2000.0)
    assert asyncio.run(axis.move(PRE + 10.0, publish))
    (first, t_start), (last, t_end) = posted[0], posted[-1]
    assert first == PRE and last == PRE + 10.0
    assert t_end - t_start == pytest.approx(10.0 / 2000.0, abs=1e-5)
    times = [t for _, t in posted]
    assert times == sorted(times)
    frames = [t_start - 0.1, t_start - 0.05]  # the camera ran before the flight began
    angles = angles_from_monitor(frames, [t_start - 5.0, *times], [PRE, *(p for p, _ in posted)])
    assert angles.tolist() == [PRE, PRE]  # exact repeats: the rest angle, not a creep
