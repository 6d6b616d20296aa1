"""Helpers for tests that serve tiled in a subprocess (`ssb-beamline serve`, `tiled serve`),
and the 0MQ proxy.

One free loopback port and one wait for ``/healthz``, shared by every test that starts
a server process (they were written out in each test file).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_healthy(
    process: subprocess.Popen, port: int, describe: Callable[[], str], timeout_s: float,
    what: str = "the tiled server",
) -> None:  # fmt: skip
    """Return once ``http://127.0.0.1:PORT/healthz`` answers; fail if ``process`` exits
    or ``timeout_s`` passes first, with ``describe()`` (e.g. the server's log)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited ({process.returncode}):\n{describe()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2, trust_env=False).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{what} did not answer in {timeout_s} s:\n{describe()}")


@contextlib.contextmanager
def zmq_proxy() -> Iterator[tuple[int, int]]:
    """The stock ``bluesky-0MQ-proxy`` on two free loopback ports: ``(in, out)``."""
    pin, pout = free_port(), free_port()
    proxy = subprocess.Popen(
        [str(Path(sys.executable).parent / "bluesky-0MQ-proxy"),
         "--in-address", f"tcp://127.0.0.1:{pin}", "--out-address", f"tcp://127.0.0.1:{pout}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield pin, pout
    finally:
        proxy.terminate()
        proxy.wait(10)
