"""The ``ssb-beamline`` command: demo, runs, show, report, replay, sync, serve, ...

One module per command group (:mod:`.acquire`: demo, ioc, check, analyze;
:mod:`.stored`: runs, show, report, replay, sync; :mod:`.servers`: serve and the
data directory's background server), the argument parser in :mod:`.parser`.
Every command imports what it needs when it runs, so ``--help`` and ``runs``
start fast; nothing in the package imports this one.
"""

from __future__ import annotations

from ssb_beamline.cli._console import configure_logging, console
from ssb_beamline.cli.parser import build_parser

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``ssb-beamline``; returns the exit code."""
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    # the package's usage errors (TiledUnavailableError, ReplayError, JournalCorruptError,
    # DataDirectoryError, ...) derive from these; not imported here, for a fast start
    except (KeyError, ValueError, ConnectionError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        console.print(f"[bold red]error:[/] {message}")
        return 2
    except OSError as exc:  # a file in the way, a folder that cannot be written, ...
        where = f": {exc.filename}" if exc.filename else ""
        console.print(
            f"[bold red]error:[/] {exc.strerror or exc}{where}. Check that path (what is "
            "there, its permissions, the free space), then run the command again."
        )
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130
