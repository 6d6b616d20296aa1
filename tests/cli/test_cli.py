"""The ssb-beamline command: demo, runs, show, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest

from ssb_beamline.cli import build_parser, main

pytestmark = pytest.mark.slow


def test_demo_runs_lists_and_shows(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    assert (
        main(
            [
                "demo",
                "--data-dir",
                str(data),
                "--out",
                str(tmp_path / "demo"),
                "--preset",
                "quick",
                "--size",
                "96",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "SOC RMSE against truth" in out and "edge-energy error" in out
    for name in ("maps.png", "spectra.png", "truth_vs_result.png"):
        assert (tmp_path / "demo" / name).stat().st_size > 10_000
    assert main(["runs", "--data-dir", str(data)]) == 0
    listing = capsys.readouterr().out
    assert "xanes_scan" in listing and "v1" in listing and "success" in listing
    assert main(["runs", "--data-dir", str(data), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["plan"], row["status"], row["points_done"]) == ("xanes_scan", "success", 21)
    assert row["results"] == [{"version": "v1", "complete": True}]
    uid_prefix = row["uid"][:8]
    from ssb_beamline.cli import stored

    def no_server(args):  # show and report read the catalog and files themselves
        raise AssertionError("show/report asked for a tiled server on the embedded default")

    monkeypatch.setattr(stored, "server_for_reading", no_server)
    assert (
        main(
            [
                "show",
                uid_prefix,
                "--data-dir",
                str(data),
                "--out",
                str(tmp_path / "fig"),
                "--format",
                "pdf",
            ]
        )
        == 0
    )
    assert (tmp_path / "fig" / uid_prefix / "maps.pdf").exists()
    # the particle statistics computed live: paper-style figures (PNG by default)
    report = ["report", uid_prefix, "--data-dir", str(data), "--out", str(tmp_path / "rep")]
    assert main(report) == 0
    for name in ("particles_maps", "particles_size"):
        assert (tmp_path / "rep" / uid_prefix / f"{name}.png").stat().st_size > 10_000


def test_show_of_an_unknown_run_says_so(tmp_path, capsys):
    assert main(["show", "deadbeef", "--data-dir", str(tmp_path)]) == 2
    assert "No stored run has a uid starting with 'deadbeef'" in capsys.readouterr().out


def test_a_tiled_uri_that_does_not_answer_is_a_clear_error(capsys):
    assert main(["runs", "--tiled", "http://127.0.0.1:9/api/v1"]) == 2
    out = capsys.readouterr().out
    assert "No tiled server answered" in out and "Traceback" not in out


def test_the_console_script_is_installed():
    result = subprocess.run(
        [sys.executable, "-m", "ssb_beamline.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for command in ("demo", "runs", "show", "replay", "sync", "report", "serve"):
        assert command in result.stdout


def test_every_command_has_help():
    parser = build_parser()
    for command in ("demo", "runs", "show", "replay", "sync", "report", "serve"):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([command, "--help"])
        assert exit_info.value.code == 0


def test_replay_command_stores_a_new_version(tmp_path, capsys):
    data = tmp_path / "data"
    args = ["--data-dir", str(data)]
    assert (
        main(["demo", *args, "--out", str(tmp_path / "d"), "--preset", "quick", "--size", "64"])
        == 0
    )
    capsys.readouterr()
    assert main(["replay", *args, "--plan", "xanes_scan"]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "v2" in out
    assert main(["replay", *args, "--sample", "no such sample"]) == 2
    assert "No stored run matches" in capsys.readouterr().out


def test_sync_with_nothing_pending_says_so(tmp_path, capsys):
    assert main(["sync", "--data-dir", str(tmp_path)]) == 0
    assert "Nothing to sync" in capsys.readouterr().out
    assert not (tmp_path / "catalog.db").exists()  # answered without starting a server


def test_a_demo_field_without_particles_fails_clearly_and_stores_no_results(tmp_path, capsys):
    """The 16 x 16 field of seed 19 holds no particle: no maps of noise stored as a success."""
    data = tmp_path / "data"
    args = ["--data-dir", str(data)]
    demo = ["demo", *args, "--out", str(tmp_path / "d"), "--preset", "quick"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no numpy warning on the terminal
        assert main([*demo, "--size", "16", "--seed", "19"]) == 1
    captured = capsys.readouterr()
    text = " ".join((captured.out + captured.err).split())
    assert "Live analysis failed" in text
    assert "no Ni-containing particles in the field of view" in text
    assert "another --seed" in text and "The scoring mask is empty" not in text
    assert main(["runs", *args, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["results"] == []
