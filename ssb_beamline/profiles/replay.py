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
from ssb_beamline.storage.replay import ReplayError, paced, run_documents

logger = logging.getLogger(__name__)


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
    uids : full run uids
    speed : None replays as fast as possible; 1.0 with the recorded timing, 10 ten
        times faster
    fill : where frames come from (see :func:`~ssb_beamline.storage.replay.run_documents`)
    references : end-member spectra (default: the shipped NiO / LiNiO2)
    post_processors : default: the same as live (:func:`standard_post_processors`)
    store_results : write the results to tiled (off for dry runs and benchmarks)
    on_document : also called with every document (progress, other callbacks)
    """
    references = references if references is not None else ni_k_edge_references()
    if post_processors is None:
        post_processors = standard_post_processors()
    sink = TiledResultSink(store.results) if store_results else None
    outcomes = []
    for uid in uids:
        run = store.raw[uid]
        if run.metadata.get("start", {}).get("plan_name") != "xanes_scan":
            raise ReplayError(
                f"Run {uid} was taken by {run.metadata.get('start', {}).get('plan_name')!r}, "
                "not xanes_scan; there is no XANES analysis to replay it through."
            )
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
