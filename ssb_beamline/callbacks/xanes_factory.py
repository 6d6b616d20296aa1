"""The ``RunRouter`` factory of the live XANES analysis (one callback per ``xanes_scan`` run)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .xanes_live import XanesLiveAnalysis
from .xanes_prepare import ResultPreparer
from .xanes_results import LiveOutcome, LiveUpdate, MapPostProcessor, ResultSink

__all__ = ["xanes_live_factory"]


def xanes_live_factory(
    references: Any,
    *,
    sink: ResultSink | None = None,
    on_update: Callable[[LiveUpdate], None] | None = None,
    outcomes: list[LiveOutcome] | None = None,
    post_processors: Sequence[MapPostProcessor] = (),
) -> Callable[[str, dict], tuple[list, list]]:
    """A ``RunRouter`` factory: one :class:`XanesLiveAnalysis` per ``xanes_scan`` run.

    Each run's :class:`LiveOutcome` is appended to ``outcomes`` when given.

    Parameters
    ----------
    references : (K, N) array or sequence of reference spectra
        End members for the linear-combination fit (index 0 reduced, last oxidised),
        passed to every :class:`XanesLiveAnalysis`.
    sink : ResultSink, optional
        Where each run's final maps are published (keyword only); None keeps them in
        the outcome only.
    on_update : callable, optional
        Called with a :class:`LiveUpdate` after every image of every run (for a
        progress display); an exception in it ends that run's live analysis
        (logged and listed in the outcome's ``errors``), never the scan.
    outcomes : list of LiveOutcome, optional
        Each run's :class:`LiveOutcome` is appended here at its start document.
    post_processors : sequence of MapPostProcessor, default ()
        Analyses of the final maps (particle statistics, ...), published with them.

    Returns
    -------
    callable
        ``factory(name, start_doc) -> (callbacks, [])`` for
        ``event_model.RunRouter``; runs of other plans get nothing.
    """

    def factory(name: str, start_doc: dict) -> tuple[list, list]:
        if start_doc.get("plan_name") != "xanes_scan":
            return [], []
        callback = XanesLiveAnalysis(
            references, sink=sink, on_update=on_update, post_processors=post_processors
        )
        if outcomes is not None:
            outcomes.append(callback.outcome)
        if sink is None:
            return [callback], []
        # after the analysis: it creates the results version while the scan runs
        preparer = ResultPreparer(sink, references, callback.keep_normalized, post_processors)
        return [callback, preparer], []

    return factory
