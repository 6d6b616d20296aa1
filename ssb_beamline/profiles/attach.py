"""Attach the journaled tiled writer and the live analysis to your own RunEngine.

The ready-made sessions (``simulated_beamline``, ``beamline_session``) build their
RunEngine themselves. At a beamline with its own RunEngine and devices,
:func:`attach_live_analysis` subscribes what they subscribe: every document
journaled locally and written to tiled on a background thread, and the live
analysis (XANES, or tomography / 3D XANES / holotomography) on another, storing
its results next to the run. Neither can slow or stop the acquisition.

Examples
--------
>>> from bluesky import RunEngine
>>> RE = RunEngine()
>>> with attach_live_analysis(RE) as live:       # doctest: +SKIP
...     RE(my_plan(my_detector))
...     live.flush()
...     print(live.outcomes[-1].stored_at)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from event_model import RunRouter

from ssb_beamline.callbacks.background import BackgroundCallback
from ssb_beamline.private_files import make_private_dir
from ssb_beamline.progress import LogProgress, enable_progress_logging
from ssb_beamline.storage import TiledStore, open_store
from ssb_beamline.storage.journal import DocumentJournal, JournaledWriter
from ssb_beamline.storage.server_config import default_data_dir

__all__ = ["AttachedAnalysis", "attach_live_analysis"]

logger = logging.getLogger(__name__)


@dataclass
class AttachedAnalysis:
    """What :func:`attach_live_analysis` subscribed to a RunEngine.

    Attributes
    ----------
    RE : bluesky.RunEngine
        The RunEngine the writer and the analysis are subscribed to.
    store : TiledStore
        The tiled store (raw runs and results).
    detector_dir : pathlib.Path
        A folder the tiled server reads detector files from.
    outcomes : list
        One live-analysis outcome per analysed run, newest last (``stored_at``:
        ``results/<uid>/vN``; ``errors``).
    journal : DocumentJournal or None
        The journal every document goes to before tiled (None: not journaled).
    writer : BackgroundCallback or None
        The tiled writer, on its own thread (None when not writing to tiled).
    live : BackgroundCallback or None
        The live analysis, on its own thread (None when not attached).
    on_update : callable or None
        Called with each live-analysis update (progress displays).
    """

    RE: Any
    store: TiledStore
    detector_dir: Path
    outcomes: list = field(default_factory=list)
    journal: DocumentJournal | None = None
    writer: BackgroundCallback | None = None
    live: BackgroundCallback | None = None
    on_update: Callable | None = None
    _tokens: list[int] = field(default_factory=list, repr=False)

    def _notify(self, update: Any) -> None:
        if self.on_update is not None:
            self.on_update(update)

    def flush(self, timeout: float = 600.0) -> None:
        """Wait until the live analysis and the writer have handled every document so far."""
        for callback in (self.live, self.writer):
            if callback is not None:
                callback.flush(timeout)

    def close(self) -> None:
        """Flush, unsubscribe from the RunEngine and close the store."""
        try:
            self.flush()
        finally:
            for token in self._tokens:
                self.RE.unsubscribe(token)
            self.store.close()

    def __enter__(self) -> AttachedAnalysis:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def attach_live_analysis(
    RE: Any,
    *,
    analysis: str = "xanes",
    tiled_uri: str | None = None,
    data_dir: str | Path | None = None,
) -> AttachedAnalysis:
    """Subscribe the journaled tiled writer and the live analysis to ``RE``.

    Parameters
    ----------
    RE : bluesky.RunEngine
        The RunEngine to subscribe to (yours: its plans and settings are untouched).
    analysis : {"xanes", "tomo", "none"}
        The live XANES analysis, the tomography / 3D XANES / holotomography one,
        or none (only store the runs).
    tiled_uri, data_dir
        As for :func:`~ssb_beamline.storage.open_store` (default: ``$SSB_TILED_URI``,
        else the data directory's server).
    """
    if analysis not in ("xanes", "tomo", "none"):
        raise ValueError(f"analysis={analysis!r}: choose 'xanes', 'tomo' or 'none'")
    store = open_store(tiled_uri, data_dir=data_dir)
    local = Path(data_dir or default_data_dir()).expanduser().resolve() / "detector"
    folder = Path(store.detector_dir or local)
    make_private_dir(folder)
    attached = AttachedAnalysis(RE, store, folder)
    try:
        attached.journal = DocumentJournal(store.journal_dir)
        attached.writer = BackgroundCallback(
            JournaledWriter(store.raw, attached.journal), "tiled writer"
        )
        if analysis != "none":
            attached.live = BackgroundCallback(RunRouter([_factory(attached, analysis)]),
                                               f"live {analysis} analysis")  # fmt: skip
    except BaseException:
        store.close()
        raise
    for callback in (attached.writer, attached.live, LogProgress()):
        if callback is not None:
            attached._tokens.append(RE.subscribe(callback))
    enable_progress_logging()
    return attached


def _factory(attached: AttachedAnalysis, analysis: str):
    """The RunRouter factory of the live analysis (the same as the ready-made sessions')."""
    from ssb_beamline.profiles.simulated import result_sink
    from ssb_beamline.reference_data import ni_k_edge_references

    sink = result_sink(attached.store)
    if analysis == "tomo":
        from ssb_beamline.callbacks.holo_live import tomo_live_factory

        return tomo_live_factory(ni_k_edge_references(), sink=sink, outcomes=attached.outcomes)
    from ssb_beamline.callbacks import xanes_live_factory
    from ssb_beamline.profiles.standard import standard_post_processors

    return xanes_live_factory(ni_k_edge_references(), sink=sink, on_update=attached._notify,
                              outcomes=attached.outcomes,
                              post_processors=standard_post_processors())  # fmt: skip
