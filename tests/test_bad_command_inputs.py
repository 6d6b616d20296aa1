"""Bad input to the operator's commands (runs, show, report, serve): clear errors, no traceback."""

from __future__ import annotations

import json

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
