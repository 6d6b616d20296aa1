"""The shipped queue-server startup as the stock tools see it: listing, validation, yaml."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from bluesky_queueserver import validate_plan
from bluesky_queueserver.manager.profile_ops import (
    load_existing_plans_and_devices,
    load_user_group_permissions,
)

from ssb_beamline.profiles.qserver import EXISTING_PLANS_AND_DEVICES, USER_GROUP_PERMISSIONS

STARTUP = "ssb_beamline.profiles.qserver.startup_sim"
PLANS = ("xanes_scan", "tomo_scan", "xanes_tomo_scan", "holotomo_scan", "stxm_ratio_scan",
         "stxm_stack_scan")  # fmt: skip
REGENERATE = (
    f"qserver-list-plans-devices --startup-module {STARTUP} "
    "--file-dir ssb_beamline/profiles/qserver"
)

#: One queue item per plan, as a client would send them (devices and focus by name).
ITEMS = {
    "xanes_scan": {
        "args": ["detector", "energy", "zp_z", "det_z", "sample_x", "shutter", "i0",
                 [8300.0, 8350.0, 8400.0]],
        "kwargs": {"sample_out": 60.0, "focus": "sim", "n_dark": 2, "baseline": ["sample"]},
    },
    "tomo_scan": {
        "args": ["tomo_detector", "tomo_rotation", "tomo_sample_x", "tomo_shutter", "tomo_i0",
                 [0.0, 45.0, 90.0, 135.0, 180.0]],
        "kwargs": {"sample_out": 60.0, "mode": "step", "energy": "tomo_energy"},
    },
    "xanes_tomo_scan": {
        "args": ["tomo_detector", "tomo_energy", "tomo_zp_z", "tomo_det_z", "tomo_rotation",
                 "tomo_sample_x", "tomo_shutter", "tomo_i0", [8300.0, 8350.0],
                 [0.0, 90.0, 180.0]],
        "kwargs": {"sample_out": 60.0, "focus": "sim_tomo", "mode": "step"},
    },
    "holotomo_scan": {
        "args": ["tomo_detector", "tomo_rotation", "tomo_holo_z", "tomo_sample_x",
                 "tomo_shutter", "tomo_i0", [0.0, 90.0, 180.0], [0.15, 0.3]],
        "kwargs": {"sample_out": 60.0, "zigzag": False},
    },
    "stxm_ratio_scan": {
        "args": ["stxm_detector", "stxm_energy", "stxm_stage_x", "stxm_stage_y", "stxm_shutter",
                 "stxm_i0", [853.0, 855.5]],
        "kwargs": {"nx": 32, "ny": 32, "step_um": 0.2, "sample_out": [40.0, 0.0],
                   "reference_ratios": [0.5, 1.8]},
    },
    "stxm_stack_scan": {
        "args": ["stxm_detector", "stxm_energy", "stxm_stage_x", "stxm_stage_y", "stxm_shutter",
                 "stxm_i0", [848.0, 853.0, 855.5, 860.0]],
        "kwargs": {"nx": 16, "ny": 16, "step_um": 0.4, "sample_out": [40.0, 0.0], "mode": "step"},
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def fresh_yaml(tmp_path_factory) -> Path:
    """``qserver-list-plans-devices`` run on the shipped startup, as a user would."""
    tool = shutil.which("qserver-list-plans-devices", path=str(Path(sys.executable).parent))
    assert tool, "bluesky-queueserver is not installed (pip install -e .)"
    out = tmp_path_factory.mktemp("qserver-list")
    result = subprocess.run(
        [tool, "--startup-module", STARTUP, "--file-dir", str(out)],
        capture_output=True, text=True, timeout=300, cwd=out, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return out / "existing_plans_and_devices.yaml"


def test_the_four_plans_list_with_every_parameter_typed_and_described(fresh_yaml):
    plans, _ = load_existing_plans_and_devices(fresh_yaml)
    assert set(PLANS) <= set(plans)
    for name in PLANS:
        assert plans[name]["description"], name
        for parameter in plans[name]["parameters"]:
            where = f"{name}({parameter['name']})"
            assert parameter.get("annotation", {}).get("type"), f"{where} has no type"
            assert parameter.get("description", "").strip(), f"{where} has no description"
    # focus travels as a name, never as a callable the queue would evaluate
    for name in ("xanes_scan", "xanes_tomo_scan"):
        (focus,) = [p for p in plans[name]["parameters"] if p["name"] == "focus"]
        assert focus["annotation"]["type"] == "typing.Optional[str]"


@pytest.mark.parametrize("plan_name", PLANS)
def test_a_queue_item_for_each_plan_validates(fresh_yaml, plan_name):
    plans, devices = load_existing_plans_and_devices(fresh_yaml)
    item = {"name": plan_name, **ITEMS[plan_name]}
    assert validate_plan(item, allowed_plans=plans, allowed_devices=devices) == (True, "")


def test_the_shipped_yaml_equals_a_fresh_one(fresh_yaml):
    shipped = yaml.safe_load(EXISTING_PLANS_AND_DEVICES.read_text())
    fresh = yaml.safe_load(fresh_yaml.read_text())
    assert shipped == fresh, (
        f"{EXISTING_PLANS_AND_DEVICES} is out of date (plans or devices changed); "
        f"regenerate it from the repository root with: {REGENERATE}"
    )


def test_the_permissions_file_is_valid_and_allows_the_four_plans():
    permissions = load_user_group_permissions(USER_GROUP_PERMISSIONS)  # schema-checked
    allowed = permissions["user_groups"]["primary"]["allowed_plans"]
    assert {f":^{name}$" for name in PLANS} == set(allowed)
