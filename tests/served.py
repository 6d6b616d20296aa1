"""Helpers for tests that serve tiled in a subprocess (`ssb-beamline serve`, `tiled serve`).

One free loopback port and one wait for ``/healthz``, shared by every test that starts
a server process (they were written out in each test file).
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

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
