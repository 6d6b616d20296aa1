"""The guard every live-analysis handler runs under: a failure never reaches the RunEngine."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["guarded"]


def guarded(what: str) -> Callable[[Callable[[Any, dict], Any]], Callable[[Any, dict], Any]]:
    """Decorate a document handler: log and record any failure instead of raising it.

    An exception in a callback would propagate into the RunEngine and stop the
    acquisition. The handler's object must have ``_failed`` (set on the first
    failure; later documents are ignored) and ``outcome`` with ``run_uid`` and
    ``errors`` (the message is appended there, shown to the user at the end).

    Parameters
    ----------
    what : str
        Names the analysis in the log (e.g. "live XANES analysis").
    """

    def decorate(method: Callable[[Any, dict], Any]) -> Callable[[Any, dict], Any]:
        log = logging.getLogger(method.__module__)

        @functools.wraps(method)
        def wrapper(self: Any, doc: dict) -> Any:
            if self._failed:
                return None
            try:
                return method(self, doc)
            except Exception as exc:
                self._failed = True
                self.outcome.errors.append(f"{type(exc).__name__}: {exc}")
                if getattr(exc, "kept_for_sync", False):  # no analysis failed: storing did
                    log.error("run %s: %s", self.outcome.run_uid, exc)
                    return None
                log.exception(
                    "%s of run %s failed in %s; the acquisition goes on and the raw data "
                    "are still kept, in tiled or journaled for `ssb-beamline sync` (replay "
                    "the run to analyse it)",
                    what,
                    self.outcome.run_uid,
                    method.__name__,
                )
                return None

        return wrapper

    return decorate
