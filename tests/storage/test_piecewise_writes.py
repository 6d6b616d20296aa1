"""Zarr chunk files are written in pieces of at most 1 MiB, atomically (piecewise_writes)."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.storage import LocalStore, _local

from ssb_beamline.storage import piecewise_writes, tiled_patches
from ssb_beamline.storage.piecewise_writes import PIECE_BYTES


@pytest.fixture
def write_sizes(monkeypatch) -> list[int]:
    """Sizes of the ``write()`` calls on chunk files (zarr's own atomic write underneath)."""
    sizes: list[int] = []
    real = _local._atomic_write

    @contextlib.contextmanager
    def recording(path, mode, exclusive=False):
        with real(path, mode, exclusive=exclusive) as file:
            write = file.write
            file.write = lambda data: sizes.append(len(data)) or write(data)  # type: ignore[method-assign]
            yield file

    monkeypatch.setattr(_local, "_atomic_write", recording)
    return sizes


def test_the_server_patches_install_it():
    tiled_patches.install()
    assert piecewise_writes.installed()


def test_a_large_chunk_is_written_in_pieces_and_reads_back_equal(tmp_path, write_sizes):
    piecewise_writes.install()
    values = np.random.default_rng(3).random((3, 512, 512), dtype=np.float32)  # 3 MiB chunk
    array = zarr.create_array(LocalStore(tmp_path), shape=values.shape, chunks=values.shape,
                              dtype=values.dtype, compressors=None)  # fmt: skip
    array[...] = values
    chunk_writes = [n for n in write_sizes if n > 1000]  # zarr.json is written too
    assert chunk_writes == [PIECE_BYTES] * 3
    assert np.array_equal(zarr.open_array(LocalStore(tmp_path))[...], values)
    assert not list(tmp_path.rglob("*.partial"))


def test_a_failure_mid_write_keeps_the_old_chunk_and_leaves_no_partial_file(tmp_path, monkeypatch):
    piecewise_writes.install()
    old = np.zeros((2, 512, 512), np.float32)
    array = zarr.create_array(LocalStore(tmp_path), shape=old.shape, chunks=old.shape,
                              dtype=old.dtype, compressors=None)  # fmt: skip
    array[...] = old
    real = _local._atomic_write

    @contextlib.contextmanager
    def failing_on_second_piece(path, mode, exclusive=False):
        with real(path, mode, exclusive=exclusive) as file:
            write, calls = file.write, []

            def write_or_fail(data):
                calls.append(len(data))
                if len(calls) == 2:
                    raise OSError(28, "No space left on device")
                return write(data)

            file.write = write_or_fail  # type: ignore[method-assign]
            yield file

    monkeypatch.setattr(_local, "_atomic_write", failing_on_second_piece)
    with pytest.raises(OSError, match="No space left"):
        array[...] = np.ones_like(old)
    assert not list(tmp_path.rglob("*.partial"))
    assert np.array_equal(zarr.open_array(LocalStore(tmp_path))[...], old)


def test_an_empty_value_writes_an_empty_file(tmp_path):
    piecewise_writes.install()
    target = tmp_path / "sub" / "chunk"
    empty = default_buffer_prototype().buffer.from_bytes(b"")
    assert _local._put(target, empty) == 0
    assert target.read_bytes() == b""
