"""Read archived runs back from tiled as the document stream they were recorded as.

The documents come from the server's bluesky exporter (``run.documents()``). Frames
are left as StreamResource/StreamDatum references when their files can be read
from here (the same machine or a shared file system), and are otherwise fetched
from tiled and filled into the events, so a replay works against any server.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import numpy as np

logger = logging.getLogger(__name__)

#: Frames fetched from tiled per request when filling events.
FILL_BLOCK = 8


class ReplayError(ValueError):
    """A run cannot be replayed; the message says why and what to do."""


def resolve_uid(raw, partial: str) -> str:
    """The full uid of the stored run whose uid is or starts with ``partial``."""
    if partial in raw:
        return partial
    matches = [uid for uid in raw if uid.startswith(partial)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ReplayError(
            f"No stored run has a uid starting with {partial!r}; list them with "
            "`ssb-beamline runs`."
        )
    raise ReplayError(f"{partial!r} matches {len(matches)} runs; give more of the uid.")


def _timestamp(value: str | float | dt.datetime | None) -> float | None:
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ReplayError(
                f"{value!r} is not a date/time; use ISO format, e.g. 2026-11-26T14:00."
            ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def select_runs(
    raw,
    uids: Iterable[str] = (),
    *,
    scan_id: int | None = None,
    plan_name: str | None = None,
    sample: str | None = None,
    since: str | float | dt.datetime | None = None,
    until: str | float | dt.datetime | None = None,
) -> list[str]:
    """Uids of stored runs: the given uids (or unique prefixes), else those matching.

    Filters combine (and): ``scan_id``, ``plan_name``, ``sample`` (a substring of
    the sample name), and the start time between ``since`` and ``until`` (ISO
    strings, datetimes or UNIX seconds; naive times are UTC). Runs come oldest first.

    Raises
    ------
    ReplayError
        For an unknown or ambiguous uid, or when nothing matches the filters.
    """
    from tiled.queries import Comparison, Eq, Like

    chosen = [resolve_uid(raw, u) for u in uids]
    if chosen:
        return chosen
    results = raw
    if scan_id is not None:
        results = results.search(Eq("start.scan_id", int(scan_id)))
    if plan_name is not None:
        results = results.search(Eq("start.plan_name", plan_name))
    if sample is not None:
        results = results.search(Like("start.sample.name", f"%{sample}%"))
    if (t0 := _timestamp(since)) is not None:
        results = results.search(Comparison("ge", "start.time", t0))
    if (t1 := _timestamp(until)) is not None:
        results = results.search(Comparison("le", "start.time", t1))
    found = list(results)
    if not found:
        raise ReplayError(
            "No stored run matches the selection; check the filters with `ssb-beamline runs`."
        )
    return found


def _local_path(uri: str) -> Path | None:
    parts = urlsplit(uri)
    if parts.scheme not in ("file", ""):
        return None
    path = Path(unquote(parts.path))
    return path if path.exists() else None


class _FrameFetcher:
    """Frames of one stream's external data key, fetched from tiled in blocks."""

    def __init__(self, node) -> None:
        self.node = node
        self._start = 0
        self._block: np.ndarray | None = None

    def frame(self, index: int) -> np.ndarray:
        block = self._block
        if block is None or not self._start <= index < self._start + len(block):
            self._start = index
            self._block = block = self.node[index : index + FILL_BLOCK]
        return block[index - self._start]


def run_documents(
    run, *, fill: Literal["auto", "always", "never"] = "auto"
) -> Iterator[tuple[str, dict]]:
    """The documents of a stored run, in recorded order, ready to replay.

    Parameters
    ----------
    run : a tiled ``BlueskyRun`` client
    fill : ``"auto"`` fills frames from tiled only when their files are not
        readable here; ``"always"``/``"never"`` force it.

    Raises
    ------
    ReplayError
        If the run is still open (no stop document), or its frames cannot be read.
    """
    start = run.metadata.get("start") or {}
    uid = start.get("uid", "?")
    if not run.metadata.get("stop"):
        raise ReplayError(
            f"Run {uid} is still open (it has no stop document): it is being acquired or "
            "was interrupted before it closed. Wait for it to finish; an interrupted run "
            "can be replayed after `ssb-beamline sync` closes it."
        )
    docs = [(name, dict(doc)) for name, doc in run.documents()]
    resources = [doc for name, doc in docs if name == "stream_resource"]
    if fill == "never":
        do_fill = False
    elif fill == "always":
        do_fill = True
    else:
        do_fill = any(_local_path(doc["uri"]) is None for doc in resources)
    if not do_fill:
        yield from docs
        return
    logger.info("run %s: frames are fetched from tiled (files not readable here)", uid)
    external: dict[str, tuple[str, list[str]]] = {}  # descriptor -> (stream, keys)
    fetchers: dict[tuple[str, str], _FrameFetcher] = {}
    for name, doc in docs:
        if name == "descriptor":
            keys = [k for k, v in doc["data_keys"].items() if v.get("external")]
            external[doc["uid"]] = (doc["name"], keys)
        elif name in ("stream_resource", "stream_datum"):
            continue
        elif name == "event" and external.get(doc["descriptor"], ("", []))[1]:
            stream, keys = external[doc["descriptor"]]
            data, filled = dict(doc["data"]), dict(doc.get("filled", {}))
            for key in keys:
                fetcher = fetchers.get((stream, key))
                if fetcher is None:
                    try:
                        node = run[stream][key]
                    except KeyError:
                        raise ReplayError(
                            f"Run {uid} lists {key!r} in stream {stream!r} but tiled has "
                            "no such array: the run was stored without its frames."
                        ) from None
                    fetcher = fetchers[(stream, key)] = _FrameFetcher(node)
                data[key] = fetcher.frame(doc["seq_num"] - 1)
                filled[key] = True
            yield name, {**doc, "data": data, "filled": filled}
            continue
        yield name, doc


def paced(docs: Iterable[tuple[str, dict]], speed: float | None) -> Iterator[tuple[str, dict]]:
    """Yield documents with their recorded spacing divided by ``speed`` (None: no waiting)."""
    if speed is not None and speed <= 0:
        raise ReplayError(f"speed must be > 0 (1.0 is the original timing), not {speed}.")
    previous: float | None = None
    for name, doc in docs:
        t = doc.get("time")
        if speed is not None and t is not None:
            if previous is not None and t > previous:
                time.sleep((t - previous) / speed)
            previous = t
        yield name, doc


def describe(run) -> dict[str, Any]:
    """A one-line summary of a stored run's start document (for listings)."""
    start = run.metadata.get("start", {})
    return {key: start.get(key) for key in ("uid", "scan_id", "plan_name", "time", "num_points")}
