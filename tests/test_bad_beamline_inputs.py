"""Bad-input catalogue: malformed beamline files.

Each case must give one `BeamlineFileError` naming the file, the key (with its
line when the key exists) and the fix, never a pydantic traceback.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from ssb_beamline.devices.beamline_file import (
    BeamlineFileError,
    default_beamline_file,
    load_beamline_file,
)


@pytest.fixture(scope="module")
def base() -> dict:
    return yaml.safe_load(default_beamline_file().read_text())


def _write(tmp_path: Path, data: dict) -> tuple[Path, list[str]]:
    text = yaml.safe_dump(data, sort_keys=False)
    path = tmp_path / "bad-beamline.yaml"
    path.write_text(text)
    return path, text.splitlines()


def _line_of(lines: list[str], key: str, after: str | None = None) -> int:
    """1-based line of ``key:`` (the first after the line starting ``after:``)."""
    start = 0
    if after is not None:
        start = next(i for i, line in enumerate(lines) if line.lstrip().startswith(f"{after}:"))
    return next(
        i + 1 for i, line in enumerate(lines) if i >= start and line.lstrip().startswith(f"{key}:")
    )


def _set(data: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        data = data[part]
    if value is _DELETE:
        del data[last]
    else:
        data[last] = value


_DELETE = object()

# (case id, key to change, new value, key named in the message, (line key, after), fix words)
CASES = [
    ("missing device", "devices.energy", _DELETE, "devices.energy", ("devices", None), "add it"),
    ("unknown top key", "detectors", {"x": 1}, "detectors", ("detectors", None), "remove it"),
    ("unknown device key", "devices.zone_plate.pv", "ZP:", "devices.zone_plate.pv",
     ("pv", "zone_plate"), "allowed here: prefix"),
    ("prefix not a string", "devices.sample_stage.prefix", 12, "devices.sample_stage.prefix",
     ("prefix", "sample_stage"), "quoted string"),
    ("PV with a space", "devices.i0.pv", "I0 Counts", "devices.i0.pv", ("pv", "i0"),
     "PV characters"),
    ("motor PV with a field", "devices.energy.pv", "Mono:Energy.VAL", "devices.energy.pv",
     ("pv", "energy"), "without the field"),
    ("limits reversed", "limits.energy_ev", [11000.0, 5000.0], "limits.energy_ev",
     ("energy_ev", "limits"), "[5000, 11000]"),
    ("limits not a pair", "limits.zp_z_mm", [20.0], "limits.zp_z_mm", ("zp_z_mm", "limits"),
     "[low, high]"),
    ("negative magnification", "focus.magnification", -50.0, "focus.magnification",
     ("magnification", "focus"), "positive number"),
    ("wrong version", "version", 2, "version", ("version", None), "set it to 1"),
    ("relative detector folder", "detector_files.ioc_directory", "data/ssb",
     "detector_files.ioc_directory", ("ioc_directory", "detector_files"), "absolute path"),
    ("shutter timeout zero", "devices.shutter.timeout_s", 0, "devices.shutter.timeout_s",
     ("timeout_s", "shutter"), "positive number"),
    ("sample_out not a number", "sample_out_x", "far away", "sample_out_x",
     ("sample_out_x", None), "write a number"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "key", "value", "named", "line_at", "fix"), CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_malformed_beamline_file(tmp_path, base, case, key, value, named, line_at, fix):
    data = copy.deepcopy(base)
    _set(data, key, value)
    path, lines = _write(tmp_path, data)
    with pytest.raises(BeamlineFileError) as info:
        load_beamline_file(path)
    message = str(info.value)
    assert str(path) in message
    assert named in message
    assert f"line {_line_of(lines, *line_at)}" in message
    assert "Fix:" in message and fix in message
    assert "pydantic" not in message.lower()


def test_not_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("version: 1\ndevices: [unclosed\n")
    with pytest.raises(BeamlineFileError, match=r"broken\.yaml, line \d+: not valid YAML"):
        load_beamline_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(BeamlineFileError, match=r"Cannot read the beamline file .*sim-txm\.yaml"):
        load_beamline_file(tmp_path / "nope.yaml")


def test_every_problem_listed_once(tmp_path, base):
    data = copy.deepcopy(base)
    del data["devices"]["i0"]
    data["limits"]["det_z_mm"] = [4000.0, 1000.0]
    path, _ = _write(tmp_path, data)
    with pytest.raises(BeamlineFileError, match="has 2 problem") as info:
        load_beamline_file(path)
    assert "devices.i0" in str(info.value) and "limits.det_z_mm" in str(info.value)


def test_packaged_file_loads_and_prefix_overrides():
    loaded = load_beamline_file(default_beamline_file(), prefix="ABC:")
    pvs = dict(loaded.config.device_pvs())
    assert pvs["devices.energy.pv"] == "ABC:Mono:Energy"
    assert loaded.where("devices.energy.pv").endswith(
        f"line {loaded.lines['devices.energy.pv']} (devices.energy.pv)"
    )
