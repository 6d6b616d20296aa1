"""Bad input to the operator's commands (runs, show, report, serve): clear errors, no traceback."""

from __future__ import annotations

import json
import socket

import pytest

from ssb_beamline.cli import main
from ssb_beamline.storage.service import STATE_FILE, running_service


def test_a_negative_limit_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["runs", "--limit", "-1"])
    assert exit_info.value.code == 2
    assert "must be a whole number >= 0, got '-1'" in capsys.readouterr().err


def test_a_wrong_key_names_the_fix(tiled_server, monkeypatch, capsys):
    monkeypatch.setenv("SSB_TILED_API_KEY", "not-the-key")
    assert main(["runs", "--tiled", tiled_server.url]) == 2
    out = capsys.readouterr().out
    assert "HTTP 401" in out and "Check the API key ($SSB_TILED_API_KEY)" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("state", ["not json", '{"pid": 1, "port": 9}', "{}"])
def test_a_stale_or_damaged_state_file_is_ignored(tmp_path, state):
    (tmp_path / STATE_FILE).write_text(state)  # a crashed server's, or garbage
    assert running_service(tmp_path) is None


def test_runs_json_is_a_list_for_scripts(tiled_server, monkeypatch, capsys):
    monkeypatch.setenv("SSB_TILED_API_KEY", tiled_server.api_key)
    assert main(["runs", "--tiled", tiled_server.url, "--json", "--limit", "1"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--port", "70000"], "must be a port number 0-65535, got '70000'"),
        (["ioc", "--port", "-1"], "must be a port number 1-65535, got '-1'"),
        (["demo", "--epics", "--ca-port", "0"], "must be a port number 1-65535, got '0'"),
        (["check", "--beamline", "x.yaml", "--timeout", "0"], "seconds > 0, got '0'"),
        (["check", "--beamline", "x.yaml", "--timeout", "nan"], "seconds > 0, got 'nan'"),
        (["analyze", "--zmq", "h:1", "--connect-timeout", "-1"], "seconds > 0, got '-1'"),
        (["analyze", "--zmq", "h:1", "--recover-last", "-3"], "whole number >= 0, got '-3'"),
    ],
)
def test_ports_and_timeouts_out_of_range_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_serving_on_a_port_in_use_is_refused_before_the_banner(tmp_path, capsys):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["serve", "--data-dir", str(tmp_path / "d"), "--port", str(port)]) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert f"Cannot serve on 127.0.0.1:{port}" in out and "--port" in out
    assert "tiled server for" not in out  # no banner announcing a server that is not there


def test_a_data_directory_that_is_a_file_is_a_clear_error(tmp_path, monkeypatch, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    monkeypatch.setenv("SSB_DATA_DIR", str(afile))
    assert main(["runs"]) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert f"Cannot use {afile} as the data directory" in out and "is a file, not a folder" in out
    assert "Traceback" not in out


def test_a_data_directory_with_a_question_mark_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SSB_DATA_DIR", str(tmp_path / "q?2"))
    assert main(["runs"]) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert "holds '?', which the URIs of its catalogue" in out and "--data-dir" in out
    assert not (tmp_path / "q").exists()  # no catalogue made next to it


@pytest.mark.slow
def test_a_damaged_catalogue_is_named_with_its_fix(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    for folder in (data, data / "files", data / "detector"):
        folder.mkdir(mode=0o700)
    (data / "catalog.db").write_bytes(b"SQLite format 3\0" + bytes(range(256)) * 20)
    monkeypatch.setenv("SSB_DATA_DIR", str(data))
    assert main(["runs"]) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert f"its catalogue {data / 'catalog.db'} is damaged (sqlite3.DatabaseError" in out
    assert "Restore catalog.db from a backup" in out and "within 180 s" not in out


def test_a_figure_folder_name_too_long_is_a_clear_error(tiled_server, tmp_path, monkeypatch,
                                                       capsys):  # fmt: skip
    monkeypatch.setenv("SSB_TILED_API_KEY", tiled_server.api_key)
    monkeypatch.chdir(tmp_path)
    code = main(["show", "0000dead", "--tiled", tiled_server.url, "--out", "a" * 300])
    text = " ".join(capsys.readouterr().out.split())
    assert code == 2 and "error: File name too long: " in text and "Check that path" in text
