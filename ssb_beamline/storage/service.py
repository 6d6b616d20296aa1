"""The embedded tiled server kept alive between commands: a user-level background service.

Starting tiled costs 10-40 s of CPU on a loaded 2-core machine; ``ssb-beamline runs``
paid it on every call. The first command that reads the data directory now starts
the project's server (:func:`~.server.build_app`, same configuration as ``serve``)
as a detached background process of the user; later commands find it through
``<data dir>/.server.json`` (process id, port; mode 0600, no key in it) and answer
at once. ``ssb-beamline serve --stop`` stops it; it stops by itself after
``idle_timeout_s`` without a request (default one hour), and it removes its
state file on exit.

It holds the data directory's server lock (:data:`~.server.SERVER_LOCK`) as the
embedded server does, so only one process serves a data directory; sessions
(``demo``, Python) that open the store while it runs connect to it instead of
starting their own (:func:`running_service`, used by
:func:`~.connect.open_store`). ``$SSB_BACKGROUND_SERVER=0`` turns the automatic
start off (each command then starts and stops its own server, as before).

Neither uvicorn nor tiled has a "daemon with a pid file" mode; the standard
library's ``subprocess`` (``start_new_session``) and ``fcntl`` locks do the rest,
hence this module.

Examples
--------
>>> import tempfile
>>> running_service(tempfile.mkdtemp()) is None  # nothing started there
True
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ssb_beamline.private_files import PRIVATE_UMASK, open_private

__all__ = [
    "BACKGROUND_ENV",
    "STATE_FILE",
    "RunningService",
    "background_enabled",
    "ensure_service",
    "running_service",
    "stop_service",
]

logger = logging.getLogger(__name__)

#: State of the background server, in the data directory.
STATE_FILE = ".server.json"
#: ``0`` / ``no`` / ``off`` turns the automatic background server off.
BACKGROUND_ENV = "SSB_BACKGROUND_SERVER"
#: The service stops after this long without a request (s).
DEFAULT_IDLE_TIMEOUT_S = 3600.0
_START_TIMEOUT_S = 180.0
_MODULE = "ssb_beamline.storage.service"


@dataclass(frozen=True)
class RunningService:
    """A background server found running for a data directory.

    Attributes
    ----------
    pid : int
        Its process id (checked to run this module: a reused pid is not taken).
    port : int
        Its loopback TCP port (``url`` is ``http://127.0.0.1:<port>/api/v1``).
    data_dir : Path
        The data directory it serves (absolute).
    """

    pid: int
    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    @property
    def detector_dir(self) -> Path:
        return self.data_dir / "detector"


def background_enabled() -> bool:
    """Whether commands start the background server (``$SSB_BACKGROUND_SERVER``)."""
    return os.environ.get(BACKGROUND_ENV, "1").strip().lower() not in ("0", "no", "off", "false")


def _root(data_dir: str | Path) -> Path:
    return Path(data_dir).expanduser().resolve()


def _is_our_process(pid: int) -> bool:
    """Whether ``pid`` is alive and runs this module (a reused pid is not ours)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)  # no /proc (macOS): alive is the best we can tell
        except OSError:
            return False
        return True
    return _MODULE.encode() in cmdline


def _healthy(port: int, timeout_s: float = 2.0) -> bool:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def running_service(data_dir: str | Path) -> RunningService | None:
    """The background server of ``data_dir`` if it runs and answers, else None.

    Parameters
    ----------
    data_dir : path
        The data directory; a missing or damaged ``.server.json``, a dead process
        or one not answering ``/healthz`` within 2 s all give None (never raise).
    """
    root = _root(data_dir)
    try:
        state = json.loads((root / STATE_FILE).read_text())
        found = RunningService(int(state["pid"]), int(state["port"]), root)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _is_our_process(found.pid) or not _healthy(found.port):
        return None
    return found


