"""Replay archived runs from tiled through the same callbacks that ran live."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from ssb_beamline.callbacks import LiveOutcome, XanesLiveAnalysis
from ssb_beamline.callbacks.xanes_live import MapPostProcessor
from ssb_beamline.profiles.standard import standard_post_processors
from ssb_beamline.reference_data import ni_k_edge_references
from ssb_beamline.storage import TiledResultSink, TiledStore
from ssb_beamline.storage.replay import (
    check_replayable,
    check_speed,
    paced,
    resolve_uid,
    run_documents,
)

logger = logging.getLogger(__name__)

__all__ = ["replay_runs"]


def replay_runs(
    store: TiledStore,
    uids: Iterable[str],
    *,
    speed: float | None = None,
    fill: Literal["auto", "always", "never"] = "auto",
    references: Any = None,
    post_processors: Sequence[MapPostProcessor] | None = None,
    store_results: bool = True,
    on_document: Callable[[str, dict], None] | None = None,
) -> list[LiveOutcome]:
    """Push each stored run's documents through a fresh live XANES analysis.

    The results are stored as a new version next to the run (``source="replay"``);
    the live results are never overwritten.

    Parameters
    ----------
    store : the tiled store holding the runs (``store.raw``) and results
    uids : run uids (or unique prefixes)
    speed : None replays as fast as possible; 1.0 with the recorded timing, 10 ten
        times faster
    fill : where frames come from (see :func:`~ssb_beamline.storage.replay.run_documents`)
    references : end-member spectra (default: the shipped NiO / LiNiO2)
    post_processors : default: the same as live (:func:`standard_post_processors`)
    store_results : write the results to tiled (off for dry runs and benchmarks)
    on_document : also called with every document (progress, other callbacks)

    Raises
    ------
    ReplayError
        Before anything is replayed, for a bad ``speed``, an unknown or ambiguous
        uid, or a run that cannot be analysed (see
        :func:`~ssb_beamline.storage.run_checks.check_replayable`); while
        replaying, for frames that cannot be read.
    """
    check_speed(speed)
    uids = [resolve_uid(store.raw, uid) for uid in uids]
    runs = {uid: store.raw[uid] for uid in uids}
    for run in runs.values():
        check_replayable(run)
    references = references if references is not None else ni_k_edge_references()
    if post_processors is None:
        post_processors = standard_post_processors()
    sink = None
    if store_results:
        sink = TiledResultSink(store.results, store.journal_dir, runs=store.raw)
    outcomes = []
    for uid, run in runs.items():
        callback = XanesLiveAnalysis(
            references, sink=sink, post_processors=post_processors, source="replay"
        )
        for name, doc in paced(run_documents(run, fill=fill), speed):
            callback(name, doc)
            if on_document is not None:
                on_document(name, doc)
        outcomes.append(callback.outcome)
        logger.info("replayed run %s: %s", uid, "ok" if callback.outcome.ok else "failed")
    return outcomes
