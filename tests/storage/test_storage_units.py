"""Unit tests of the storage pieces that need no server: block fetches, parallel
writes, the JSON and URI helpers every layer shares, and the import graph."""

from __future__ import annotations

import ast
import datetime as dt
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import ssb_beamline
from ssb_beamline._jsonable import jsonable
from ssb_beamline._uris import file_uri_path
from ssb_beamline.storage import replay_fill, result_upload
from ssb_beamline.storage.replay_fill import FrameFetcher
from ssb_beamline.storage.run_checks import ReplayError, check_speed

STORAGE = Path(ssb_beamline.__file__).parent / "storage"


class _Frames:
    """A tiled array client's stand-in: ``(N, H, W)`` frames, some unreadable."""

    def __init__(self, n: int, shape=(4, 4), bad: int | None = None) -> None:
        self.data = np.arange(n * shape[0] * shape[1], dtype=np.uint16).reshape(n, *shape)
        self.shape, self.dtype, self.bad = self.data.shape, self.data.dtype, bad
        self.requests: list[tuple[int, int]] = []
        self.lock = threading.Lock()

    def __getitem__(self, index):
        start = index.start if isinstance(index, slice) else index
        stop = index.stop if isinstance(index, slice) else index + 1
        with self.lock:
            self.requests.append((start, stop))
        if self.bad is not None and start <= self.bad < stop:
            raise OSError("500: Internal server error")
        return self.data[index]


def _fetch(node, start, stop):
    return node[start:stop]


@pytest.fixture
def pool():
    with ThreadPoolExecutor(2) as pool:
        yield pool


def test_frames_come_in_blocks_requested_ahead(pool, monkeypatch):
    monkeypatch.setattr(replay_fill, "FILL_BLOCK_BYTES", 3 * 4 * 4 * 2)  # 3 frames a block
    node = _Frames(10)
    fetcher = FrameFetcher(node, "run r, 'det'", (4, 4), pool, fetch=_fetch)
    frames = [fetcher.frame(i) for i in range(10)]
    np.testing.assert_array_equal(np.stack(frames), node.data)
    assert sorted(node.requests) == [(0, 3), (3, 6), (6, 9), (9, 10)]  # each block once


def test_a_frame_tiled_cannot_serve_is_named(pool, monkeypatch):
    monkeypatch.setattr(replay_fill, "FILL_BLOCK_BYTES", 4 * 4 * 4 * 2)
    fetcher = FrameFetcher(_Frames(8, bad=6), "run r, 'det'", (4, 4), pool, fetch=_fetch)
    for i in range(4):
        fetcher.frame(i)
    with pytest.raises(ReplayError, match=r"tiled could not serve frame 6 of run r, 'det'"):
        fetcher.frame(4)


def test_frames_past_the_stored_ones_and_wrong_shapes_are_refused(pool):
    fetcher = FrameFetcher(_Frames(2), "run r, 'det'", (5, 5), pool, fetch=_fetch)
    with pytest.raises(ReplayError, match="has 2 frames in tiled; its events ask for frame 2"):
        fetcher.frame(2)
    with pytest.raises(ReplayError, match=r"Frame 0 of run r, 'det' is \(4, 4\)"):
        fetcher.frame(0)


def test_every_item_of_a_version_is_written_and_a_failure_is_raised_after_all():
    written: list[str] = []

    class Node:
        def write_array(self, data, *, key, **kwargs):
            if key == "bad":
                raise RuntimeError("tiled refused bad")
            written.append(key)

        def write_table(self, table, *, key, **kwargs):
            written.append(key)

    arrays = {"small": np.zeros(2), "big": np.zeros((50, 50)), "bad": np.zeros(3)}
    coords = {"x": (np.arange(50.0), {"units": "um"})}
    with pytest.raises(RuntimeError, match="tiled refused bad"):
        result_upload.write_version_items(
            Node(),
            arrays,
            units={},
            dims={k: ("a",) * np.ndim(v) for k, v in arrays.items()},
            coords=coords,
            tables={"t": object()},
        )
    assert sorted(written) == ["big", "small", "t", "x"]  # the others were all written


def test_a_run_container_is_created_first_and_looked_up_when_it_exists():
    calls: list[str] = []

    class Results(dict):
        def create_container(self, key, metadata):
            calls.append(f"create {key}")
            if key in self:
                raise RuntimeError("409: Conflict")
            self[key] = metadata
            return metadata

    results = Results()
    assert result_upload.child_container(results, "r", {"run_uid": "r"}) == ({"run_uid": "r"}, True)
    assert result_upload.child_container(results, "r", {"run_uid": "r"})[1] is False
    assert calls == ["create r", "create r"]


def test_json_values_keep_or_drop_non_finite_numbers():
    value = {1: np.arange(2), "f": np.array([np.nan, 1.5], np.float32), "t": (np.int8(3),)}
    value["when"] = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    assert jsonable(value) == {
        "1": [0, 1],
        "f": [None, 1.5],
        "t": [3],
        "when": "2026-01-02T00:00:00+00:00",
    }
    kept = jsonable(value, finite=False)
    assert np.isnan(kept["f"][0]) and json.loads(json.dumps(kept))["t"] == [3]


def test_file_uris_give_paths_and_other_schemes_none():
    assert file_uri_path("file://localhost/a%20b/c.h5") == Path("/a b/c.h5")
    assert file_uri_path("/plain/path.h5") == Path("/plain/path.h5")
    assert file_uri_path("s3://bucket/c.h5") is None


def test_a_replay_speed_must_be_positive():
    assert check_speed(None) is None
    with pytest.raises(ReplayError, match="speed must be > 0"):
        check_speed(0)


def _imports(module: Path) -> set[str]:
    """The storage modules ``module`` imports, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_results_result_journal_and_sync_import_one_way():
    graph = {path.stem: _imports(path) for path in STORAGE.glob("*.py")}
    assert not graph["result_journal"] & {"results", "sync", "result_upload", "result_layout"}
    assert "sync" not in graph["results"] and "sync" not in graph["result_upload"]
    assert "results" not in graph["result_layout"] | graph["result_upload"]


def test_every_storage_module_is_small_and_declares_its_api():
    owned_by_server_lane = {"server", "server_config"}
    for path in STORAGE.glob("*.py"):
        text = path.read_text()
        assert len(text.splitlines()) <= 400, path
        if path.stem not in owned_by_server_lane and path.stem != "__init__":
            assert "__all__" in text, path
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno - node.lineno < 80, f"{path}: {node.name}"
