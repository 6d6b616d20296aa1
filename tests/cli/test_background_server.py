"""The background tiled server of a data directory, the runs table's pieces, help texts."""

from __future__ import annotations

import fcntl
import json
import time

import pytest

from ssb_beamline.cli import build_parser, main
from ssb_beamline.storage.run_table import RunRow, _journal_status
from ssb_beamline.storage.service import STATE_FILE, running_service, stop_service


def _help(command: str, capsys) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_help_texts_show_defaults(capsys):
    assert "(default: 50)" in _help("runs", capsys)
    serve = _help("serve", capsys)
    assert "--host HOST address to listen on" in serve and "(default: 127.0.0.1)" in serve
    assert "--stop" in serve and "(default: None)" not in serve
    assert "(default: auto)" in _help("replay", capsys)
    assert "(default: 0)" in _help("demo", capsys)  # --seed


def test_journaled_runs_are_open_while_written_and_syncing_after(tmp_path):
    journal = tmp_path / "journal"
    journal.mkdir()
    start = {"uid": "u1", "time": 5.0, "scan_id": 3, "plan_name": "xanes_scan", "num_points": 4}
    path = journal / "u1.jsonl"
    path.write_text(json.dumps({"name": "start", "doc": start}) + "\n")
    (journal / "u0.synced.jsonl").write_text("")  # in tiled: not listed
    with path.open("a") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # a live writer
        assert _journal_status(journal) == ({"u1": "open"}, {"u1": start})
    assert _journal_status(journal)[0] == {"u1": "syncing"}


def test_a_partial_version_is_marked():
    row = RunRow("u", 1, "tomo_scan", "s", "success", 3, 3, 0.0, (("v1", False), ("v2", True)))
    assert row.results_text() == "v1 (partial), v2"
    assert row.as_dict()["results"][0] == {"version": "v1", "complete": False}


@pytest.mark.slow
def test_commands_start_reuse_and_stop_the_background_server(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SSB_BACKGROUND_SERVER", "1")
    monkeypatch.delenv("SSB_TILED_URI", raising=False)
    data = tmp_path / "data"
    try:
        assert main(["runs", "--data-dir", str(data)]) == 0  # cold: starts the server
        assert "No runs stored yet" in capsys.readouterr().out
        service = running_service(data)
        assert service is not None and (data / STATE_FILE).stat().st_mode & 0o777 == 0o600
        t0 = time.perf_counter()
        assert main(["runs", "--data-dir", str(data), "--json"]) == 0  # warm: the same server
        seconds = time.perf_counter() - t0
        assert json.loads(capsys.readouterr().out) == []
        print(f"warm runs: {seconds:.2f} s")
        assert running_service(data) == service
        assert main(["serve", "--stop", "--data-dir", str(data)]) == 0
        assert f"process {service.pid}" in capsys.readouterr().out
        assert running_service(data) is None and not (data / STATE_FILE).exists()
        assert main(["serve", "--stop", "--data-dir", str(data)]) == 0
        assert "No background tiled server runs" in capsys.readouterr().out
    finally:
        stop_service(data)
