"""A request that does not end is reported in the server's log, with every thread's stack."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from ssb_beamline.storage.server import EmbeddedTiledServer
from ssb_beamline.storage.stall_watch import StallWatch


def test_a_request_that_never_ends_is_logged_with_the_stacks(tmp_path, monkeypatch):
    # read by the server's child process; above what an ordinary request takes on a
    # loaded machine (at load 9 the client's first GET took over 1 s, was reported
    # first, and the next report would come only after 60 s)
    monkeypatch.setenv("SSB_STALL_THRESHOLD_S", "4")
    with EmbeddedTiledServer(tmp_path) as server:
        log = server.layout.root / "server.log"
        server.client().write_array(np.zeros(125), key="x")
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            # an authorised PUT whose body never comes in full: the request stays open
            sock.sendall(
                b"PUT /api/v1/array/full/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                + f"Authorization: Apikey {server.api_key}\r\n".encode()
                + b"Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n"
                + b"\0" * 10
            )
            deadline = time.monotonic() + 60
            while "in flight for over" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
        text = log.read_text()
    assert "1 request(s) in flight for over 4 s" in text, text[-2000:]
    assert "PUT /api/v1/array/full/x" in text
    assert "Thread 0x" in text and "(most recent call first)" in text  # faulthandler's dump


def test_in_flight_lists_the_oldest_first_and_check_reports_once():
    import asyncio

    started = asyncio.Event()
    release = asyncio.Event()

    async def slow_app(scope, receive, send):
        started.set()
        await release.wait()

    lines = []

    class Stream:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

        def fileno(self):  # faulthandler needs a descriptor: none here
            raise OSError("no descriptor")

    watch = StallWatch(slow_app, threshold_s=0.0, stream=Stream())
    watch.close()  # checked by hand below

    async def main():
        task = asyncio.create_task(
            watch({"type": "http", "method": "GET", "path": "/a"}, None, None)
        )
        await started.wait()
        await asyncio.sleep(0.01)
        (request,) = watch.in_flight()
        assert request[:2] == ("GET", "/a") and request[2] > 0
        assert watch.check() is True
        assert watch.check() is False  # once per episode
        release.set()
        await task
        assert watch.in_flight() == []

    asyncio.run(main())


@pytest.mark.parametrize("scope_type", ["lifespan", "websocket"])
def test_other_scopes_pass_through_untracked(scope_type):
    import asyncio

    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    watch = StallWatch(app)
    watch.close()
    asyncio.run(watch({"type": scope_type}, None, None))
    assert seen == [scope_type] and watch.in_flight() == []
