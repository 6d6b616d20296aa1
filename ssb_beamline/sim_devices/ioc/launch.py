"""Start the simulated TXM IOC as a subprocess on loopback, wait for it, stop it.

``with running_sim_ioc() as ioc:`` starts ``python -m ssb_beamline.sim_devices.ioc``
with a unique prefix on its own CA port, waits (bounded) until it answers a CA
search for its PVs, and stops it afterwards (SIGTERM, then SIGKILL).

Channel Access clients find it through ``EPICS_CA_ADDR_LIST``, which libca
(under aioca and ophyd-async) reads once, when its context is created. So a
process reserves a small pool of loopback ports up front
(`configure_ca_client`), points ``EPICS_CA_ADDR_LIST`` at all of them, and
every IOC it starts takes a free port of that pool: several IOCs (a restarted
one, two at once) are then reachable from one client context, and parallel
pytest-xdist workers, each with their own pool, never see each other's PVs
(several servers sharing UDP 5064 on loopback do not all receive unicast
searches, hence one port per IOC).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import caproto as ca

from ssb_beamline.private_files import create_private_file, open_private

from .server import LOOPBACK, PARENT_ENV, server_env, validate_prefix

__all__ = [
    "IOCHandle",
    "IOCStartError",
    "ca_search",
    "configure_ca_client",
    "running_sim_ioc",
    "start_sim_ioc",
    "unique_prefix",
]

logger = logging.getLogger(__name__)

#: Number of CA ports a client process reserves for its IOCs.
POOL_SIZE = 8
_POOL: list[int] = []
_IN_USE: set[int] = set()


class IOCStartError(RuntimeError):
    """The simulated IOC did not start or did not answer in time."""


def unique_prefix(stem: str = "SSBT") -> str:
    """A PV prefix unique to this call, e.g. ``"SSBT3F9A1C:"``."""
    return f"{stem}{uuid.uuid4().hex[:6].upper()}:"


def _free_port() -> int:
    """A port free for both UDP and TCP on loopback."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((LOOPBACK, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((LOOPBACK, port))
                except OSError:
                    continue
            return port
    raise IOCStartError("no free loopback port found for the simulated IOC")


def configure_ca_client(pool_size: int = POOL_SIZE) -> dict[str, str]:
    """Point this process's CA client at a pool of loopback ports; return that env.

    Idempotent. Call it before any Channel Access context exists in the process
    (before the first ophyd-async EPICS signal connects); `running_sim_ioc`
    calls it too.
    """
    if not _POOL:
        _POOL.extend(_free_port() for _ in range(pool_size))
    env = {
        "EPICS_CA_ADDR_LIST": " ".join(f"{LOOPBACK}:{p}" for p in _POOL),
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
    }
    os.environ.update(env)
    return env


def ca_search(pv: str, port: int, timeout: float = 0.5, host: str = LOOPBACK) -> bool:
    """True if a CA server on ``host:port`` answers a UDP search for ``pv`` within ``timeout``."""
    broadcaster = ca.Broadcaster(our_role=ca.CLIENT)
    request = broadcaster.send(
        ca.VersionRequest(0, ca.DEFAULT_PROTOCOL_VERSION),
        ca.SearchRequest(pv, 1, ca.DEFAULT_PROTOCOL_VERSION),
    )
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(request, (host, port))
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                data, addr = sock.recvfrom(65536)
                commands = broadcaster.recv(data, addr)
                if any(isinstance(c, ca.SearchResponse) and c.cid == 1 for c in commands):
                    return True
        except OSError:  # timeout, or ICMP "port unreachable" while the IOC starts
            return False
    return False


