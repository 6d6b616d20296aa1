"""A node is created where a lost creation left its storage; an existing node keeps its data."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from tiled.client import from_uri
from zarr.errors import ContainsArrayError
from zarr.storage import LocalStore

from ssb_beamline.storage import EmbeddedTiledServer
from ssb_beamline.storage.leftover_arrays import replacing_leftovers


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


def test_the_wrapper_retries_once_with_overwrite_and_passes_other_errors_on():
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
