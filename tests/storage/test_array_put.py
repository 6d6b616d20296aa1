"""Array data PUT as memoryview slices (array_put) and checked on the server (array_body).

Over HTTP on both catalogs: what a reader finds is what was sent (values, dtype,
shape), and a body that does not fit its array is refused with a 400 naming the
sizes, with nothing written.
"""

from __future__ import annotations

import socket
import uuid
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
from tiled.client import from_uri

from ssb_beamline.storage.array_put import SLICE_BYTES, put_array


@pytest.fixture(scope="module")
def container(catalog_server):
    client = from_uri(catalog_server.url, api_key=catalog_server.api_key)
    return client.create_container(f"put-{uuid.uuid4().hex[:8]}")


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    stack = rng.normal(size=(41, 64, 61)).astype(np.float32)
    assert stack.nbytes > 2 * SLICE_BYTES and stack.nbytes % SLICE_BYTES  # several, one partial
    return {
        "stack": stack,
        "fortran": np.asfortranarray(rng.normal(size=(300, 200))),  # copied to C order first
        "counts": rng.integers(-1000, 1000, size=(512, 300)).astype(np.int16),
        "mask": rng.normal(size=(20, 20)) > 0,  # under SLICE_BYTES: tiled's own write
        "strided": rng.normal(size=(600, 400)).astype(np.float32)[::2, ::3],
    }


def test_arrays_read_back_as_sent(container):
    arrays = _arrays()
    for key, array in arrays.items():
        container.write_array(np.zeros(array.shape, array.dtype), key=key)
        put_array(container[key], array)
    for key, array in arrays.items():
        back = container[key].read()
        assert back.dtype == array.dtype and back.shape == array.shape, key
        np.testing.assert_array_equal(back, array)


def test_a_body_of_the_wrong_size_is_refused_and_nothing_written(container):
    container.write_array(np.zeros((64, 64), np.float32), key="short")
    node = container["short"]
    body = np.ones((64, 64), np.float32).tobytes()[:-100]
    response = node.context.http_client.put(
        node.item["links"]["full"], content=body,
        headers={"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert response.status_code == 400
    assert "16284 bytes" in response.json()["detail"] and "16384" in response.json()["detail"]
    assert not node.read().any()


def test_a_body_cut_short_by_its_client_writes_nothing(catalog_server, container):
    container.write_array(np.zeros((64, 64), np.float32), key="cut")
    node = container["cut"]
    url = urlparse(node.item["links"]["full"])
    body = np.ones((64, 64), np.float32).tobytes()
    head = (
        f"PUT {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Apikey {catalog_server.api_key}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(head + body[: len(body) // 2])
        sock.shutdown(socket.SHUT_WR)  # gone before the rest of its body
        while sock.recv(65536):
            pass
    assert not node.read().any()


def test_the_sliced_body_goes_through_the_nodes_client_with_its_key(container):
    array = np.arange(SLICE_BYTES, dtype=np.float32)
    container.write_array(np.zeros_like(array), key="keyed")
    node = container["keyed"]
    sent: list[httpx.Request] = []
    node.context.http_client.event_hooks["request"].append(sent.append)
    try:
        put_array(node, array)
    finally:
        node.context.http_client.event_hooks["request"].remove(sent.append)
    (request,) = sent
    assert request.headers["content-length"] == str(array.nbytes)
    assert "transfer-encoding" not in request.headers
    np.testing.assert_array_equal(node.read(), array)
