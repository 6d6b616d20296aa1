"""Every file the package writes is private: folders 0700, files 0600 (issue 11, finding 5).

The demo runs with the permissive umask 0022, so the modes checked come from where
the package creates each file, not from the test's environment. Figures written to
``--out`` are the user's own outputs (reports to share) and follow the user's umask.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ssb_beamline.cli import main
from ssb_beamline.private_files import UnsafeFolderError, make_private_dir
from ssb_beamline.storage.journal import DocumentJournal
from ssb_beamline.storage.result_journal import ResultJournal
from ssb_beamline.storage.server_config import DATA_DIR_ENV, TILED_API_KEY_ENV, TILED_URI_ENV


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def not_private(root: Path) -> list[str]:
    """Every folder (root included) that is not 0700 and every file that is not 0600."""
    found = []
    for folder, _dirs, files in os.walk(root):
        base = Path(folder)
        if mode(base) != 0o700:
            found.append(f"{base} {mode(base):o}")
        found += [f"{base / n} {mode(base / n):o}" for n in files if mode(base / n) != 0o600]
    return found


@pytest.fixture
def open_umask():
    """The usual umask 0022: a file made without an explicit mode is world-readable."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.slow
def test_after_a_demo_every_file_in_the_data_directory_is_private(
    tmp_path, monkeypatch, open_umask
):
    for name in (DATA_DIR_ENV, TILED_URI_ENV, TILED_API_KEY_ENV):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "home" / "data"  # the parent does not exist yet either
    out = tmp_path / "figures"
    args = ["--data-dir", str(data), "--out", str(out), "--preset", "quick", "--size", "64"]
    assert main(["demo", *args]) == 0
    files = {p.relative_to(data).parts[0] for p in data.rglob("*") if p.is_file()}
    # the store, the server's own files, the detector's and the journal's
    for name in (".api_key", "catalog.db", "storage.duckdb", "server.log", "detector", "files"):
        assert name in files, sorted(files)
    assert list((data / "journal").glob("*.synced.jsonl"))
    assert not_private(data) == []
    assert mode(data.parent) == 0o700  # made by the package too


def test_an_existing_open_data_directory_is_made_private(tmp_path, open_umask):
    from ssb_beamline.storage.server_config import DataLayout

    root = tmp_path / "old"
    root.mkdir(mode=0o755)
    DataLayout(root).create()
    assert not_private(root) == []


def test_journals_and_journaled_results_are_private(tmp_path, open_umask):
    journal = DocumentJournal(tmp_path / "journal")
    journal.append("run-1", "start", {"uid": "run-1", "time": 1.0})
    with journal.path("run-1").open("a") as f:
        f.write('{"name": "event", "doc": {"tor')  # the write a crash interrupted
    journal._files.pop("run-1").close()  # as if the process had died
    journal.close_interrupted("run-1")
    assert (tmp_path / "journal" / "run-1.jsonl.torn").exists()
    ResultJournal(tmp_path / "journal" / "results").write(
        "run-1",
        {"soc": np.zeros((4, 4), np.float32)},
        units={"soc": ""},
        metadata={"source": "live"},
        tables={"particles": pd.DataFrame({"label": [1, 2]})},
    )
    (entry,) = (tmp_path / "journal" / "results").iterdir()
    assert {p.name for p in entry.iterdir()} == {"arrays.npz", "particles.parquet", "metadata.json"}
    assert not_private(tmp_path / "journal") == []


def test_private_folders_are_made_with_their_parents(tmp_path, open_umask):
    made = make_private_dir(tmp_path / "a" / "b" / "c")
    assert [mode(p) for p in (made, made.parent, made.parent.parent)] == [0o700] * 3
    assert make_private_dir(made) == made  # idempotent


def test_ioc_frame_files_are_private_from_their_creation(tmp_path, open_umask, monkeypatch):
    """The simulated IOC's HDF5 file is 0600 when h5py opens it, not chmod-ed afterwards.

    A descriptor another user opened on an older, readable file of the same name reads
    none of the new frames: the file is replaced, not truncated.
    """
    import h5py

    from ssb_beamline.sim_devices.ioc.hdf_file import FrameFile

    path = tmp_path / "scan_000.h5"
    path.write_bytes(b"old")
    path.chmod(0o644)
    modes_at_open = []
    real_file = h5py.File

    def spy(name, *args, **kwargs):
        modes_at_open.append(mode(Path(name)))
        return real_file(name, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", spy)
    with path.open("rb") as other_reader:
        frames = FrameFile(path, (8, 8), [])
        frames.append(np.ones((8, 8), np.uint16), {})
        frames.close()
        assert other_reader.read() == b"old"
    assert modes_at_open == [0o600]
    assert mode(path) == 0o600
    with real_file(path, "r") as f:
        assert f["/entry/data/data"].shape == (1, 8, 8)


def test_the_ioc_log_is_private(tmp_path, open_umask):
    from ssb_beamline.sim_devices.ioc import running_sim_ioc

    with running_sim_ioc(data_dir=tmp_path, args=["--size", "16"]) as ioc:
        assert mode(ioc.log_path) == 0o600


def _folder_of_another_user(tmp_path: Path) -> Path:
    """A folder another user owns: made and given away as root, else the root folder."""
    if os.geteuid() != 0:
        return Path("/")
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)  # nobody
    return folder


def test_an_existing_folder_others_own_or_may_write_is_refused(tmp_path, open_umask):
    """A folder another user made in advance (0777, in the shared /tmp) is not used."""
    theirs = _folder_of_another_user(tmp_path)
    with pytest.raises(UnsafeFolderError, match=r"owned by another user \(uid \d+; you are uid"):
        make_private_dir(theirs)
    for folder_mode, who in ((0o777, "others"), (0o770, "its group")):
        folder = tmp_path / f"open-{folder_mode:o}"
        folder.mkdir()
        folder.chmod(folder_mode)
        with pytest.raises(UnsafeFolderError) as refused:
            make_private_dir(folder)
        message = str(refused.value)
        assert message.startswith(f"{folder} can be written by {who} (mode {folder_mode:o})")
        assert f"chmod 700 {folder}), remove it, or choose another folder" in message
        # its parents are not the package's: a new folder in it is made, private
        assert mode(make_private_dir(folder / "new")) == 0o700
    (tmp_path / "file").write_text("")
    with pytest.raises(UnsafeFolderError, match="is a file, not a folder"):
        make_private_dir(tmp_path / "file")
    assert mode(make_private_dir(tmp_path)) == 0o700  # the user's own private folder


def test_a_data_directory_open_to_others_is_refused_in_one_line(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)
    args = ["demo", "--data-dir", str(data), "--out", str(tmp_path / "out"), "--size", "64"]
    assert main(args) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert f"Cannot use {data} as the data directory: {data} can be written by others" in out
    assert "Traceback" not in out
    assert list(data.iterdir()) == []  # nothing was made in it


def test_the_packaged_simulated_beamline_writes_to_a_folder_of_each_user():
    from ssb_beamline.devices.beamline_file import default_beamline_file, load_beamline_file

    files = load_beamline_file(default_beamline_file()).config.detector_files
    assert files.ioc_directory == f"/tmp/ssb-sim-txm-{os.getuid()}"
    assert files.local_directory == Path(files.ioc_directory)
