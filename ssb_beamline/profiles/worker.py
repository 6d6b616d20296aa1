"""The live analysis as its own process: documents over 0MQ in, results into tiled.

``ssb-beamline analyze --zmq HOST:PORT`` listens to a 0MQ proxy with bluesky's
:class:`~bluesky.callbacks.zmq.RemoteDispatcher` and runs the SAME ``RunRouter``
factories as the in-process profiles (:func:`analysis_factories`: XANES with the
standard post-processors, tomography, holotomography), storing results through the
same :class:`~ssb_beamline.storage.TiledResultSink`.

What bluesky's dispatcher does not do, and this module adds:

- **Never lose a document to a slow analysis.** The dispatcher only appends each
  document to an in-memory queue; one thread analyses them in order. The 0MQ socket
  is drained at once, however long an analysis takes, so the publisher's messages
  are not dropped at the high-water mark (and the publisher never waits anyway).
- **Recover what 0MQ lost.** Each run's documents are counted
  (:class:`~.run_tracker.RunTracker`); a run that arrives incomplete (the worker
  started mid-run, or was stalled long enough for 0MQ to drop messages) is not
  analysed live but from tiled once it is closed there (``run.documents()``, the
  replay path of :mod:`ssb_beamline.storage.replay`).
- **Survive being killed.** The runs in progress are recorded on disk
  (:class:`~.worker_state.WorkerState`). On start the worker analyses from tiled
  each run it was in the middle of, and every recent closed run of an analysed
  plan that has no results. Before storing it checks tiled: a run that has a
  complete result is not analysed again (nothing duplicated); a version left
  incomplete by a kill during the upload is deleted first (nothing half-stored).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from event_model import RunRouter

from ssb_beamline.callbacks import tomo_live_factory, xanes_live_factory
from ssb_beamline.callbacks.tomo_live import HOLO_PLANS, TOMO_PLANS
from ssb_beamline.profiles.run_tracker import RunTracker
from ssb_beamline.profiles.standard import standard_post_processors
from ssb_beamline.profiles.worker_state import WorkerState
from ssb_beamline.profiles.zmq_link import DEFAULT_CONNECT_TIMEOUT_S, check_zmq_address
from ssb_beamline.reference_data import ni_k_edge_references
from ssb_beamline.storage import TiledResultSink, TiledStore, TiledUnavailableError, open_store
from ssb_beamline.storage.replay import run_documents
from ssb_beamline.storage.results import (
    ResultsNotPublishedError,
    complete_versions,
    drop_incomplete_versions,
)
from ssb_beamline.storage.server_config import TILED_URI_ENV
from ssb_beamline.storage.sync import sync_results

__all__ = ["ANALYSED_PLANS", "AnalysisWorker", "analysis_factories", "run_worker"]

logger = logging.getLogger(__name__)

#: Plans the worker analyses (the factories return nothing for other plans).
ANALYSED_PLANS = frozenset({"xanes_scan", *TOMO_PLANS, *HOLO_PLANS})
#: How often runs waiting to be closed in tiled are looked at again, s.
RECHECK_S = 0.5
#: Outcomes (with their maps) kept in memory, newest last.
KEEP_OUTCOMES = 4
#: How often journaled results (tiled refused them) are offered to tiled again, s.
JOURNAL_RETRY_S = 30.0


def analysis_factories(
    sink: Any,
    outcomes: list | None = None,
    *,
    tomo_options: Mapping[str, Any] | None = None,
    holo_options: Mapping[str, Any] | None = None,
) -> list[Callable]:
    """The live analyses, as ``RunRouter`` factories (the ones the profiles subscribe).

    Parameters
    ----------
    sink : ResultSink or None
        Where every analysis publishes its results (None: kept in the outcomes).
    outcomes : list, optional
        Each run's outcome is appended here at its start document.
    tomo_options, holo_options : mapping, optional
        Keyword arguments of :class:`~ssb_beamline.callbacks.TomoLiveAnalysis` and
        :class:`~ssb_beamline.callbacks.HoloLiveAnalysis` (keyword only).

    Returns
    -------
    list of callable
        The XANES and tomography factories, for one ``RunRouter``.
    """
    references = ni_k_edge_references()
    return [
        xanes_live_factory(
            references, sink=sink, outcomes=outcomes, post_processors=standard_post_processors()
        ),
        tomo_live_factory(
            references, sink=sink, outcomes=outcomes,
            tomo_options=tomo_options, holo_options=holo_options,
        ),
    ]  # fmt: skip


def _by_worker(metadata: dict) -> bool:
    """Whether a result version was stored by an analysis worker."""
    return (metadata.get("analysed_by") or {}).get("process") == "worker"


class _TaggedSink:
    """The store's sink, recording in each result that the worker made it, and how."""

    def __init__(self, sink: TiledResultSink, recovered: bool) -> None:
        self.sink = sink
        self.tag = {
            "analysed_by": {"process": "worker", "host": socket.gethostname(), "pid": os.getpid()},
            "recovered_from_tiled": recovered,
        }
        self.journaled: set[str] = set()  # runs whose results wait in the local journal

    def slice_chunks(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The store's chunking hint for volumes."""
        return self.sink.slice_chunks(shape)

    def publish(self, run_uid, arrays, *, metadata, **kwargs) -> str:
        try:
            return self.sink.publish(run_uid, arrays, metadata={**metadata, **self.tag}, **kwargs)
        except ResultsNotPublishedError:
            self.journaled.add(run_uid)  # kept on disk; uploaded when tiled takes them
            raise


class AnalysisWorker:
    """Analyse runs from a document stream, store results in ``store``; resumable.

    Subscribe it to a ``RemoteDispatcher`` (calls only queue the document).

    Parameters
    ----------
    store : TiledStore
        Where runs are read back from and results stored.
    state_dir : path
        The worker's record of runs in progress (one worker per directory).
    recover_last : int
        On start, look at this many newest runs in tiled for ones without results.
    """

    def __init__(self, store: TiledStore, state_dir: str | Path, *, recover_last: int = 20) -> None:
        self.store = store
        self.state = WorkerState(state_dir)
        self.sink = TiledResultSink(store.results, store.journal_dir, runs=store.raw)
        self.outcomes: list = []
        self.stored: list[str] = []  # results paths stored by this process
        self._live_sink = _TaggedSink(self.sink, recovered=False)
        self._runs: dict[str, tuple[RunTracker, RunRouter]] = {}
        self._waiting: dict[str, str] = {}  # uid -> why it is analysed from tiled
        self._own: set[str] = set()  # runs whose results this worker owes
        self._journal_checked = time.monotonic()
        self._queue: queue.Queue = queue.Queue()
        self._idle = threading.Event()
        self._stop = threading.Event()
        for uid in self.state.in_progress:
            self._waiting[uid] = "the worker stopped while analysing it"
            self._own.add(uid)
        self._scan_for_unanalysed(recover_last)
        self._thread = threading.Thread(target=self._work, name="analysis-worker", daemon=True)
        self._thread.start()

    # -- intake (the dispatcher's thread): never blocks ---------------------------
    def __call__(self, name: str, doc: dict) -> None:
        """Queue a document for the worker's analysis (never blocks the caller)."""
        self._idle.clear()
        self._queue.put((name, doc))

    @property
    def pending(self) -> int:
        """Documents queued and runs waiting for tiled."""
        return self._queue.qsize() + len(self._waiting)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every queued document is handled and no run waits for tiled."""
        return self._idle.wait(timeout)

    def close(self, timeout: float = 60.0) -> None:
        """Handle what is queued (up to ``timeout``), then stop; the state stays on disk."""
        self._stop.set()
        self._thread.join(timeout)
        self.state.close()

    # -- the analysis thread ------------------------------------------------------
    def _work(self) -> None:
        while True:
            try:
                name, doc = self._queue.get(timeout=RECHECK_S)
            except queue.Empty:
                self._recover_waiting()
                self._upload_journaled()
                if not self._waiting:
                    self._idle.set()
                    if self._stop.is_set():
                        return
                continue
            try:
                self._handle(name, doc)
            except Exception:  # a worker that dies here would stop analysing everything
                logger.exception("analysis worker failed on a %s document", name)

    def _handle(self, name: str, doc: dict) -> None:
        if name == "start":
            if doc.get("plan_name") not in ANALYSED_PLANS:
                return
            # one router per run: a run found incomplete is dropped with its state
            router = RunRouter(analysis_factories(self._live_sink, self.outcomes))
            self._runs[doc["uid"]] = (RunTracker(doc), router)
            self.state.begin(doc["uid"])
            router(name, doc)
            return
        found = next(((t, r) for t, r in self._runs.values() if t.owns(name, doc)), None)
        if found is None:
            if name == "stop" and not self.state.is_done(doc.get("run_start", "")):
                self._later(doc["run_start"], "its start document never reached the worker")
            return
        tracker, router = found
        if name != "stop":
            router(name, doc)
            return
        del self._runs[tracker.uid]
        missing = tracker.missing(doc)
        if missing:  # never publish a result computed from part of the run
            self._later(tracker.uid, "documents lost on the way: " + "; ".join(missing))
            return
        router(name, doc)
        outcome = next((o for o in reversed(self.outcomes) if o.run_uid == tracker.uid), None)
        del self.outcomes[:-KEEP_OUTCOMES]  # they hold the maps: keep only the last few
        if outcome is not None and outcome.stored_at:
            self.stored.append(outcome.stored_at)
            self.state.finish(tracker.uid)
        elif tracker.uid in self._live_sink.journaled:  # not lost: uploaded later
            self.state.finish(tracker.uid)
        elif outcome is not None and doc.get("exit_status") == "success":
            self._later(tracker.uid, f"the live analysis failed ({'; '.join(outcome.errors)})")
        else:
            self.state.finish(tracker.uid)

    def _later(self, uid: str, why: str) -> None:
        if uid not in self._waiting:
            logger.warning("run %s will be analysed from tiled: %s", uid, why)
        self._waiting[uid] = why
        self._own.add(uid)
        if uid not in self.state.in_progress:
            self.state.begin(uid)
        self._recover_waiting()

    def _upload_journaled(self) -> None:
        """Results journaled while tiled refused them: upload them when idle."""
        now = time.monotonic()
        if self.sink.journal is None or now - self._journal_checked < JOURNAL_RETRY_S:
            return
        self._journal_checked = now
        if self.sink.journal.pending():
            sync_results(self.store.results, self.sink.journal, runs=self.store.raw)

    # -- recovery from tiled ---------------------------------------------------
    def _scan_for_unanalysed(self, newest: int) -> None:
        """Queue recent runs of analysed plans that have no results (and were not tried)."""
        if newest <= 0:
            return
        raw = self.store.raw
        for uid in raw.keys()[-1 : -newest - 1 : -1]:  # newest first, not the whole catalogue
            if uid in self._waiting or self.state.is_done(uid):
                continue
            start = raw[uid].metadata.get("start") or {}
            if start.get("plan_name") in ANALYSED_PLANS and not complete_versions(
                self.store.results, uid
            ):
                self._waiting[uid] = "it has no results in tiled"

    def _recover_waiting(self) -> None:
        for uid in list(self._waiting):
            try:
                done = self._recover(uid)
            except Exception:
                logger.exception("run %s could not be analysed from tiled", uid)
                done = True
            if done:
                self._waiting.pop(uid, None)
                self._own.discard(uid)
                self.state.finish(uid)

    def _recover(self, uid: str) -> bool:
        """Analyse run ``uid`` from tiled; False while it is not closed there yet."""
        raw, results = self.store.raw, self.store.results
        if uid not in raw:
            return False
        run = raw[uid]
        if not run.metadata.get("stop"):
            return False  # still being acquired (or written): look again later
        dropped = drop_incomplete_versions(results, uid, _by_worker)
        if dropped:
            logger.warning("run %s: removed incomplete result version(s) %s", uid, dropped)
        # a run the worker was analysing: only its own results count (an in-process
        # analysis may have stored others); a run found without results: any count
        own_only = uid in self._own
        if complete_versions(results, uid, _by_worker if own_only else None):
            logger.info("run %s already has complete results; not analysed again", uid)
            return True
        logger.warning("analysing run %s from tiled (%s)", uid, self._waiting.get(uid, ""))
        outcomes: list = []
        router = RunRouter(analysis_factories(_TaggedSink(self.sink, recovered=True), outcomes))
        t0 = time.perf_counter()
        for name, doc in run_documents(run, fill="auto"):
            router(name, doc)
        for outcome in outcomes:
            if outcome.stored_at:
                self.stored.append(outcome.stored_at)
            logger.info(
                "run %s analysed from tiled in %.1f s: %s", uid, time.perf_counter() - t0,
                outcome.stored_at or f"failed ({'; '.join(outcome.errors)})",
            )  # fmt: skip
        return True


def run_worker(
    address: str,
    *,
    tiled_uri: str | None = None,
    data_dir: str | Path | None = None,
    state_dir: str | Path | None = None,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    recover_last: int = 20,
    on_ready: Callable[[str, str], None] | None = None,
) -> None:
    """Analyse the documents a 0MQ proxy forwards until interrupted (SIGINT / SIGTERM).

    Parameters
    ----------
    address : str
        ``HOST:PORT`` of the proxy's output (``bluesky-0MQ-proxy IN OUT``: OUT).
    tiled_uri : str
        The tiled server the RunEngine writes to (default ``$SSB_TILED_URI``).
    data_dir, state_dir : path, optional
        Local data directory (journal) and the worker's state (default
        ``<data dir>/worker``).
    connect_timeout_s : float
        How long to wait for the proxy before giving up.
    on_ready : callable, optional
        Called with the 0MQ endpoint and the tiled URI once listening.
    recover_last : int, default 20
        On start, look at this many newest runs in tiled for ones without results
        (runs missed while no worker listened) and analyse them; 0 looks at none.

    Raises
    ------
    ZmqUnavailableError
        If no proxy answers at ``address`` within ``connect_timeout_s``.
    TiledUnavailableError
        If no tiled server is named, or it does not answer.
    """
    from bluesky.callbacks.zmq import RemoteDispatcher

    endpoint = check_zmq_address(address, timeout_s=connect_timeout_s)
    uri = tiled_uri or os.environ.get(TILED_URI_ENV)
    if not uri:
        raise TiledUnavailableError(
            "The analysis worker stores results in the tiled server the RunEngine writes "
            "to: pass its URI with --tiled (or $SSB_TILED_URI), e.g. the one "
            "`ssb-beamline serve` prints."
        )
    store = open_store(uri, data_dir=data_dir)
    worker = None
    try:
        worker = AnalysisWorker(
            store, state_dir or store.journal_dir.parent / "worker", recover_last=recover_last
        )
        dispatcher = RemoteDispatcher(endpoint)
        dispatcher.subscribe(worker)

        def terminate() -> None:  # end the dispatcher's receive task cleanly
            if dispatcher._task is not None:
                dispatcher._task.cancel()

        for signum in (signal.SIGTERM, signal.SIGINT):
            dispatcher.loop.add_signal_handler(signum, terminate)
        if on_ready is not None:
            on_ready(endpoint, store.uri)
        logger.info("analysis worker listening on %s, results to %s", endpoint, store.uri)
        try:
            dispatcher.start()
        except (KeyboardInterrupt, asyncio.CancelledError):
            logger.info("analysis worker stopping; finishing the queued documents")
    finally:
        if worker is not None:
            worker.close()
        store.close()
