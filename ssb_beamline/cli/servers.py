"""Which tiled server a command talks to, and ``serve`` (foreground, ``--background``, ``--stop``).

Reading commands use ``--tiled`` / ``$SSB_TILED_URI`` when given, else the data
directory's background server (:mod:`ssb_beamline.storage.service`), started once
and kept for the next commands.
"""

from __future__ import annotations

import argparse
import os
from contextlib import contextmanager
from pathlib import Path

from ssb_beamline.cli._console import console

__all__ = [
    "ServerBusyError",
    "check_not_served",
    "cmd_serve",
    "ensure_background",
    "foreground_server",
    "server_for_reading",
]

#: The lock an embedded server holds on its data directory (``storage.server.SERVER_LOCK``;
#: named here so that reading commands need not import the server stack).
_SERVER_LOCK = ".server.lock"


class ServerBusyError(ValueError):
    """Another ``ssb-beamline serve`` holds the data directory; the message names its URI."""


def _lock_holder(data_dir: Path) -> int | None:
    """The process holding the data directory's server lock, or None when it is free."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    path = Path(data_dir).expanduser().resolve() / _SERVER_LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return -1
    finally:
        os.close(fd)  # also releases a probe that got the lock
    return None


def _serve_address(argv: list[str]) -> str | None:
    """``http://host:port/api/v1`` of an ``ssb-beamline serve`` command line, else None."""
    if "serve" not in argv[1:] or "--stop" in argv or "--background" in argv:
        return None
    options = {"--host": "127.0.0.1", "--port": "8000"}
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if name in options:
            options[name] = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
    host = options["--host"]
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{host}:{options['--port']}/api/v1"


def foreground_server(data_dir: str | Path) -> tuple[int, str] | None:
    """``(pid, URI)`` of an ``ssb-beamline serve`` serving ``data_dir``, else None.

    A foreground server holds the data directory until it is stopped, so a command
    that would start its own server there would wait for ever (see :exc:`ServerBusyError`).
    """
    pid = _lock_holder(Path(data_dir))
    if pid is None or pid <= 0 or pid == os.getpid():
        return None
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    uri = _serve_address([a for a in argv if a])
    return None if uri is None else (pid, uri)


def _busy(data_dir: Path, pid: int, uri: str, what: str) -> ServerBusyError:
    key = Path(data_dir).expanduser() / ".api_key"
    return ServerBusyError(
        f"`ssb-beamline serve` (process {pid}) serves {data_dir} at {uri}, so {what}. "
        f"Use that server: pass --tiled {uri} (or export SSB_TILED_URI={uri}) with "
        f"SSB_TILED_API_KEY=$(cat {key}); or stop it (Ctrl-C in its terminal) first."
    )


@contextmanager
def server_for_reading(args: argparse.Namespace):
    """``(url, api_key, label, journal dir)`` of the store a read-only command reads.

    ``--tiled`` / ``$SSB_TILED_URI``: that server. Else the data directory's
    background server, started if needed (``$SSB_BACKGROUND_SERVER=0``: an embedded
    server for this command only, stopped at its end).
    """
    from ssb_beamline.storage.server_config import (
        TILED_API_KEY_ENV,
        TILED_URI_ENV,
        DataLayout,
        default_data_dir,
        load_or_create_api_key,
    )

    data_dir = Path(args.data_dir or default_data_dir()).expanduser()
    uri = args.tiled or os.environ.get(TILED_URI_ENV)
    if uri:
        from ssb_beamline.storage.connect import check_tiled_uri

        check_tiled_uri(uri)
        yield uri, os.environ.get(TILED_API_KEY_ENV), uri, data_dir / "journal"
        return
    service = ensure_background(args)
    if service is not None:
        key = load_or_create_api_key(DataLayout(service.data_dir))
        yield service.url, key, str(service.data_dir), service.data_dir / "journal"
        return
    from ssb_beamline.storage import open_store

    with open_store(None, data_dir=data_dir) as store:
        key = store.server.api_key if store.server is not None else None
        yield store.uri, key, str(data_dir), store.journal_dir


