"""A real tiled server over HTTP, run in-process on a background thread.

This is the project's default store: the same server configuration as
``ssb-beamline serve`` (see :mod:`.server_config`), persistent in a data directory,
listening on the loopback interface only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn

from ssb_beamline._memory import keep_freed_memory
from ssb_beamline.private_files import PRIVATE_UMASK, open_private

from .access import ReadOnlyKeys, load_readonly_keys
from .array_batch import add_array_batch  # several arrays' data in one request
from .catalog_db import (
    CATALOG_URI_ENV,
    CatalogDatabaseError,
    catalog_password,
    check_sqlite_array_storage,
    is_postgresql,
    prepare_catalog,
    redact_uri,
)
from .dir_lock import data_dir_lock, hold_lock
from .log_redaction import redact_server_logs, register_secret
from .server_body import WholeBody
from .server_config import DataLayout, load_or_create_api_key, server_config
from .stall_watch import StallWatch, dump_stacks_on_signal
from .start_failure import START_FIX, log_size, server_start_error, thread_start_error
from .tiled_patches import install as install_tiled_patches
from .write_funnel import WriteFunnel

logger = logging.getLogger(__name__)

#: Importing tiled alone can take a minute on a loaded machine (seen at load 10).
_STARTUP_TIMEOUT_S = 180.0
_READY = "SSB-TILED-READY"
#: Held by the process whose embedded server uses the data directory.
SERVER_LOCK = ".server.lock"
_CHILD_KEY_ENV = "SSB_TILED_CHILD_API_KEY"
_CHILD_CATALOG_ENV = "SSB_TILED_CHILD_CATALOG"


def checked_layout(data_dir: str | Path, catalog: str | None = None) -> DataLayout:
    """The data directory's layout, its catalog checked (PostgreSQL: created if empty).

    Nothing is created in the data directory: a refused catalog leaves no trace.

    Parameters
    ----------
    data_dir : path
        The data directory (``~`` expanded, made absolute).
    catalog : str, optional
        PostgreSQL URI of the catalog; None or "" keeps it in ``catalog.db`` there.

    Raises
    ------
    CatalogDatabaseError
        With a one-line message saying what to fix (see :mod:`.catalog_db`).
    """
    layout = DataLayout(Path(data_dir).expanduser().resolve(), catalog_uri=catalog or None)
    if not catalog:
        check_sqlite_array_storage(layout.catalog, layout.files)
        return layout
    if not is_postgresql(catalog):
        raise CatalogDatabaseError(
            f"--catalog {redact_uri(catalog)} is not a PostgreSQL URI: give one like "
            "postgresql://USER@HOST:5432/DB (leave it out for SQLite in the data directory)."
        )
    register_secret(catalog_password(catalog) or "")
    state = prepare_catalog(catalog, files_dir=layout.files)
    logger.info("catalog %s (%s)", redact_uri(catalog), state)
    return layout


def _waiting(data_dir: str | Path) -> str:
    return (
        f"Another session (process {{pid}}) has its embedded tiled server on {data_dir}; "
        "waiting for it to end (one server writes a data directory at a time). To work "
        "in parallel, run `ssb-beamline serve` once and give every session --tiled URI."
    )


def use_write_ahead_log(catalog: Path) -> None:
    """Put a SQLite catalog in write-ahead-log mode (persistent in the file).

    tiled 0.2.20 asks for WAL while a transaction is open, where SQLite ignores it:
    the catalog stays in rollback-journal mode, in which every reader blocks the
    writers, and concurrent sessions see "database is locked" (HTTP 500s, measured
    by ``benchmarks/bench_load.py``). Called before the server serves.

    Parameters
    ----------
    catalog : Path
        The SQLite catalog file (created empty if missing); a mode other than WAL
        (e.g. a network file system) is logged as a warning, not raised.
    """
    import sqlite3

    connection = sqlite3.connect(catalog, timeout=60)
    try:
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    finally:
        connection.close()
    if mode != "wal":
        logger.warning("the catalog %s stays in %s journal mode (not WAL)", catalog, mode)


class _ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the main thread owns signals
        pass


def build_app(layout: DataLayout, api_key: str):
    """Build the tiled ASGI application for a data directory.

    tiled 0.2.20 keeps the server settings (the API key among them) in one cached,
    process-wide object that every app it builds mutates: a second app in the same
    process silently takes over the first one's key. Each app built here gets its
    own copy of the settings instead, so several servers can run in one process
    (the test suite does).

    Parameters
    ----------
    layout : DataLayout
        The data directory (its folders are created) and catalog.
    api_key : str
        The read-write key clients must send; the read-only keys come from
        :func:`~ssb_beamline.storage.access.load_readonly_keys`.
    """
    from tiled.server.app import build_app_from_config
    from tiled.server.settings import get_settings

    layout.create()
    install_tiled_patches()  # each says why in its module (see tiled_patches)
    app = add_array_batch(build_app_from_config(server_config(layout, api_key=api_key)))
    if not layout.catalog_uri:
        use_write_ahead_log(layout.catalog)
    settings = app.dependency_overrides[get_settings]().model_copy(deep=True)
    settings.single_user_api_key = api_key
    app.dependency_overrides[get_settings] = lambda: settings
    # SQLite: catalog writes one at a time, in arrival order (see write_funnel)
    served = app if layout.catalog_uri else WriteFunnel(app)
    app.state.catalog_funnel = None if served is app else served  # the batch's tables
    # a body in one message: tiled's six middlewares handle it once (see server_body)
    keyed = ReadOnlyKeys(
        WholeBody(served), server_key=api_key, readonly_keys=load_readonly_keys(layout.root)
    )
    return StallWatch(keyed)


class EmbeddedTiledServer:
    """Run the project's tiled server for a data directory, on 127.0.0.1.

    By default the server runs in a child process (``python -m
    ssb_beamline.storage.server``), so that its request handling never competes
    with the acquisition for this process's interpreter; it exits with its parent.
    ``in_process=True`` runs it on a background thread instead (no start-up cost
    for a second interpreter; used by tests that need several servers).

    Parameters
    ----------
    data_dir : path
        Data directory; the catalog and files persist there across restarts.
    api_key : str, optional
        Key the server requires; by default ``$SSB_TILED_API_KEY`` or a key kept
        (mode 0600) in the data directory. It is handed to the child process in
        its environment, never on its command line.
    port : int
        TCP port; 0 picks a free one.
    in_process : bool
        Serve from a thread of this process instead of a child process.
    catalog : str, optional
        PostgreSQL catalog URI (default ``$SSB_CATALOG_URI``, else SQLite in the
        data directory); checked, and created if the database is empty, first.

    Examples
    --------
    >>> import tempfile
    >>> with EmbeddedTiledServer(tempfile.mkdtemp()) as server:  # doctest: +SKIP
    ...     client = server.client()
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        api_key: str | None = None,
        port: int = 0,
        in_process: bool = False,
        catalog: str | None = None,
    ):
        self.process: subprocess.Popen | None = None
        self._server: _ThreadedServer | None = None
        catalog = catalog or os.environ.get(CATALOG_URI_ENV) or None
        checked = checked_layout(data_dir, catalog)  # before any lock or folder is made
        # one embedded server per data directory at a time: DuckDB lets one process
        # write the table storage (a second session waits for the first to end)
        self._release = hold_lock(data_dir, SERVER_LOCK, waiting=_waiting(data_dir))
        try:
            # one server at a time initialises a fresh catalog and writes the key file
            with data_dir_lock(data_dir):
                self.layout = checked.create()
                self.api_key = api_key or load_or_create_api_key(self.layout)
                if in_process:
                    self.port = self._start_thread(port)
                else:
                    self.port = self._start_process(port)
        except BaseException:
            self._release()
            raise
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        logger.info("embedded tiled server at %s (data in %s)", self.url, self.layout.root)

    def _start_thread(self, port: int) -> int:
        app = self._app = build_app(self.layout, self.api_key)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, loop="asyncio", log_level="warning"
        )
        _redact_keys(self.layout, self.api_key)
        self._server = _ThreadedServer(config)
        self._thread = threading.Thread(target=self._server.run, name="tiled-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server.should_exit = True
                raise thread_start_error(self.layout.root, alive=self._thread.is_alive())
            time.sleep(0.02)
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    def _start_process(self, port: int) -> int:
        env = {**os.environ, _CHILD_KEY_ENV: self.api_key}
        if self.layout.catalog_uri:  # in the environment: never on a command line
            env[_CHILD_CATALOG_ENV] = self.layout.catalog_uri
        since = log_size(self.layout.root / "server.log")
        log = open_private(self.layout.root / "server.log", "ab")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(self.layout.root), "--port", str(port)],
            stdin=subprocess.PIPE,  # the child exits when this pipe closes
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
        )
        log.close()
        ready: list[str] = []
        reader = threading.Thread(
            target=lambda: ready.append(self.process.stdout.readline().decode()), daemon=True
        )
        reader.start()
        reader.join(_STARTUP_TIMEOUT_S)
        line = ready[0].strip() if ready else ""
        if not line.startswith(_READY):
            exited = self.process.poll() is not None
            self.process.kill()
            raise server_start_error(
                "embedded tiled server", self.layout.root, self.layout.root / "server.log",
                since, exited=exited, waited_s=time.monotonic() - started, fix=START_FIX,
            )  # fmt: skip
        return int(line.split()[1])

    def client(self):
        """A tiled client of this server (authenticated with its key)."""
        from tiled.client import from_uri

        return from_uri(self.url, api_key=self.api_key)

    def close(self) -> None:
        """Stop the server (and wait for it)."""
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._app.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._release()

    def __enter__(self) -> EmbeddedTiledServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve_forever(
    data_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    catalog: str | None = None,
    announce: Callable[[], object] | None = None,
) -> None:
    """Run the persistent server in the foreground (``ssb-beamline serve``).

    Parameters
    ----------
    data_dir : path
        The data directory; it waits while another server holds its lock.
    host : str, optional
        Interface to listen on (default loopback only); another address exposes
        the server, protected by its API key only, to that network.
    port : int, optional
        TCP port (default 8000); a port in use stops the server with uvicorn's error.
    catalog : str, optional
        PostgreSQL URI (checked, and its schema created in an empty database,
        before anything starts); None keeps the catalog in the data directory.
    announce : callable, optional
        Called without arguments once those checks passed, before the server starts.
    """
    os.umask(PRIVATE_UMASK)  # this process only serves the data: all it writes is private
    keep_freed_memory()  # frame blocks served reuse warm pages (see ssb_beamline._memory)
    layout = checked_layout(data_dir, catalog).create()
    if announce is not None:
        announce()
    release = hold_lock(layout.root, SERVER_LOCK, waiting=_waiting(layout.root))
    try:
        api_key = load_or_create_api_key(layout)
        logger.info(
            "serving %s on http://%s:%d/api/v1 (catalog %s)", layout.root, host, port,
            redact_uri(layout.catalog_uri or str(layout.catalog)),
        )  # fmt: skip
        app = build_app(layout, api_key)
        dump_stacks_on_signal()  # kill -USR1 <pid>: every thread's stack on stderr
        config = uvicorn.Config(app, host=host, port=port, log_level="info")
        _redact_keys(layout, api_key)  # uvicorn configured its log handlers just above
        uvicorn.Server(config).run()
    finally:
        release()


