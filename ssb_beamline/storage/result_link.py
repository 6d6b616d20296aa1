"""A raw run's metadata link to its results (``results: {latest, versions}``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from .result_layout import is_version, links_at_least

__all__ = ["LINK_ATTEMPTS", "link_run"]

logger = logging.getLogger(__name__)

#: Writes of a run's link to its results, each read back (a concurrent PATCH may undo it).
LINK_ATTEMPTS = 3


def link_run(run: Any, versions: Iterable[str], path: str, run_of: Callable[[str], Any]) -> None:
    """Record the results at ``path`` in ``run``'s metadata (they are stored already).

    tiled applies a metadata PATCH as read-modify-write on the server, so a
    concurrent PATCH of the same run (the writer's stop document) can undo this
    one: the link is read back from a fresh lookup and written again if it is
    missing (a few attempts). Failures are logged, never raised.

    Parameters
    ----------
    run : tiled client or None
        The raw run (None: nothing to link).
    versions : iterable of str
        The keys of the run's results container (its versions among them).
    path : str
        ``results/<uid>/<version>``, the latest.
    run_of : callable
        ``run_of(uid)``: a fresh client of the raw run, or None.
    """
    if run is None:
        return
    try:
        versions = sorted((k for k in versions if is_version(k)), key=lambda k: int(k[1:]))
        link = {"latest": path, "versions": versions}
        for attempt in range(LINK_ATTEMPTS):
            run.update_metadata(metadata={"results": link}, drop_revision=True)
            fresh = run_of(run.item["id"])
            if fresh is None or links_at_least(fresh.metadata.get("results"), path):
                return
            logger.info("the link to %s was overwritten (attempt %d)", path, attempt + 1)
            run = fresh
        logger.error("results stored at %s; their link from the run kept being lost", path)
    except Exception:  # the results are stored: a missing link must not lose them
        logger.exception("results stored at %s, not linked from their run", path)
