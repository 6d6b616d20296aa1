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
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

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


@pytest.mark.slow
def test_two_demos_started_together_on_a_fresh_data_directory(tmp_path):
    data, barrier = tmp_path / "data", tmp_path / "barrier"
    barrier.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in (TILED_URI_ENV, TILED_API_KEY_ENV, DATA_DIR_ENV)}  # fmt: skip
    env["COLUMNS"] = "200"
    processes = {}
    for name in ("a", "b"):
        args = ["demo", "--data-dir", str(data), "--preset", "quick", "--size", "96",
                "--out", str(tmp_path / f"out-{name}")]  # fmt: skip
        processes[name] = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(barrier), name, *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    deadline = time.monotonic() + TIMEOUT_S
    while not all((barrier / f"ready-{n}").exists() for n in processes):
        assert all(p.poll() is None for p in processes.values()), "a demo died while importing"
        assert time.monotonic() < deadline, "the demos did not get ready"
        time.sleep(0.05)
    assert not data.exists()  # fresh: nothing made before the go
    (barrier / "go").touch()
    outputs = {}
    for name, process in processes.items():
        try:
            out, _ = process.communicate(timeout=max(deadline - time.monotonic(), 1.0))
        except subprocess.TimeoutExpired:
            for p in processes.values():
                p.kill()
            raise
        outputs[name] = (process.returncode, out.decode(errors="replace"))
    for name, (code, out) in outputs.items():
        assert code == 0, f"demo {name} failed:\n{out[-3000:]}"
        assert "SOC RMSE against truth" in out
        for alarm in ("not (completely) in tiled yet", "409:", "already exists", "ERROR"):
            assert alarm not in out, f"demo {name}: {alarm!r}\n{out[-3000:]}"
        assert (tmp_path / f"out-{name}" / "maps.png").exists()
    waited = ["waiting for it to end" in " ".join(out.split()) for _, out in outputs.values()]
    assert sorted(waited) == [False, True], outputs
    with open_store(data_dir=data) as store:
        plans = [store.raw[uid].metadata["start"]["plan_name"] for uid in store.raw]
    assert plans == ["xanes_scan", "xanes_scan"]


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
