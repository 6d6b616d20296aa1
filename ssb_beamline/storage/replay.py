"""Read archived runs back from tiled as the document stream they were recorded as.

The documents come from the server's bluesky exporter (``run.documents()``). Frames
are left as StreamResource/StreamDatum references when their files can be read
from here (the same machine or a shared file system), one resource per file and
in bounded blocks (:mod:`.replay_files`), and are otherwise fetched from tiled
and filled into the events (:mod:`.replay_fill`), so a replay works
against any server. The checks on a run (:mod:`.run_checks`) and the selection of
runs (:mod:`.run_selection`) are importable from here too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Literal

from ssb_beamline._memory import keep_freed_memory, no_huge_page_requests

from .replay_files import per_file_documents, stream_file_uris
from .replay_fill import filled_documents
from .run_checks import (
    ReplayError,
    check_files_readable,
    check_frame_shapes,
    check_replayable,
    check_run_closed,
    check_speed,
    readable_path,
)
from .run_selection import MAX_SCAN_ID, check_uid, describe, resolve_uid, select_runs

__all__ = [
    "FILL_MODES",
    "MAX_SCAN_ID",
    "ReplayError",
    "check_replayable",
    "check_run_closed",
    "check_speed",
    "check_uid",
    "describe",
    "paced",
    "resolve_uid",
    "run_documents",
    "select_runs",
]

logger = logging.getLogger(__name__)

#: Where frames come from during a replay (see :func:`run_documents`).
FILL_MODES = ("auto", "always", "never")


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
    # a replay's per-energy arrays (flats, frames) then reuse warm pages (~2x faster
    # on a VM that returns freed pages to its host), and fresh ones cost no huge-page
    # compaction (2-5x cheaper there); see ssb_beamline._memory
    keep_freed_memory()
    no_huge_page_requests()
    docs = [(name, dict(doc)) for name, doc in run.documents()]
    check_frame_shapes(uid, [doc for name, doc in docs if name == "descriptor"])
    resources = [doc for name, doc in docs if name == "stream_resource"]
    files = stream_file_uris(run, docs) if resources and fill != "always" else {}
    every_file = [{"uri": uri} for uris in files.values() for uri in uris]
    if fill == "never":
        check_files_readable(uid, every_file)
        do_fill = False
    elif fill == "always":
        do_fill = True
    else:
        do_fill = any(readable_path(doc["uri"]) is None for doc in every_file)
    if not do_fill:  # one StreamResource per file, frames read a block at a time
        yield from per_file_documents(docs, files)
        return
    logger.info("run %s: frames are fetched from tiled (files not readable here)", uid)
    yield from filled_documents(run, uid, docs)


def paced(docs: Iterable[tuple[str, dict]], speed: float | None) -> Iterator[tuple[str, dict]]:
    """Yield documents with their recorded spacing divided by ``speed`` (None: no waiting).

    Parameters
    ----------
    docs : iterable of (name, document)
        The run's documents in recorded order (e.g. :func:`run_documents`); their
        ``time`` (Unix seconds) sets the pace, documents without one (StreamDatum)
        pass at once, and a time earlier than the previous one never waits.
    speed : float or None
        Pace relative to the recording (1.0 as recorded, 10 ten times faster);
        None as fast as possible. Zero, negative or NaN raises ``ReplayError``
        before any document.
    """
    check_speed(speed)
    previous: float | None = None
    for name, doc in docs:
        t = doc.get("time")
        if speed is not None and t is not None:
            if previous is not None and t > previous:
                time.sleep((t - previous) / speed)
            previous = t
        yield name, doc
