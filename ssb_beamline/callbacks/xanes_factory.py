"""The ``RunRouter`` factory of the live XANES analysis (one callback per ``xanes_scan`` run)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .xanes_live import XanesLiveAnalysis
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
    """

    def factory(name: str, start_doc: dict) -> tuple[list, list]:
        if start_doc.get("plan_name") != "xanes_scan":
            return [], []
        callback = XanesLiveAnalysis(
            references, sink=sink, on_update=on_update, post_processors=post_processors
        )
        if outcomes is not None:
            outcomes.append(callback.outcome)
        return [callback], []

    return factory
