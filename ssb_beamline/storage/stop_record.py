"""Make sure a run's stop document is in tiled after its writer says it wrote it.

tiled 0.2.20 applies a metadata PATCH as read-modify-write on the server (the
node's metadata is read when the request starts and replaced with the patched copy
at its end), without a lock or a revision check. Two PATCHes to one run at once,
bluesky's ``TiledWriter`` writing ``{"stop": ...}`` and the results sink linking
``{"results": ...}`` from another thread or a worker process, can therefore lose
one of them: the run then looks open forever although its writer saw no error, and
``replay`` refuses it. Neither tiled nor bluesky checks this, so it is done here:
read the metadata back and write the stop again until it is there.
"""

from __future__ import annotations

import logging

__all__ = ["StopNotRecordedError", "confirm_stop_recorded"]

logger = logging.getLogger(__name__)

#: How often the stop is written again before the run is left to ``sync``.
STOP_ATTEMPTS = 5


class StopNotRecordedError(RuntimeError):
    """tiled did not keep a run's stop document after several writes."""


def confirm_stop_recorded(raw, uid: str, stop: dict, *, attempts: int = STOP_ATTEMPTS) -> int:
    """Read run ``uid``'s metadata back from ``raw``; write ``stop`` again if it is missing.

    Parameters
    ----------
    raw : tiled container client
        The container of raw runs that holds the run ``uid``.
    uid : str
        The run's start uid.
    stop : dict
        The run's stop document, as the RunEngine emitted it.
    attempts : int, optional
        How many times to write the stop again before giving up.

    Returns
    -------
    int
        How many times the stop had to be written again (0: it was there).

    Raises
    ------
    StopNotRecordedError
        If the stop is still missing after ``attempts`` writes; the caller keeps the
        run pending in its journal so ``ssb-beamline sync`` writes it again.
    """
    for rewrites in range(attempts + 1):
        run = raw[uid]  # a fresh read: the client caches the metadata it was made with
        if (run.metadata.get("stop") or {}).get("uid") == stop.get("uid"):
            if rewrites:
                logger.warning(
                    "run %s: tiled had lost the stop document (a concurrent metadata "
                    "update); written again %d time(s)",
                    uid,
                    rewrites,
                )
            return rewrites
        if rewrites == attempts:
            break
        run.update_metadata(metadata={"stop": stop}, drop_revision=True)
    raise StopNotRecordedError(
        f"run {uid}: tiled did not keep the stop document after {attempts} writes"
    )
