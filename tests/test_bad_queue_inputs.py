"""Bad input through the queue-server path: each error names the problem and the fix.

The live cases (a wrong type refused by a running RE Manager, an unknown focus
model failing a queue item) are in ``tests/qserver/test_queue_end_to_end.py``;
these run the same validator on the shipped plan list, without services.
"""

import pytest
from bluesky_queueserver import validate_plan
from bluesky_queueserver.manager.profile_ops import load_existing_plans_and_devices

from ssb_beamline.plans.focus_models import (
    UnknownFocusModelError,
    register_focus_model,
    resolve_focus,
    unregister_focus_model,
)
from ssb_beamline.profiles.qserver import EXISTING_PLANS_AND_DEVICES
from ssb_beamline.profiles.qserver.namespace import queue_namespace
from ssb_beamline.profiles.qserver.sim import PHANTOM_PX_ENV, sim_namespace

XANES_ARGS = ["detector", "energy", "zp_z", "det_z", "sample_x", "shutter", "i0"]


@pytest.mark.parametrize(
    ("kwargs", "parameter", "problem"),
    [
        ({"n_dark": "two"}, "n_dark", "valid integer"),
        ({"sample_out": "far"}, "sample_out", "valid number"),
        ({"focus": 3}, "focus", "valid string"),
        ({"flat_mode": "sometimes"}, "flat_mode", "'pass' or 'interleaved'"),
    ],
)
def test_a_wrong_type_is_refused_naming_the_parameter(kwargs, parameter, problem):
    plans, devices = load_existing_plans_and_devices(EXISTING_PLANS_AND_DEVICES)
    item = {"name": "xanes_scan", "args": [*XANES_ARGS, [8300.0, 8350.0]],
            "kwargs": {"sample_out": 60.0, "focus": "sim", **kwargs}}  # fmt: skip
    ok, message = validate_plan(item, allowed_plans=plans, allowed_devices=devices)
    assert not ok
    assert parameter in message
    assert problem in message


def test_an_unknown_focus_model_lists_the_known_ones():
    register_focus_model("bad_input_model", lambda e: (0.0, 0.0))
    try:
        with pytest.raises(UnknownFocusModelError) as info:
            resolve_focus("sim-typo")
    finally:
        unregister_focus_model("bad_input_model")
    message = str(info.value)
    assert "Unknown focus model 'sim-typo'" in message
    assert "'bad_input_model'" in message
    assert "register_focus_model" in message


def test_a_device_named_like_a_plan_is_refused():
    with pytest.raises(ValueError, match=r"\['xanes_scan'\].*rename them"):
        queue_namespace(None, {"xanes_scan": object()})


def test_a_bad_phantom_size_names_the_variable(monkeypatch):
    monkeypatch.setenv(PHANTOM_PX_ENV, "tiny")
    monkeypatch.setattr("bluesky_queueserver.is_re_worker_active", lambda: True)
    with pytest.raises(ValueError, match=f"{PHANTOM_PX_ENV}='tiny'.*>= 32 px"):
        sim_namespace()
