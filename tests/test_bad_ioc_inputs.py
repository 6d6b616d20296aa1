"""Bad inputs to the simulated TXM IOC: each gives a message naming the problem and the fix."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from ssb_beamline.sim_devices.ioc import IOCStartError, start_sim_ioc
from ssb_beamline.sim_devices.ioc.__main__ import main
from ssb_beamline.sim_devices.ioc.frames import SimConfig
from ssb_beamline.sim_devices.ioc.hdf import format_file_name
from ssb_beamline.sim_devices.ioc.motors import AxisSpec
from ssb_beamline.sim_devices.ioc.ndattributes import parse_ndattributes
from ssb_beamline.sim_devices.ioc.server import validate_prefix


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--prefix", "NOCOLON"], "must be a non-empty string ending with ':'"),
        (["--prefix", "A B:"], "must not contain spaces or dots"),
        (["--port", "0"], "--port must be in 1..65535"),
        (["--size", "8"], "--size must be 16..4096"),
        (["--tomo-shape", "16,48"], "--tomo-shape must be three integers Z,Y,X"),
        (["--data-dir", "/nonexistent/ssb-ioc"], "is not a directory; create it first"),
    ],
)
def test_bad_command_line_exits_2_with_the_fix(argv, message, caplog):
    caplog.set_level(logging.ERROR)
    assert main(argv) == 2
    assert message in caplog.text


def test_bad_prefix_refused_before_any_process_starts():
    with pytest.raises(ValueError, match="ending with ':'"):
        start_sim_ioc("SSB")
    with pytest.raises(ValueError, match="ending with ':'"):
        validate_prefix("")


def test_axis_limits_reversed_or_start_outside():
    with pytest.raises(ValueError, match=r"Mono:Energy: limits must be .low, high."):
        AxisSpec("Mono:Energy", "eV", (11000.0, 5000.0), 8000.0)
    with pytest.raises(ValueError, match=r"ZP:Z: start 90\.0 outside"):
        AxisSpec("ZP:Z", "mm", (20.0, 80.0), 90.0)
    with pytest.raises(ValueError, match=r"Det:Z: settle \(DLY\) must be >= 0 s, got -0\.01"):
        AxisSpec("Det:Z", "mm", (1000.0, 4000.0), 2000.0, settle=-0.01)


def test_bad_file_template_and_attribute_xml():
    with pytest.raises(ValueError, match="FileTemplate '%d%d%d' does not format"):
        format_file_name("%d%d%d", "/data/", "scan", 1)
    with pytest.raises(ValueError, match="NDAttributesFile is not valid XML"):
        parse_ndattributes("<Attributes><Attribute name='x'</Attributes>")


def test_bad_model_name():
    with pytest.raises(ValueError, match="model must be one of"):
        SimConfig(model="CT")  # type: ignore[arg-type]


def test_an_ioc_that_exits_at_start_is_reported_with_its_log(tmp_path):
    with pytest.raises(IOCStartError, match=r"exited within .*\n.*--size must be 16..4096"):
        start_sim_ioc(data_dir=tmp_path, args=["--size", "8"], timeout=60)


def test_ioc_package_imports_no_upper_layer():
    """The IOC (sim_devices layer) imports no analysis, callbacks, storage, plans, profiles, cli."""
    package = Path(__file__).parents[1] / "ssb_beamline" / "sim_devices" / "ioc"
    forbidden = ("analysis", "callbacks", "storage", "plans", "profiles", "cli")
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.replace("ssb_beamline.", "").lstrip(".").split(".")
                assert parts[0] not in forbidden, f"{path.name} imports {name}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--size", "0"], "--size must be 16..4096 pixels, got 0"),
        (["--data-dir", "FILE"], "--data-dir: FILE is a file, not a folder. Choose a folder"),
        (["--data-dir", "OPEN"], "--data-dir: OPEN can be written by others (mode 777)"),
        (["--data-dir", "/tmp"], "--data-dir: /tmp is a folder shared by every user"),
    ],
)
def test_ioc_command_checks_its_inputs_before_its_banner(argv, message, tmp_path, capsys):
    """``ssb-beamline ioc`` said it served (Ctrl-C stops it), then refused --size 0;
    a file as --data-dir was accepted."""
    from ssb_beamline.cli import main as cli_main

    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)
    names = {"FILE": str(tmp_path / "file"), "OPEN": str(tmp_path / "open")}
    argv = [names.get(arg, arg) for arg in argv]
    for name, path in names.items():
        message = message.replace(name, path)
    assert cli_main(["ioc", "--port", "5099", *argv]) == 2
    out = capsys.readouterr().out
    assert " ".join(out.split()).startswith(f"error: {message}"), out
    assert "Ctrl-C stops it" not in out and "Traceback" not in out
    assert len(out.strip().splitlines()) <= 3  # one message, wrapped at most
