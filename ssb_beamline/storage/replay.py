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
#: Where frames come from during a replay (see :func:`run_documents`).
FILL_MODES = ("auto", "always", "never")


class ReplayError(ValueError):
    """A run cannot be replayed; the message says why and what to do."""


def resolve_uid(raw, partial: str) -> str:
    """The full uid of the stored run whose uid is or starts with ``partial``."""
    try:  # a CatalogOfBlueskyRuns client also resolves a unique partial uid here
        start = raw[partial].metadata.get("start") or {}
        return start.get("uid") or partial
    except (KeyError, ValueError):  # not a key; or ambiguous / too short for the catalogue
        pass
    matches = [uid for uid in raw if uid.startswith(partial)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ReplayError(
            f"No stored run has a uid starting with {partial!r}; list them with "
            "`ssb-beamline runs`."
        )
    shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
    raise ReplayError(f"{partial!r} matches {len(matches)} runs ({shown}); give more of the uid.")


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


def _scan_id(value: object) -> int:
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    raise ReplayError(
        f"scan_id must be a whole number (the scan number `ssb-beamline runs` lists), "
        f"not {value!r}."
    )


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
    t0, t1 = _timestamp(since), _timestamp(until)
    if t0 is not None and t1 is not None and t0 > t1:
        raise ReplayError(
            f"The time range is empty: since={since!r} is after until={until!r}. "
            "Swap them (--since is the earlier time)."
        )
    results = raw
    if scan_id is not None:
        results = results.search(Eq("start.scan_id", _scan_id(scan_id)))
    if plan_name is not None:
        results = results.search(Eq("start.plan_name", plan_name))
    if sample is not None:
        results = results.search(Like("start.sample.name", f"%{sample}%"))
    if t0 is not None:
        results = results.search(Comparison("ge", "start.time", t0))
    if t1 is not None:
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

    def __init__(self, node, uid: str, stream: str, key: str, shape: tuple[int, ...]) -> None:
        self.node = node
        self.where = f"run {uid}, stream {stream!r}, {key!r}"
        self.shape = shape
        self._start = 0
        self._block: np.ndarray | None = None

    def frame(self, index: int) -> np.ndarray:
        block = self._block
        if block is None or not self._start <= index < self._start + len(block):
            self._start = index
            try:
                self._block = block = self.node[index : index + FILL_BLOCK]
            except Exception as exc:  # tiled answers 500 when it cannot read the file
                first_line = (str(exc).splitlines() or [""])[0]
                raise ReplayError(
                    f"tiled could not serve frame {index} of {self.where} "
                    f"({type(exc).__name__}: {first_line}). The server cannot read the detector "
                    "file (moved, deleted or truncated): restore it where the server "
                    "reads it, then replay again."
                ) from exc
            if len(block) == 0:
                raise ReplayError(
                    f"{self.where} has {len(self.node)} frames in tiled; its events ask for "
                    f"frame {index}. The run's detector file is truncated."
                )
        frame = block[index - self._start]
        if self.shape and tuple(frame.shape[-2:]) != self.shape:
            raise ReplayError(
                f"Frame {index} of {self.where} is {frame.shape}, but the run's descriptor "
                f"says {self.shape}: the stored frames do not match the run's description."
            )
        return frame


def _frame_shape(data_key: dict) -> tuple[int, ...]:
    """(H, W) of an external data key's frames (descriptors give (1, H, W) or (H, W))."""
    shape = tuple(int(n) for n in data_key.get("shape") or ())
    return shape[-2:] if len(shape) >= 2 else ()


def _check_frame_shapes(uid: str, descriptors: list[dict]) -> None:
    """Every stream (dark, flat, primary) must describe one data key's frames alike."""
    seen: dict[str, tuple[tuple[int, ...], str]] = {}
    for doc in descriptors:
        for key, data_key in doc["data_keys"].items():
            shape = _frame_shape(data_key) if data_key.get("external") else ()
            if not shape:
                continue
            first = seen.setdefault(key, (shape, doc["name"]))
            if first[0] != shape:
                raise ReplayError(
                    f"Run {uid}: {key!r} frames are {shape} in stream {doc['name']!r} but "
                    f"{first[0]} in stream {first[1]!r}. Darks, flats and images must have "
                    "the same shape (the detector ROI or binning changed); this run cannot "
                    "be analysed as one XANES stack."
                )


def _unreadable_files(uid: str, resources: list[dict]) -> None:
    missing = [doc["uri"] for doc in resources if _local_path(doc["uri"]) is None]
    if missing:
        raise ReplayError(
            f"Run {uid}: fill='never' reads frames from the detector files, but "
            f"{len(missing)} of them cannot be read here (first: {missing[0]}). Use "
            "fill='auto' or 'always' (--fill) to fetch the frames from tiled instead."
        )


def check_run_closed(run) -> str:
    """The uid of a stored run that has its stop document; `ReplayError` otherwise."""
    uid = (run.metadata.get("start") or {}).get("uid", "?")
    if not run.metadata.get("stop"):
        raise ReplayError(
            f"Run {uid} is still open (it has no stop document): it is being acquired or "
            "was interrupted before it closed. Wait for it to finish; an interrupted run "
            "can be replayed after `ssb-beamline sync` closes it."
        )
    return uid


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
        If the run is still open (no stop document), ``fill`` is not a known mode,
        or its frames cannot be read (files missing with ``fill="never"``, or tiled
        cannot serve them).
    """
    if fill not in FILL_MODES:
        raise ReplayError(f"fill must be one of {FILL_MODES}, not {fill!r}.")
    uid = check_run_closed(run)
    docs = [(name, dict(doc)) for name, doc in run.documents()]
    _check_frame_shapes(uid, [doc for name, doc in docs if name == "descriptor"])
    resources = [doc for name, doc in docs if name == "stream_resource"]
    if fill == "never":
        _unreadable_files(uid, resources)
        do_fill = False
    elif fill == "always":
        do_fill = True
    else:
        do_fill = any(_local_path(doc["uri"]) is None for doc in resources)
    if not do_fill:
        yield from docs
        return
    logger.info("run %s: frames are fetched from tiled (files not readable here)", uid)
    external: dict[str, tuple[str, dict[str, tuple[int, ...]]]] = {}  # descriptor -> keys
    fetchers: dict[tuple[str, str], _FrameFetcher] = {}
    for name, doc in docs:
        if name == "descriptor":
            keys = {k: _frame_shape(v) for k, v in doc["data_keys"].items() if v.get("external")}
            external[doc["uid"]] = (doc["name"], keys)
        elif name in ("stream_resource", "stream_datum"):
            continue
        elif name == "event" and external.get(doc["descriptor"], ("", {}))[1]:
            stream, keys = external[doc["descriptor"]]
            data, filled = dict(doc["data"]), dict(doc.get("filled", {}))
            for key, shape in keys.items():
                fetcher = fetchers.get((stream, key))
                if fetcher is None:
                    try:
                        node = run[stream][key]
                    except KeyError:
                        raise ReplayError(
                            f"Run {uid} lists {key!r} in stream {stream!r} but tiled has "
                            "no such array: the run was stored without its frames."
                        ) from None
                    fetcher = fetchers[(stream, key)] = _FrameFetcher(node, uid, stream, key, shape)
                data[key] = fetcher.frame(doc["seq_num"] - 1)
                filled[key] = True
            yield name, {**doc, "data": data, "filled": filled}
            continue
        yield name, doc


def paced(docs: Iterable[tuple[str, dict]], speed: float | None) -> Iterator[tuple[str, dict]]:
    """Yield documents with their recorded spacing divided by ``speed`` (None: no waiting)."""
    if speed is not None and not speed > 0:
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
