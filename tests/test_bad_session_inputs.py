"""A new user's mistakes with the command line: clear errors at once, no traceback, no hang.

Found by following README.md on a fresh clone: a command started while
``ssb-beamline serve`` held the data directory waited silently for it to stop; a
second ``serve`` printed its address and then waited; ``demo --size 5`` failed only
after importing the acquisition stack; a failing live-analysis step printed a
traceback; progress lines counted dark and flat frames as points; the demo's
truth-against-result figure cut its left axis labels.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ssb_beamline.cli import main
from ssb_beamline.cli._console import _one_line_errors
from ssb_beamline.cli.servers import _SERVER_LOCK, _serve_address, foreground_server
from ssb_beamline.progress import LogProgress
from ssb_beamline.storage.run_table import _done

# A stand-in for `ssb-beamline serve --port 8123`: holds the server lock the way an
# embedded server does (flock, pid in the file) with "serve" on its command line.
_HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    print("held", flush=True)
    sys.stdin.read()
    """
)


@pytest.fixture
def served_dir(tmp_path, monkeypatch):
    """A data directory held by a (stand-in) foreground ``ssb-beamline serve``."""
    monkeypatch.delenv("SSB_TILED_URI", raising=False)
    lock = tmp_path / _SERVER_LOCK
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(lock), "serve", "--port", "8123"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        yield tmp_path, holder.pid
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)


def test_a_foreground_server_is_found_with_its_address(served_dir):
    data_dir, pid = served_dir
    assert foreground_server(data_dir) == (pid, "http://127.0.0.1:8123/api/v1")


@pytest.mark.parametrize(
    "command",
    [["sync"], ["serve"], ["demo", "--preset", "quick", "--size", "16"]],
)
def test_commands_on_a_served_directory_name_its_uri(served_dir, capsys, tmp_path, command):
    data_dir, pid = served_dir
    out_dir = ["--out", str(tmp_path / "out")] if command[0] == "demo" else []
    assert main([*command, "--data-dir", str(data_dir), *out_dir]) == 2
    out = capsys.readouterr().out
    assert f"process {pid}" in out and "http://127.0.0.1:8123/api/v1" in out
    assert "Traceback" not in out


def test_a_free_directory_has_no_foreground_server(tmp_path):
    assert foreground_server(tmp_path) is None  # no lock file
    (tmp_path / _SERVER_LOCK).write_text("1")  # a lock nobody holds (a server that ended)
    assert foreground_server(tmp_path) is None


@pytest.mark.parametrize(
    ("argv", "uri"),
    [
        (["python", "ssb-beamline", "serve"], "http://127.0.0.1:8000/api/v1"),
        (["py", "-m", "ssb_beamline", "serve", "--port=9001"], "http://127.0.0.1:9001/api/v1"),
        (["x", "serve", "--host", "10.0.0.5", "--port", "81"], "http://10.0.0.5:81/api/v1"),
        (["x", "serve", "--host", "0.0.0.0"], "http://127.0.0.1:8000/api/v1"),
        (["x", "serve", "--stop"], None),
        (["x", "-m", "ssb_beamline.storage.service", "/data"], None),
    ],
)
def test_the_address_is_read_from_the_serve_command_line(argv, uri):
    assert _serve_address(argv) == uri


def test_a_too_small_demo_fails_before_the_acquisition_stack_is_imported(tmp_path):
    code = (
        "import sys; from ssb_beamline.cli import main; "
        f"rc = main(['demo', '--size', '5', '--out', {str(tmp_path / 'o')!r}]); "
        "print(rc, 'bluesky' in sys.modules)"
    )
    env = {"SSB_DATA_DIR": str(tmp_path / "d"), "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.stdout.split()[-2:] == ["2", "False"], done.stdout + done.stderr
    assert "--size must be a whole number of pixels >= 16; got 5" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_a_logged_failure_is_one_line_naming_the_error():
    try:
        raise ValueError("the start document has no pixel_size_um")
    except ValueError:
        failure = sys.exc_info()
    record = logging.LogRecord(
        "ssb_beamline.x",
        logging.ERROR,
        __file__,
        1,
        "post-processor %s failed",
        ("particles",),
        failure,
    )
    assert _one_line_errors(record) is True  # the record is kept
    assert record.exc_info is None and record.exc_text is None
    assert record.getMessage() == (
        "post-processor particles failed: ValueError: the start document has no "
        "pixel_size_um (-v: the traceback)"
    )


def test_progress_counts_the_primary_points_only(caplog):
    progress = LogProgress(every_s=0)
    with caplog.at_level(logging.INFO, logger="ssb_beamline.progress"):
        progress("start", {"uid": "0123abcd", "plan_name": "xanes_scan", "num_points": 2})
        progress("descriptor", {"uid": "d-dark", "name": "dark"})
        progress("event_page", {"descriptor": "d-dark", "seq_num": [1, 2, 3]})
        progress("descriptor", {"uid": "d-primary", "name": "primary"})
        progress("event", {"descriptor": "d-primary", "seq_num": 1})
        progress("event", {"descriptor": "d-primary", "seq_num": 2})
    lines = [r.getMessage() for r in caplog.records if "points" in r.getMessage()]
    assert lines == ["run 0123abcd: 1/2 points, 0 s", "run 0123abcd: 2/2 points, 0 s"]


def test_a_holotomography_run_counts_its_angles_not_its_monitor_readings():
    events = {"baseline": 2, "dark": 5, "flat": 5, "primary_000": 31, "rotation_monitor_000": 173}
    assert _done({"events": events}) == 31
    assert _done({"events": {"primary": 41, "dark": 5}}) == 41


def test_a_demo_data_directory_that_cannot_be_written_is_refused_first(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out_dir = str(tmp_path / "out")
    assert main(["demo", "--data-dir", str(blocker / "data"), "--out", out_dir]) == 2
    out = capsys.readouterr().out
    assert f"Cannot use {blocker / 'data'} as the data directory" in out
    assert "Choose a writable directory with --data-dir" in out and "Traceback" not in out


def test_the_truth_figure_keeps_its_labels_inside(tmp_path):
    """``make demo``'s truth_vs_result.png had its left y labels cut (figure too narrow)."""
    from figure_checks import check_figure

    from ssb_beamline.report.figures import write_xanes_figures
    from ssb_beamline.report.pages import FigureSink

    yy, xx = np.mgrid[:96, :96]
    mask = (yy - 48) ** 2 + (xx - 48) ** 2 < 40**2
    soc = np.where(mask, 0.3 + 0.3 * np.random.default_rng(0).random((96, 96)), np.nan)
    edge = 8342.3 + 1.7 * np.nan_to_num(soc)  # 5-digit colour-bar ticks, as in the demo
    energies = np.linspace(8300, 8450, 12)
    normalized = np.where(mask, 1 / (1 + np.exp(-(energies[:, None, None] - 8343) / 2)), 0)
    arrays = {"soc": soc, "edge_energy": edge, "mask": mask, "normalized": normalized,
              "energies": energies}  # fmt: skip
    sink = FigureSink(tmp_path, keep=True)
    truth = {"soc": np.nan_to_num(soc), "edge_energy": edge}
    write_xanes_figures(tmp_path, arrays, truth=truth, pixel_size_um=0.13, sink=sink)
    check_figure("truth_vs_result", sink.figures["truth_vs_result"])
