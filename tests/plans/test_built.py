"""A plan built with a bad argument raises its own error only (no trace from bluesky's Plan)."""

from __future__ import annotations

import gc
import sys

import pytest
from bluesky.utils import is_plan

from ssb_beamline.plans.built import plan
from ssb_beamline.plans.tomo import tomo_scan
from ssb_beamline.plans.xanes import xanes_scan


class _Device:
    name = "device"


def _build_bad_tomo() -> None:
    device = _Device()
    tomo_scan(device, device, device, device, device, [], sample_out=1.0)


def test_a_bad_argument_raises_its_error_and_nothing_is_printed_after_it(monkeypatch):
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with pytest.raises(ValueError, match="at least 2 angles, got 0"):
        _build_bad_tomo()
    gc.collect()
    assert unraisable == []  # bluesky's half-built Plan printed an AttributeError here


@plan
def _count_to(n: int):
    """Count."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return (i for i in range(n))


def test_a_plan_never_iterated_still_gets_bluesky_s_warning():
    built = _count_to(2)
    with pytest.warns(RuntimeWarning, match="plan `_count_to` was never iterated"):
        del built
        gc.collect()


def test_plans_keep_what_the_queue_server_reads():
    assert is_plan(tomo_scan) and is_plan(xanes_scan)
    assert tomo_scan.__name__ == "tomo_scan" and "angles" in tomo_scan.__annotations__
    assert hasattr(xanes_scan, "_custom_parameter_annotation_")
    assert list(_count_to(3)) == [0, 1, 2]
