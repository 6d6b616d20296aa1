"""A full disk in the middle of a scan (issue 11, finding 3): a clear error, no crash.

The demo runs in a child process on a small real file system (a tmpfs this test
mounts, so it needs root, as CI has) that a ballast file leaves almost full. Before
the fix HDF5 failed a frame write with ENOSPC and the process died of a
segmentation fault; now the detector refuses the frame that would not fit, the run
is closed (exit status "fail") with every frame taken so far, and
``ssb-beamline sync`` leaves nothing pending once space is freed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from ssb_beamline.cli import main
from ssb_beamline.diskspace import MIN_FREE_BYTES, free_bytes
from ssb_beamline.sim_devices.detector import DATA_PATH
from ssb_beamline.storage import EmbeddedTiledServer, open_store
from ssb_beamline.storage.server_config import DATA_DIR_ENV, TILED_API_KEY_ENV, TILED_URI_ENV

pytestmark = pytest.mark.slow

SIZE = 128  # px: 32 kB frames
FRAME = SIZE * SIZE * 2
#: Frames the file system takes before the detector must refuse one (darks, flats,
#: some images of the quick preset, 47 frames in all), besides the run's small files.
FRAMES_THAT_FIT = 40
#: Room for the run's other writes (journal, catalog, tables, log): none, they take
#: some of the frames' room, so the refusal only comes earlier.
OVERHEAD = 0


def _mount_tmpfs(where: Path, size_mb: int) -> str | None:
    """Mount a tmpfs; the reason it cannot be done, or None."""
    if os.geteuid() != 0:
        return "mounting a small file system needs root (CI runs as root)"
    if shutil.which("mount") is None:
        return "no mount command on this machine"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(where)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        return f"cannot mount a tmpfs here ({done.stderr.strip()})"
    return None


@pytest.fixture
def small_fs(tmp_path):
    """A 64 MB tmpfs, unmounted afterwards (skipped where it cannot be mounted)."""
    where = tmp_path / "fs"
    reason = _mount_tmpfs(where, 64)
    if reason:
        pytest.skip(reason)
    try:
        yield where
    finally:
        done = subprocess.run(["umount", str(where)], check=False, capture_output=True, timeout=30)
        if done.returncode != 0:  # a server child still closing: detach it
            subprocess.run(
                ["umount", "-l", str(where)], check=False, capture_output=True, timeout=30
            )


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (DATA_DIR_ENV, TILED_URI_ENV)}
    env.pop(TILED_API_KEY_ENV, None)
    return env


def test_a_full_disk_stops_the_scan_with_a_message_and_sync_completes_it(small_fs, tmp_path):
    data = small_fs / "data"
    EmbeddedTiledServer(data, in_process=True).close()  # the catalog exists before the ballast
    ballast = small_fs / "ballast"
    keep = MIN_FREE_BYTES + 2 * FRAME + FRAMES_THAT_FIT * FRAME + OVERHEAD
    with ballast.open("wb") as f:
        f.write(b"\0" * max(free_bytes(small_fs) - keep, 0))

    demo = subprocess.run(
        [sys.executable, "-m", "ssb_beamline.cli", "demo", "--data-dir", str(data),
         "--out", str(tmp_path / "out"), "--preset", "quick", "--size", str(SIZE)],
        check=False, capture_output=True, text=True, timeout=300, env=_child_env(),
    )  # fmt: skip
    output = " ".join((demo.stdout + demo.stderr).split())
    assert demo.returncode == 2, output  # an error message, not a crash (-11)
    assert "Fatal Python error" not in output and "Traceback" not in output, output
    assert f"The file system {small_fs} (holding {data / 'detector'}" in output, output
    assert "is full" in output and f"Free space on {small_fs}" in output, output
    assert "ssb-beamline sync" in output

    # the run is closed in the journal, with the frames that were written
    (journal,) = (data / "journal").glob("*.jsonl")
    docs = [json.loads(line) for line in journal.read_text().splitlines()]
    uid = docs[0]["doc"]["uid"]
    stop = docs[-1]
    assert stop["name"] == "stop" and stop["doc"]["exit_status"] == "fail"
    assert "is full" in stop["doc"]["reason"]
    files = sorted((data / "detector").glob("*.h5"))
    with_frames = {}
    for path in files:  # every file closed cleanly, readable without SWMR
        with h5py.File(path, "r") as f:
            with_frames[path] = f[DATA_PATH].shape[0]
    assert sum(with_frames.values()) < 47  # the scan stopped early

    ballast.unlink()
    assert main(["sync", "--data-dir", str(data)]) == 0
    assert not list((data / "journal").glob(f"{uid}.jsonl"))  # nothing pending
    with open_store(data_dir=data) as store:
        run = store.raw[uid]
        assert run.metadata["stop"]["exit_status"] == "fail"
        journaled = stop["doc"]["num_events"]
        for stream, count in journaled.items():
            assert len(run[stream]["seq_num"].read()) == count, stream