@dataclass
class IOCHandle:
    """A running simulated IOC subprocess.

    Attributes
    ----------
    prefix : str
        Its PV prefix.
    port : int
        Its CA server (UDP search) port.
    env : dict
        Client environment reaching it (``EPICS_CA_ADDR_LIST``, ...).
    process : subprocess.Popen
        The IOC process.
    log_path : Path
        Its log (stderr).
    """

    prefix: str
    port: int
    env: dict[str, str]
    process: subprocess.Popen
    log_path: Path
    data_dir: Path | None = None
    args: list[str] = field(default_factory=list)

    def pv(self, suffix: str) -> str:
        """Full PV name of ``suffix``, e.g. ``ioc.pv("Mono:Energy")``."""
        return self.prefix + suffix

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.process.poll() is None

    def log_tail(self, n: int = 20) -> str:
        """The last ``n`` lines of the IOC log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the IOC (a fault for tests: the IOC dies mid-scan)."""
        if self.alive:
            self.process.kill()
        self.process.wait(timeout=10)
        _IN_USE.discard(self.port)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` s; frees the port."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.warning("IOC %s ignored SIGTERM; killing it", self.prefix)
                self.process.kill()
                self.process.wait(timeout=timeout)
        _IN_USE.discard(self.port)


def _ioc_command(prefix: str, port: int, data_dir: Path | None, args: Sequence[str]) -> list[str]:
    cmd = [sys.executable, "-m", "ssb_beamline.sim_devices.ioc", "--prefix", prefix,
           "--port", str(port)]  # fmt: skip
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    return cmd + list(args)


def start_sim_ioc(
    prefix: str | None = None,
    *,
    data_dir: str | Path | None = None,
    port: int | None = None,
    args: Sequence[str] = (),
    timeout: float = 120.0,
) -> IOCHandle:
    """Start the IOC subprocess and wait until it answers; the caller must ``stop()`` it.

    Parameters
    ----------
    prefix : str, optional
        Default `unique_prefix()`.
    data_dir : str or Path, optional
        Directory the HDF5 plugin writes to (``--data-dir``).
    port : int, optional
        CA port; default a free port of this process's client pool.
    args : sequence of str
        Further command-line options (``["--size", "64"]``).
    timeout : float
        Seconds to wait for the first CA answer.
    """
    prefix = validate_prefix(prefix or unique_prefix())
    client_env = configure_ca_client()
    if port is None:
        free = [p for p in _POOL if p not in _IN_USE]
        if not free:
            raise IOCStartError(f"all {len(_POOL)} CA ports of this process are in use; "
                                "stop an IOC before starting another")  # fmt: skip
        port = free[0]
    data = Path(data_dir) if data_dir is not None else None
    log_dir = data if data is not None else Path(tempfile.gettempdir())
    log_path = log_dir / f"ioc-{prefix.rstrip(':')}-{port}.log"
    # the IOC exits when this process dies (see __main__.die_with_parent): no orphans
    env = {**os.environ, **server_env(port), PARENT_ENV: str(os.getpid())}
    create_private_file(log_path)  # names of the user's frame files; maybe in the shared /tmp
    with open_private(log_path, "w") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(_ioc_command(prefix, port, data, args), env=env,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log)  # fmt: skip
    _IN_USE.add(port)
    handle = IOCHandle(prefix, port, dict(client_env), process, log_path, data, list(args))
    deadline = time.monotonic() + timeout
    while not ca_search(prefix + "Ring:Current", port):
        if not handle.alive or time.monotonic() > deadline:
            handle.stop()
            why = "exited" if handle.process.returncode is not None else "did not answer"
            raise IOCStartError(f"simulated IOC {prefix} on port {port} {why} within "
                                f"{timeout:.0f} s; its log:\n{handle.log_tail()}")  # fmt: skip
        time.sleep(0.1)
    logger.info("Simulated IOC %s answering on %s:%d", prefix, LOOPBACK, port)
    return handle


@contextmanager
def running_sim_ioc(
    prefix: str | None = None,
    *,
    data_dir: str | Path | None = None,
    port: int | None = None,
    args: Sequence[str] = (),
    timeout: float = 120.0,
) -> Iterator[IOCHandle]:
    """Context manager around `start_sim_ioc`: the IOC is stopped on exit, whatever happens."""
    handle = start_sim_ioc(prefix, data_dir=data_dir, port=port, args=args, timeout=timeout)
    try:
        yield handle
    finally:
        handle.stop()
