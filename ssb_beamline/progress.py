"""Progress of long calls: a rich progress bar for the command line, INFO logs in Python.

The command line draws :func:`progress_bar`. A Python session (``simulated_tomo``,
``simulated_beamline``) has no bar: its profile subscribes :class:`LogProgress`
to the RunEngine, which logs each run's start, its frames every few seconds and
its end at INFO, and calls :func:`enable_progress_logging` so that these lines
(and the analysis' own INFO lines: reconstruction, results stored) are shown when
the user has configured no logging. A user who has (``logging.basicConfig``)
keeps their configuration.

Examples
--------
>>> progress = LogProgress(every_s=0)
>>> progress("start", {"uid": "0123abcd-ef", "plan_name": "tomo_scan", "num_points": 2})
>>> progress("event", {"seq_num": 1, "descriptor": "d"})
>>> progress("stop", {"exit_status": "success", "num_events": {"primary": 2}})
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported only when a bar is drawn
    from rich.console import Console
    from rich.progress import Progress

__all__ = ["LogProgress", "enable_progress_logging", "progress_bar"]

logger = logging.getLogger("ssb_beamline.progress")


def progress_bar(console: Console | None = None) -> Progress:
    """The progress bar the command line shows during a scan or a replay."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    )


def enable_progress_logging(level: int = logging.INFO) -> bool:
    """Show the package's INFO lines on stderr, unless logging is configured already.

    Returns whether a handler was added (once per process).
    """
    package = logging.getLogger("ssb_beamline")
    if logging.getLogger().handlers or package.handlers:
        return False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    package.addHandler(handler)
    package.setLevel(level)
    package.propagate = False
    return True


class LogProgress:
    """A RunEngine callback logging each run's progress at INFO (every ``every_s`` seconds)."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.every_s = every_s
        self._uid = ""
        self._planned: Any = None
        self._events = 0
        self._t0 = self._last = 0.0
        self._other_streams: set[str] = set()  # descriptors of dark, flat, baseline, ...

    def __call__(self, name: str, doc: dict) -> None:
        """Log progress for one bluesky document."""
        if name == "start":
            self._uid, self._planned = str(doc.get("uid", ""))[:8], doc.get("num_points")
            self._events, self._t0 = 0, time.monotonic()
            self._last = self._t0
            self._other_streams.clear()
            logger.info("run %s (%s) started", self._uid, doc.get("plan_name", "?"))
        elif name == "descriptor" and not str(doc.get("name", "primary")).startswith("primary"):
            # num_points counts the primary stream's points (primary_000 for holotomo):
            # dark and flat frames, baseline and monitor readings are not among them
            self._other_streams.add(doc.get("uid", ""))
        elif name in ("event", "event_page") and doc.get("descriptor") not in self._other_streams:
            seq = doc.get("seq_num", 1)
            self._events += len(seq) if isinstance(seq, list) else 1
            now = time.monotonic()
            if now - self._last >= self.every_s:
                self._last = now
                of = f"/{self._planned}" if self._planned else ""
                logger.info("run %s: %d%s points, %.0f s", self._uid, self._events, of,
                            now - self._t0)  # fmt: skip
        elif name == "stop":
            logger.info(
                "run %s %s after %.1f s (%s); the live analysis finishes and stores its results",
                self._uid, doc.get("exit_status"), time.monotonic() - self._t0,
                doc.get("num_events"),
            )  # fmt: skip
