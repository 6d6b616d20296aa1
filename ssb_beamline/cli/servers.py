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

__all__ = ["cmd_serve", "ensure_background", "server_for_reading"]


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


def ensure_background(args: argparse.Namespace):
    """The data directory's background server (started if needed), or None when not used."""
    from ssb_beamline.storage.server_config import TILED_URI_ENV, default_data_dir
    from ssb_beamline.storage.service import background_enabled, ensure_service, running_service

    if args.tiled or os.environ.get(TILED_URI_ENV) or not background_enabled():
        return None
    data_dir = args.data_dir or default_data_dir()
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
    from ssb_beamline.storage.server import serve_forever

    banner = (
        f"tiled server for {data_dir} on http://{args.host}:{args.port}/api/v1 "
        f"(API key in {data_dir / '.api_key'} or $SSB_TILED_API_KEY); Ctrl-C stops it."
    )
    # the banner only once the catalog and the data directory passed their checks
    serve_forever(data_dir, host=args.host, port=args.port, catalog=args.catalog,
                  announce=lambda: console.print(banner))  # fmt: skip
    return 0


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
