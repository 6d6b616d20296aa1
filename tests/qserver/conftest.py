"""Real services for the queue-server tests: redis-server and start-re-manager on loopback.

Redis comes from Debian's ``redis-server`` (``.ci/run`` installs it). Outside CI a
machine without it skips these tests and says why; with ``CI`` set it fails.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from served import free_port


def stop(process: subprocess.Popen | None, timeout: float = 30.0) -> None:
    """Terminate ``process`` (kill it if it does not exit within ``timeout`` s)."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def venv_tool(name: str) -> str:
    """Path of a console script installed next to this Python."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is not installed here: pip install -e . (bluesky-queueserver)"
    return str(path)


@pytest.fixture(scope="module")
def redis_addr(tmp_path_factory):
    """A private redis-server on a free loopback port, no persistence; stopped after."""
    server = shutil.which("redis-server")
    if server is None:
        message = (
            "redis-server is not installed (Debian: apt-get install redis-server); "
            "the queue-server tests need a real Redis"
        )
        if os.environ.get("CI"):
            pytest.fail(message + " and CI is set, so this is an error, not a skip.")
        pytest.skip(message)
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
         "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
        stdout=(folder / "redis.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start: {(folder / 'redis.log').read_text()}")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        stop(process)


class REManager:
    """``start-re-manager`` as a subprocess on loopback ports; its output goes to ``log``."""

    def __init__(self, redis_addr: str, folder: Path, env: dict[str, str]) -> None:
        from ssb_beamline.profiles.qserver import (
            EXISTING_PLANS_AND_DEVICES,
            USER_GROUP_PERMISSIONS,
        )

        self.control = f"tcp://127.0.0.1:{free_port()}"
        self.info = f"tcp://127.0.0.1:{free_port()}"
        # copies: the manager may rewrite its plans-and-devices file
        existing = folder / EXISTING_PLANS_AND_DEVICES.name
        shutil.copy(EXISTING_PLANS_AND_DEVICES, existing)
        self.args = [
            venv_tool("start-re-manager"),
            "--startup-module", "ssb_beamline.profiles.qserver.startup_sim",
            "--existing-plans-devices", str(existing),
            "--user-group-permissions", str(USER_GROUP_PERMISSIONS),
            "--update-existing-plans-devices", "NEVER",
            "--redis-addr", redis_addr,
            "--redis-name-prefix", f"ssb_test_{uuid.uuid4().hex[:8]}",
            "--zmq-control-addr", self.control,
            "--zmq-info-addr", self.info,
        ]  # fmt: skip
        self.env = {**os.environ, **env}
        self.log = folder / "re-manager.log"
        self.process = subprocess.Popen(
            self.args, env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
            cwd=folder,
        )  # fmt: skip

    def api(self):
        from bluesky_queueserver_api.zmq import REManagerAPI

        return REManagerAPI(zmq_control_addr=self.control, zmq_info_addr=self.info)

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def stop(self) -> None:
        stop(self.process)


@pytest.fixture(scope="module")
def service_tools():
    """The helpers above, for test modules (``--import-mode=importlib`` cannot import them)."""
    return {"REManager": REManager, "free_port": free_port, "stop": stop, "venv_tool": venv_tool}
