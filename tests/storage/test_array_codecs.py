"""Arrays the server creates are zstd level 1 with every chunk written; old arrays still read.

Through a real server on either catalog: the codecs recorded in ``zarr.json``, the
chunk of fill values written, the values (NaN, -0.0, fill values) read back exactly
over HTTP and by the direct reader of result files; and an array as the server
wrote it before (zarr's defaults: zstd level 3, no file for a chunk of fill values)
read both ways too.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from urllib.parse import urlparse

import dask.array
import numpy as np
import pytest
from tiled.client import from_uri

from ssb_beamline.storage.array_codecs import ZSTD_LEVEL
from ssb_beamline.storage.result_files_data import open_zarr, read_zarr

CHUNKS = (2, 5, 6)


def _stack() -> np.ndarray:
    """Noisy float32 values in 3 chunks along axis 0, the middle one all fill values (0.0)."""
    values = np.random.default_rng(7).normal(1.0, 0.1, (6, 5, 6)).astype(np.float32)
    values[2:4] = 0.0  # chunk (1, 0, 0) equals the fill value
    values[0, 0, :3] = [np.nan, -0.0, np.inf]
    return values


def _directory(node) -> Path:
    (asset,) = node.data_sources()[0].assets
    return Path(urlparse(asset.data_uri).path)


def _codecs(node) -> list[dict]:
    return json.loads((_directory(node) / "zarr.json").read_text())["codecs"]


def _assert_reads(node, values: np.ndarray) -> None:
    """The array reads as ``values``, bit for bit, over HTTP and from its files."""
    served = node.read()
    direct = read_zarr(open_zarr(_directory(node), node.item["attributes"]["structure"]))
    for found in (served, direct):
        assert (found.dtype, found.shape) == (values.dtype, values.shape)
        assert found.tobytes() == values.tobytes()


@pytest.fixture(scope="module")
def client(catalog_server):
    return from_uri(catalog_server.url, api_key=catalog_server.api_key)


def test_new_arrays_are_zstd_level_1_with_every_chunk_written(client):
    node = client.create_container(f"codecs-{uuid.uuid4().hex[:8]}")
    stack, mask = _stack(), np.arange(30).reshape(5, 6) % 3 == 0
    node.write_array(dask.array.from_array(stack, chunks=CHUNKS), key="stack")
    node.write_array(mask, key="mask")
    node.write_array(np.zeros((3, 4), np.int32), key="zeros")  # one chunk, all fill values
    for key in ("stack", "mask", "zeros"):
        bytes_codec, zstd = _codecs(node[key])
        assert (bytes_codec["name"], zstd["name"]) == ("bytes", "zstd"), key
        assert zstd["configuration"]["level"] == ZSTD_LEVEL == 1, key
    assert (_directory(node["stack"]) / "c" / "1" / "0" / "0").is_file()  # fill values written
    assert (_directory(node["zeros"]) / "c" / "0" / "0").is_file()
    _assert_reads(node["stack"], stack)
    _assert_reads(node["mask"], mask)
    _assert_reads(node["zeros"], np.zeros((3, 4), np.int32))


def test_arrays_written_with_zarrs_defaults_still_read(client):
    zarr = pytest.importorskip("zarr")
    node = client.create_container(f"old-codecs-{uuid.uuid4().hex[:8]}")
    stack = _stack()
    node.write_array(dask.array.from_array(stack, chunks=CHUNKS), key="stack")
    directory = _directory(node["stack"])
    shape = json.loads((directory / "zarr.json").read_text())["shape"]
    shutil.rmtree(directory)  # written again as tiled 0.2.20 with zarr 3.1's defaults did
    old = zarr.create_array(
        directory, shape=shape, chunks=CHUNKS, dtype="f4", config={"write_empty_chunks": False}
    )
    old[...] = stack
    assert [c["name"] for c in _codecs(node["stack"])] == ["bytes", "zstd"]
    assert _codecs(node["stack"])[1]["configuration"]["level"] == 0  # libzstd's default, 3
    assert not (directory / "c" / "1" / "0" / "0").exists()  # no file for the fill values
    _assert_reads(node["stack"], stack)
