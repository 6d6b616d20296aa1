"""The console every command prints to, the log set-up and the progress bar."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["configure_logging", "console", "logger", "progress_bar"]

logger = logging.getLogger("ssb_beamline")
console = Console(soft_wrap=True)  # error lines keep paths whole: no hard breaks inserted


def configure_logging(verbosity: int) -> None:
    """Log to stderr through rich: WARNING, ``-v`` INFO, ``-vv`` DEBUG (libraries stay quiet)."""
    from rich.logging import RichHandler

    level = logging.WARNING - 10 * min(verbosity, 2)
    handler = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False)
    if verbosity < 1:  # a failing step is one line; ``-v`` shows where it failed
        handler.addFilter(_one_line_errors)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)
    for noisy in ("httpx", "tiled", "uvicorn", "bluesky", "ophyd_async", "ophyd"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def _one_line_errors(record: logging.LogRecord) -> bool:
    """Replace a record's traceback by its last line and a hint (a filter: keeps every record).

    A live analysis that fails logs ``logger.exception`` and the run goes on; the user
    needs what failed and why, not the package's call stack.
    """
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc} (-v: the traceback)"
        record.args, record.exc_info, record.exc_text = None, None, None
    return True


def progress_bar() -> Progress:
    """The progress bar the CLI shows during a scan (see :mod:`ssb_beamline.progress`)."""
    from ssb_beamline.progress import progress_bar as bar

    return bar(console)