def check_not_served(args: argparse.Namespace) -> bool:
    """Whether the command uses the data directory itself (not ``--tiled``), checked free.

    Raises
    ------
    ServerBusyError
        If ``ssb-beamline serve`` holds the data directory: the command would wait
        for it to stop (silently, for ever); the message gives its URI instead.
    """
    from ssb_beamline.storage.server_config import TILED_URI_ENV, default_data_dir

    if args.tiled or os.environ.get(TILED_URI_ENV):
        return False
    data_dir = Path(args.data_dir or default_data_dir()).expanduser()
    if (serving := foreground_server(data_dir)) is not None:
        raise _busy(data_dir, *serving, "this command cannot start its own server there")
    return True


def ensure_background(args: argparse.Namespace):
    """The data directory's background server (started if needed), or None when not used.

    Raises
    ------
    ServerBusyError
        If ``ssb-beamline serve`` holds the data directory (the message gives its URI).
    """
    from ssb_beamline.storage.server_config import default_data_dir
    from ssb_beamline.storage.service import background_enabled, ensure_service, running_service

    if not check_not_served(args):
        return None
    data_dir = args.data_dir or default_data_dir()
    if not background_enabled():
        return None
    if (found := running_service(data_dir)) is not None:
        return found
    with console.status(
        "Starting the background tiled server for this data directory (once; later "
        "commands use it; `ssb-beamline serve --stop` stops it)..."
    ):
        return ensure_service(data_dir)


def cmd_serve(args: argparse.Namespace) -> int:
    """``serve``: the tiled server in the foreground; or start/stop the background one."""
    from ssb_beamline.storage.server_config import default_data_dir

    data_dir = args.data_dir or default_data_dir()
    if args.stop or args.background:
        return _serve_background(args, data_dir)
    _check_data_dir_free(Path(data_dir))
    port = _free_port(args.host, args.port)
    from ssb_beamline.storage.server import serve_forever

    banner = (
        f"tiled server for {data_dir} on http://{args.host}:{port}/api/v1 "
        f"(API key in {data_dir / '.api_key'} or $SSB_TILED_API_KEY); Ctrl-C stops it."
    )
    # the banner only once the catalog and the data directory passed their checks
    serve_forever(data_dir, host=args.host, port=port, catalog=args.catalog,
                  announce=lambda: console.print(banner))  # fmt: skip
    return 0


def _free_port(host: str, port: int) -> int:
    """``port`` if free (0: a free one), before the banner announces it; else a clear error."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
            return int(probe.getsockname()[1])
    except OSError as exc:
        raise ValueError(
            f"Cannot serve on {host}:{port} ({exc.strerror or exc}): another program may "
            "listen there. Choose another port with --port (or another --host)."
        ) from None


def _check_data_dir_free(data_dir: Path) -> None:
    """Refuse to serve a data directory another server already serves (it would wait)."""
    from ssb_beamline.storage.service import running_service

    if (found := running_service(data_dir)) is not None:
        raise ServerBusyError(
            f"The background tiled server (process {found.pid}) already serves {data_dir} "
            f"at {found.url}; an earlier command started it. Use it (export "
            f"SSB_TILED_URI={found.url} SSB_TILED_API_KEY=$(cat {data_dir / '.api_key'})), "
            "or stop it with `ssb-beamline serve --stop` and run `ssb-beamline serve` again."
        )
    if (serving := foreground_server(data_dir)) is not None:
        raise _busy(data_dir, *serving, "a second one cannot serve it too")


def _serve_background(args: argparse.Namespace, data_dir: Path) -> int:
    """``serve --stop`` / ``serve --background``: the data directory's background server."""
    from ssb_beamline.storage.service import ensure_service, stop_service

    if args.stop:
        pid = stop_service(data_dir)
        if pid is None:
            console.print(f"No background tiled server runs for {data_dir}.")
        else:
            console.print(f"Stopped the background tiled server of {data_dir} (process {pid}).")
        return 0
    with console.status(f"Starting the background tiled server for {data_dir}..."):
        service = ensure_service(data_dir)
    console.print(
        f"Background tiled server for {data_dir} at {service.url} (process {service.pid}); "
        "commands use it; `ssb-beamline serve --stop` stops it."
    )
    return 0