def ensure_service(
    data_dir: str | Path, *, idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
) -> RunningService:
    """The background server of ``data_dir``, started (and waited for) if not running.

    Parameters
    ----------
    data_dir : path
        The data directory (created, 0700, if missing).
    idle_timeout_s : float, optional
        A newly started server stops after this many seconds without a request
        (default 3600 s); checked once a second, so 0 or less stops it about 1 s
        after its last request. A server already running keeps its own timeout.

    Raises
    ------
    ServerStartError
        A ``RuntimeError`` (and ``ValueError``): it stopped, or did not answer within
        180 s; the message gives the cause its log (``<data dir>/server.log``) names.
    """
    from .dir_lock import data_dir_lock
    from .server_config import DataLayout
    from .start_failure import log_size, server_start_error

    root = _root(data_dir)
    if (found := running_service(root)) is not None:
        return found
    with data_dir_lock(root):  # two commands at once start one server
        if (found := running_service(root)) is not None:
            return found
        layout = DataLayout(root).create()
        since = log_size(layout.root / "server.log")
        log = open_private(layout.root / "server.log", "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", _MODULE, str(root), "--idle-timeout", str(idle_timeout_s)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # outlives this command; Ctrl-C here does not stop it
        )
        log.close()
        logger.info("starting the background tiled server for %s (process %d)", root, process.pid)
        started = time.monotonic()
        deadline = started + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if (found := running_service(root)) is not None:
                return found
            if process.poll() is not None:
                break
            time.sleep(0.1)
    exited = process.poll() is not None
    if not exited:
        process.terminate()
    raise server_start_error(
        "background tiled server", root, root / "server.log", since, exited=exited,
        waited_s=time.monotonic() - started,
        fix=f"Set {BACKGROUND_ENV}=0 to use a server per command, or run `ssb-beamline serve`.",
    )  # fmt: skip


def stop_service(data_dir: str | Path, *, timeout_s: float = 15.0) -> int | None:
    """Stop the background server of ``data_dir``; its process id, or None if none ran.

    Parameters
    ----------
    data_dir : path
        The data directory whose server is stopped (others are left alone).
    timeout_s : float, optional
        Seconds to wait after SIGTERM before SIGKILL (default 15 s; a killed server
        leaves its state file, removed here).
    """
    found = running_service(data_dir)
    if found is None:
        return None
    os.kill(found.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _is_our_process(found.pid):
        time.sleep(0.05)
    if _is_our_process(found.pid):
        os.kill(found.pid, signal.SIGKILL)
    try:  # a killed server leaves its state file
        if json.loads((found.data_dir / STATE_FILE).read_text()).get("pid") == found.pid:
            (found.data_dir / STATE_FILE).unlink()
    except (OSError, ValueError):
        pass
    return found.pid


class _IdleWatch:
    """ASGI middleware noting the time of the last request."""

    def __init__(self, app) -> None:
        self.app = app
        self.last = time.monotonic()

    async def __call__(self, scope, receive, send) -> None:
        self.last = time.monotonic()
        await self.app(scope, receive, send)


def _quiet_server_class():
    import contextlib

    import uvicorn

    class QuietServer(uvicorn.Server):
        """uvicorn re-raises SIGTERM after its shutdown (killing the process before our
        clean-up); here a plain handler asks it to exit, and the state file is removed."""

        @contextlib.contextmanager
        def capture_signals(self):
            yield

    return QuietServer


def _serve(root: Path, idle_timeout_s: float) -> None:
    """Serve ``root`` on a free loopback port until SIGTERM or idle; the state file meanwhile."""
    import asyncio

    import uvicorn

    from .dir_lock import hold_lock
    from .server import SERVER_LOCK, _redact_keys, _waiting, build_app
    from .server_config import DataLayout, load_or_create_api_key

    _QuietServer = _quiet_server_class()
    os.umask(PRIVATE_UMASK)
    layout = DataLayout(root).create()
    release = hold_lock(root, SERVER_LOCK, waiting=_waiting(root))
    state = root / STATE_FILE
    try:
        app = _IdleWatch(build_app(layout, load_or_create_api_key(layout)))
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        _redact_keys(layout, load_or_create_api_key(layout))
        server = _QuietServer(config)

        def stop(signum, frame) -> None:
            server.should_exit = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

        async def announce() -> None:
            while not server.started:
                await asyncio.sleep(0.02)
            port = server.servers[0].sockets[0].getsockname()[1]
            with open_private(state.with_suffix(".tmp"), "w") as f:
                json.dump({"pid": os.getpid(), "port": port, "started": time.time()}, f)
            state.with_suffix(".tmp").replace(state)
            logger.warning("background tiled server for %s on 127.0.0.1:%d", root, port)
            while not server.should_exit:
                await asyncio.sleep(1.0)
                if time.monotonic() - app.last > idle_timeout_s:
                    logger.warning("no request for %.0f s: stopping", idle_timeout_s)
                    server.should_exit = True

        async def main() -> None:
            await asyncio.gather(server.serve(), announce())

        asyncio.run(main())
    finally:
        try:
            if json.loads(state.read_text()).get("pid") == os.getpid():
                state.unlink()
        except (OSError, ValueError):
            pass
        release()


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT_S)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    threading.current_thread().name = "ssb-background-server"
    _serve(_root(args.data_dir), args.idle_timeout)


if __name__ == "__main__":
    _main()
