"""Whether the worker received every document of a run (0MQ PUB/SUB may drop some).

A subscriber that joined late, or fell behind 0MQ's high-water mark, misses
documents without being told. :class:`RunTracker` counts what arrived for one run
(events per stream, frames referenced by StreamDatum per stream and data key)
and compares it with the stop document's ``num_events``; any difference means
the live result would be computed from part of the run, so the worker analyses
the run from tiled instead.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["RunTracker"]


class RunTracker:
    """Document bookkeeping of one run, from its start document on.

    Parameters
    ----------
    start : dict
        The run's start document (its ``uid`` and ``plan_name`` are read).
    """

    def __init__(self, start: dict) -> None:
        self.uid: str = start["uid"]
        self.plan_name = start.get("plan_name")
        self.descriptors: dict[str, str] = {}  # descriptor uid -> stream name
        self._external: dict[str, set[str]] = {}  # stream -> external data keys
        self._resources: dict[str, str] = {}  # stream_resource uid -> data key
        self._events: Counter[str] = Counter()
        self._frames: Counter[tuple[str, str]] = Counter()
        self.orphans = 0  # documents that refer to something never received

    def owns(self, name: str, doc: dict) -> bool:
        """Whether ``doc`` belongs to this run (and count it if so)."""
        if name == "descriptor" and doc.get("run_start") == self.uid:
            self.descriptors[doc["uid"]] = doc["name"]
            keys = {k for k, v in doc["data_keys"].items() if v.get("external")}
            self._external.setdefault(doc["name"], set()).update(keys)
            return True
        if name == "stream_resource" and doc.get("run_start") == self.uid:
            self._resources[doc["uid"]] = doc["data_key"]
            return True
        if name == "event" and doc.get("descriptor") in self.descriptors:
            self._events[self.descriptors[doc["descriptor"]]] += 1
            return True
        if name == "stream_datum" and doc.get("descriptor") in self.descriptors:
            key = self._resources.get(doc["stream_resource"])
            if key is None:
                self.orphans += 1
            else:
                seq = doc["seq_nums"]
                stream = self.descriptors[doc["descriptor"]]
                self._frames[(stream, key)] += seq["stop"] - seq["start"]
            return True
        return name == "stop" and doc.get("run_start") == self.uid

    def missing(self, stop: dict) -> list[str]:
        """What did not arrive, by the stop document's counts (empty: the run is whole)."""
        problems = [f"{self.orphans} StreamDatum(s) of unknown resources"] if self.orphans else []
        for stream, expected in (stop.get("num_events") or {}).items():
            if stream not in self._external:
                if expected:
                    problems.append(f"stream {stream!r}: no descriptor ({expected} events)")
                continue
            events = self._events[stream]
            if events and events != expected:
                problems.append(f"stream {stream!r}: {events} of {expected} events")
            for key in sorted(self._external[stream]):
                frames = self._frames[(stream, key)]
                if frames != expected:
                    problems.append(f"stream {stream!r}, {key!r}: {frames} of {expected} frames")
            if not events and not self._external[stream] and expected:
                problems.append(f"stream {stream!r}: 0 of {expected} events")
        return problems
