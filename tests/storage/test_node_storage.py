"""Where a new node's array is stored: over a lost creation's leftover, never outside its place."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from tiled.client import from_uri
from zarr.errors import ContainsArrayError
from zarr.storage import LocalStore

from ssb_beamline.storage import EmbeddedTiledServer, leftover_arrays
from ssb_beamline.storage.leftover_arrays import holds_one_array, replacing_leftovers


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = EmbeddedTiledServer(tmp_path_factory.mktemp("leftovers"))
    yield server, from_uri(server.url, api_key=server.api_key)
    server.close()


def test_a_node_is_created_over_the_storage_a_lost_creation_left(served):
    server, client = served
    container = client.create_container("lost")
    # what a creation whose catalog commit was lost leaves: the array, no node
    leftover = zarr.create_array(
        LocalStore(server.layout.files / "lost" / "a"), shape=(2, 2), dtype="f8"
    )
    leftover[:] = 7.0
    assert "a" not in container
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    container.write_array(data, key="a")  # a 500 (ContainsArrayError) before
    stored = client["lost"]["a"].read()
    np.testing.assert_array_equal(stored, data)
    assert stored.dtype == np.float32


def test_a_node_that_exists_is_refused_and_keeps_its_data(served):
    _, client = served
    container = client.create_container("kept")
    container.write_array(np.ones(3), key="a")
    with pytest.raises(Exception, match="409"):
        container.write_array(np.zeros(3), key="a")
    np.testing.assert_array_equal(client["kept"]["a"].read(), np.ones(3))


def test_keys_leading_out_of_the_node_s_directory_are_refused(served):
    server, client = served
    container = client.create_container("dots")
    container.write_array(np.ones(3), key="keep")
    for key in ("..", "."):
        with pytest.raises(Exception, match="cannot be called") as refused:
            container.write_array(np.zeros(2), key=key)
        assert "400" in str(refused.value)
    assert list(client["dots"]) == ["keep"]
    assert not (server.layout.files / "zarr.json").exists()
    assert not (server.layout.files / "dots" / "zarr.json").exists()
    np.testing.assert_array_equal(client["dots"]["keep"].read(), np.ones(3))


def test_storage_holding_other_nodes_arrays_is_never_replaced(tmp_path):
    parent = tmp_path / "files"
    zarr.create_array(LocalStore(parent / "x" / "keep"), shape=(3,), dtype="f8")[:] = 1.0
    zarr.create_array(LocalStore(parent), shape=(2,), dtype="f8")  # what a key ".." made
    create = replacing_leftovers(zarr.create_array)
    with pytest.raises(ContainsArrayError):  # not replaced: other arrays under it
        create(LocalStore(parent), shape=(2,), dtype="f8")
    np.testing.assert_array_equal(zarr.open_array(LocalStore(parent / "x" / "keep"))[:], 1.0)


def test_the_wrapper_retries_once_with_overwrite_and_passes_other_errors_on(monkeypatch):
    monkeypatch.setattr(leftover_arrays, "holds_one_array", lambda store: store == "store")
    calls: list[dict] = []

    def create_array(store, *args, **kwargs):
        calls.append(kwargs)
        if store == "broken":
            raise OSError("disk full")
        if not kwargs.get("overwrite"):
            raise ContainsArrayError("an array exists")
        return "created"

    create = replacing_leftovers(create_array)
    assert create("store", shape=(2,)) == "created"
    assert calls == [{"shape": (2,)}, {"shape": (2,), "overwrite": True}]

    def always_there(store, *args, **kwargs):
        raise ContainsArrayError("an array exists")

    with pytest.raises(ContainsArrayError):  # told to overwrite already: not retried
        replacing_leftovers(always_there)("store", overwrite=True)
    with pytest.raises(OSError, match="disk full"):
        create("broken")
    with pytest.raises(ContainsArrayError):  # more than one array's files there: kept
        replacing_leftovers(always_there)("elsewhere")


def test_only_a_lone_array_s_files_count_as_one_array(tmp_path):
    lone = LocalStore(tmp_path / "lone")
    zarr.create_array(lone, shape=(4,), chunks=(2,), dtype="i4")[:] = 1
    assert holds_one_array(lone)
    zarr.create_array(LocalStore(tmp_path / "lone" / "inner"), shape=(1,), dtype="i4")
    assert not holds_one_array(lone)  # another array under it
    assert not holds_one_array(LocalStore(tmp_path))
