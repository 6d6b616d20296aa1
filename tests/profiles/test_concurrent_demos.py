"""Two demos started at the same instant on one fresh data directory (issue 11, finding 7).

Both are real ``ssb-beamline demo`` processes with their own embedded servers on
the same data directory. They import everything first, then wait at a file barrier
and start together: both must succeed, both runs must be stored, and neither may
raise a false alarm about the other's live run ("not in tiled yet"). One embedded
server writes a data directory at a time (DuckDB allows one writing process), so
the second demo says it waits for the first, then runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from served import free_port, wait_until_healthy

from ssb_beamline.storage import open_store
from ssb_beamline.storage.server_config import DATA_DIR_ENV, TILED_API_KEY_ENV, TILED_URI_ENV

#: Waits for the imports of two interpreters and for two demos, on a loaded machine.
TIMEOUT_S = 600.0

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import ssb_beamline.profiles.demo  # the slow imports, before the barrier
    from ssb_beamline.cli import main
    barrier, name, args = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    (barrier / f"ready-{name}").touch()
    while not (barrier / "go").exists():
        time.sleep(0.001)
    sys.exit(main(args))
    """
)


def run_together(tmp_path: Path, argvs: dict[str, list[str]], env: dict) -> dict[str, str]:
    """Start one ``ssb-beamline`` process per entry at the same instant; their outputs.

    Each imports everything first, then waits at a file barrier; every one must exit 0.
    """
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-c", CHILD, str(barrier), name, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
        )
        for name, args in argvs.items()
    }
    outputs = {}
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not all((barrier / f"ready-{n}").exists() for n in processes):
            assert all(p.poll() is None for p in processes.values()), "a demo died importing"
            assert time.monotonic() < deadline, "the demos did not get ready"
            time.sleep(0.05)
        (barrier / "go").touch()
        for name, process in processes.items():
            out, _ = process.communicate(timeout=max(deadline - time.monotonic(), 1.0))
            outputs[name] = out.decode(errors="replace")
            assert process.returncode == 0, f"demo {name} failed:\n{outputs[name][-3000:]}"
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return outputs


def assert_clean_demo_outputs(tmp_path: Path, outputs: dict[str, str]) -> None:
    for name, out in outputs.items():
        assert "SOC RMSE against truth" in out
        for alarm in ("not (completely) in tiled yet", "409:", "already exists", "ERROR"):
            assert alarm not in out, f"demo {name}: {alarm!r}\n{out[-3000:]}"
        assert (tmp_path / f"out-{name}" / "maps.png").exists()


def demo_args(tmp_path: Path, name: str, *store: str, size: int = 64) -> list[str]:
    return ["demo", *store, "--preset", "quick", "--size", str(size),
            "--out", str(tmp_path / f"out-{name}")]  # fmt: skip


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in (TILED_URI_ENV, TILED_API_KEY_ENV, DATA_DIR_ENV)}  # fmt: skip
    env["COLUMNS"] = "200"
    return env


@pytest.mark.slow
def test_two_demos_started_together_on_a_fresh_data_directory(tmp_path):
    data = tmp_path / "data"
    argvs = {name: demo_args(tmp_path, name, "--data-dir", str(data)) for name in "ab"}
    outputs = run_together(tmp_path, argvs, clean_env())
    assert_clean_demo_outputs(tmp_path, outputs)
    waited = ["waiting for it to end" in " ".join(out.split()) for out in outputs.values()]
    assert sorted(waited) == [False, True], outputs
    with open_store(data_dir=data) as store:
        plans = [store.raw[uid].metadata["start"]["plan_name"] for uid in store.raw]
    assert plans == ["xanes_scan", "xanes_scan"]


@pytest.fixture
def fresh_served(tmp_path):
    """``ssb-beamline serve`` on a brand-new data directory: no ``raw`` nor ``results`` yet."""
    data, port = tmp_path / "served", free_port()
    err = tmp_path / "serve.err"
    with err.open("wb") as stderr:
        serve = subprocess.Popen(
            [sys.executable, "-m", "ssb_beamline.cli", "serve", "--data-dir", str(data),
             "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=stderr, env=clean_env(), stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        wait_until_healthy(serve, port, err.read_text, TIMEOUT_S, "ssb-beamline serve")
        yield f"http://127.0.0.1:{port}/api/v1", data
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()


@pytest.mark.slow
def test_two_demos_started_together_on_a_fresh_served_tiled(tmp_path, fresh_served):
    """Both create ``raw`` and ``results`` at once on a new server: one gets tiled's 409."""
    from tiled.client import from_uri

    uri, data = fresh_served
    key = (data / ".api_key").read_text().strip()
    root = from_uri(uri, api_key=key)
    assert "raw" not in root and "results" not in root  # the race is still to come
    env = {**clean_env(), TILED_API_KEY_ENV: key}
    store = ("--tiled", uri, "--data-dir", str(data))
    argvs = {name: demo_args(tmp_path, name, *store, size=64) for name in "ab"}
    outputs = run_together(tmp_path, argvs, env)
    assert_clean_demo_outputs(tmp_path, outputs)
    raw = from_uri(uri, api_key=key)["raw"]
    runs = [raw[uid].metadata for uid in raw]
    assert [md["start"]["plan_name"] for md in runs] == ["xanes_scan", "xanes_scan"]
    assert [md["stop"]["exit_status"] for md in runs] == ["success", "success"]
    assert sorted(md["start"]["scan_id"] for md in runs) == [1, 2]


def test_a_lock_held_by_another_process_times_out_with_a_clear_message(tmp_path):
    from ssb_beamline.storage.dir_lock import DataDirLockTimeoutError, data_dir_lock

    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from ssb_beamline.storage.dir_lock import data_dir_lock
            with data_dir_lock({str(tmp_path)!r}):
                print("held", flush=True)
                sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == b"held\n"
        refused = pytest.raises(DataDirLockTimeoutError, match=r"Another ssb-beamline.*\.lock")
        with refused, data_dir_lock(tmp_path, timeout_s=0.3):
            pass
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    with data_dir_lock(tmp_path, timeout_s=60):  # released when its holder ended
        assert Path(tmp_path, ".lock").exists()


def test_only_this_sessions_runs_are_reported_as_not_in_tiled(tmp_path):
    """Another process's live run in a shared journal is not this session's alarm."""
    from types import SimpleNamespace

    from ssb_beamline.profiles.simulated import SimulatedBeamline
    from ssb_beamline.storage.journal import DocumentJournal

    journal = DocumentJournal(tmp_path / "journal")
    for uid in ("mine-1", "theirs-1"):
        journal.append(uid, "start", {"uid": uid, "time": 0.0})
    session = SimpleNamespace(journal=journal, own_runs={"mine-1"})
    assert SimulatedBeamline.journaled_only(session) == ["mine-1"]
    assert SimulatedBeamline.journaled_only(SimpleNamespace(journal=None, own_runs=set())) == []