def _redact_keys(layout: DataLayout, api_key: str) -> None:
    """No key, read-write or read-only, in any log line (uvicorn prints query strings)."""
    redact_server_logs([api_key, *load_readonly_keys(layout.root)])


def _exit_with_parent() -> None:
    """Exit when the parent closes our stdin (it stopped, or died)."""
    sys.stdin.buffer.read()
    os._exit(0)


def _child_main(argv: list[str] | None = None) -> None:
    """Entry point of the child process started by :class:`EmbeddedTiledServer`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    # the catalog, tables and result files tiled creates here are private (0600/0700)
    os.umask(PRIVATE_UMASK)
    keep_freed_memory()  # frame blocks served reuse warm pages (see ssb_beamline._memory)
    catalog = os.environ.pop(_CHILD_CATALOG_ENV, None)  # checked by the parent
    register_secret(catalog_password(catalog) or "")
    layout = DataLayout(args.data_dir, catalog_uri=catalog).create()
    api_key = os.environ.pop(_CHILD_KEY_ENV, None) or load_or_create_api_key(layout)
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    dump_stacks_on_signal()  # kill -USR1 <pid>: every thread's stack into server.log
    config = uvicorn.Config(
        build_app(layout, api_key), host="127.0.0.1", port=args.port, log_level="warning"
    )
    _redact_keys(layout, api_key)
    server = uvicorn.Server(config)

    async def announce() -> None:
        while not server.started:
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        sys.stdout.write(f"{_READY} {port}\n")
        sys.stdout.flush()

    async def main() -> None:
        await asyncio.gather(server.serve(), announce())

    asyncio.run(main())


if __name__ == "__main__":
    _child_main()
