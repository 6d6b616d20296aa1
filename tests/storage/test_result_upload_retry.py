"""A result array whose write timed out is written again, never twice made (unit test).

Under load the client can give up on a request (30 s) that the server still
completes: the array exists, its data may not. ``write_array_patiently`` then
writes the data into the existing array (idempotent PUTs) instead of failing the
whole results version.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from ssb_beamline.storage import result_upload
from ssb_beamline.storage.result_upload import TIMEOUT_ATTEMPTS, write_array_patiently


class _Array:
    def __init__(self, shape) -> None:
        self.data = np.full(shape, np.nan)
        self.shape, self.dtype = self.data.shape, self.data.dtype

    def write(self, data) -> None:
        self.data[...] = data

    def write_block(self, data, block) -> None:
        rows = slice(block[0] * 2, block[0] * 2 + data.shape[0])
        self.data[rows] = data


class _Node:
    """A results version whose server makes each array, then the client times out."""

    def __init__(self, timeouts: int) -> None:
        self.arrays: dict[str, _Array] = {}
        self.timeouts, self.creates = timeouts, 0

    def __contains__(self, key: str) -> bool:
        return key in self.arrays

    def __getitem__(self, key: str) -> _Array:
        return self.arrays[key]

    def write_array(self, data, key: str, **kwargs) -> None:
        if key in self.arrays:
            raise httpx.HTTPStatusError("409 Conflict", request=None, response=httpx.Response(409))
        self.creates += 1
        self.arrays[key] = _Array(data.shape)  # the server made the array ...
        if self.timeouts:
            self.timeouts -= 1
            raise httpx.ReadTimeout("timed out")  # ... the client had given up
        self.arrays[key].write(np.asarray(data))


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch):
    monkeypatch.setattr(result_upload.time, "sleep", lambda s: None)


def test_an_array_made_by_a_timed_out_request_gets_its_data():
    node = _Node(timeouts=1)
    write_array_patiently(node, "soc", np.arange(6.0).reshape(2, 3))
    assert node.creates == 1
    np.testing.assert_array_equal(node["soc"].data, np.arange(6.0).reshape(2, 3))


def test_a_chunked_array_is_written_block_by_block():
    import dask.array

    volume = np.arange(24.0).reshape(6, 4)
    node = _Node(timeouts=1)
    write_array_patiently(node, "volume", dask.array.from_array(volume, chunks=(2, 4)))
    np.testing.assert_array_equal(node["volume"].data, volume)


def test_a_server_that_never_answers_in_time_fails_the_write():
    class Silent(_Node):
        def write_array(self, data, key: str, **kwargs) -> None:
            self.creates += 1
            raise httpx.ReadTimeout("timed out")  # nothing made, every time

    node = Silent(timeouts=0)
    with pytest.raises(httpx.ReadTimeout):
        write_array_patiently(node, "soc", np.zeros(3))
    assert node.creates == TIMEOUT_ATTEMPTS


class _RetriedInsideTiled(_Node):
    """tiled's client retried a create that timed out, and the retry found the array: 409."""

    def write_array(self, data, key: str, **kwargs) -> None:
        self.creates += 1
        self.arrays[key] = self.arrays.get(key) or _Array(data.shape)
        raise httpx.HTTPStatusError("409 Conflict", request=None, response=httpx.Response(409))


def test_a_409_from_a_retry_inside_tiled_writes_the_data_into_the_array_it_made():
    node = _RetriedInsideTiled(timeouts=0)
    write_array_patiently(node, "soc", np.arange(6.0).reshape(2, 3))
    assert node.creates == 1
    np.testing.assert_array_equal(node["soc"].data, np.arange(6.0).reshape(2, 3))


def test_a_409_for_an_array_of_another_shape_is_raised():
    node = _RetriedInsideTiled(timeouts=0)
    node.arrays["soc"] = _Array((5,))  # someone else's array under that key
    with pytest.raises(httpx.HTTPStatusError, match="409"):
        write_array_patiently(node, "soc", np.zeros((2, 3)))
    assert np.isnan(node["soc"].data).all()  # not overwritten
