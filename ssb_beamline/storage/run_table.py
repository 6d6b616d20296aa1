"""One row per stored run, for ``ssb-beamline runs``: status, points, result versions.

A row says what a scientist needs to trust a run: its exit status (``success``,
``abort``, ``fail`` from the stop document; ``open`` while a writer still appends
to it; ``syncing`` when its documents are journaled but not all in tiled yet), the
points done and planned, and each results version with whether it was stored
completely (a version whose upload was cut short lists fewer children than its
``contents``).

The rows are read with a few HTTP requests of tiled's search API (one page of runs
with only the metadata fields shown, then one request per run with results, in
parallel) with the standard library's HTTP client, rather than with the tiled
Python client: importing the client (and httpx, numpy) and walking
``runs[uid].metadata`` one request per run took most of the command's time. On
the embedded default, :func:`list_runs_in_catalog` reads the same fields from the
data directory's SQLite catalog without any server (:mod:`.run_table_sqlite`). The
journal's files (read here without importing :mod:`.journal` and numpy) add the
runs that tiled does not have yet.

Examples
--------
>>> row = RunRow(uid="0123abcd", scan_id=7, plan="xanes_scan", sample="NMC811",
...              status="success", points_done=41, points_planned=41, time=0.0,
...              results=(("v1", True), ("v2", False)))
>>> row.results_text()
'v1, v2 (partial)'
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .tiled_http import PAGE_LIMIT, TiledHttp, TiledHttpError

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunRow", "list_runs", "list_runs_in_catalog"]

logger = logging.getLogger(__name__)

#: Only these parts of each run's metadata travel (a start document can be large).
_RUN_FIELDS = (
    "{scan_id: start.scan_id, plan: start.plan_name, sample: start.sample, time: start.time, "
    "planned: start.num_points, shape: start.shape, stop_status: stop.exit_status, "
    "events: stop.num_events, results: results.versions}"
)


@dataclass(frozen=True)
class RunRow:
    """What ``ssb-beamline runs`` shows of one run.

    Attributes
    ----------
    uid : str
        Start-document uid.
    scan_id : int or None
        ``start.scan_id`` (None if the start document has none).
    plan : str
        ``start.plan_name`` (e.g. ``"xanes_scan"``), "" if missing.
    sample : str
        ``start.sample["name"]`` (or ``start.sample`` itself), "" if missing.
    status : str
        ``success``, ``abort`` or ``fail`` (the stop document); ``open`` while a
        writer appends to the run; ``syncing`` while journaled documents wait.
    points_done : int or None
        Events of the ``primary`` stream (else of every stream but dark, flat and
        baseline); None before the stop document.
    points_planned : int or None
        ``start.num_points``, else the product of ``start.shape``; None if neither.
    time : float
        ``start.time``, Unix seconds (0.0 if missing).
    results : tuple of (str, bool)
        Each results version and whether it was stored completely, oldest first.
    """

    uid: str
    scan_id: int | None
    plan: str
    sample: str
    status: str
    points_done: int | None
    points_planned: int | None
    time: float
    results: tuple[tuple[str, bool], ...]  # (version, stored completely), oldest first

    def results_text(self) -> str:
        """``v1, v2 (partial)``; ``-`` when there are none."""
        return ", ".join(v + ("" if ok else " (partial)") for v, ok in self.results) or "-"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``results`` as a list of ``{version, complete}``)."""
        out = asdict(self)
        out["results"] = [{"version": v, "complete": ok} for v, ok in self.results]
        return out


def _sample_name(sample: Any) -> str:
    if isinstance(sample, dict):
        return str(sample.get("name", "") or "")
    return "" if sample is None else str(sample)


def _planned(md: dict) -> int | None:
    if md.get("planned") is not None:
        return int(md["planned"])
    shape = md.get("shape")
    if isinstance(shape, list) and shape and all(isinstance(n, int) for n in shape):
        total = 1
        for n in shape:
            total *= n
        return total
    return None


def _done(md: dict) -> int | None:
    events = md.get("events")
    if not isinstance(events, dict):
        return None
    if "primary" in events:
        return int(events["primary"])
    primary = [int(n) for name, n in events.items() if str(name).startswith("primary")]
    if primary:  # primary_000, primary_001, ... (one per holotomography distance)
        return sum(primary)
    return sum(int(n) for name, n in events.items() if name not in ("dark", "flat", "baseline"))


#: The server refused or failed a request of the run list (``status``: HTTP code).
RunListError = TiledHttpError


def _versions(api: TiledHttp, uid: str) -> tuple[tuple[str, bool], ...]:
    """Each results version of ``uid`` and whether all its ``contents`` are stored."""
    try:
        body = api.search(f"results/{uid}", fields=["metadata", "structure"], omit_links=True,
                          select_metadata="{contents: contents}")  # fmt: skip
    except RunListError:
        return ()
    found = []
    for item in body.get("data", []):
        key = item["id"]
        if not (key.startswith("v") and key[1:].isdigit()):
            continue
        attrs = item.get("attributes", {})
        contents = _selected(item).get("contents")
        count = (attrs.get("structure") or {}).get("count")
        complete = contents is None or count is None or count >= len(contents)
        found.append((key, bool(complete)))
    return tuple(sorted(found, key=lambda vc: int(vc[0][1:])))


def _journal_status(journal_dir: Path | None) -> tuple[dict[str, str], dict[str, dict]]:
    """``{uid: open|syncing}`` of journaled runs not all in tiled, and their start docs."""
    if journal_dir is None or not Path(journal_dir).is_dir():
        return {}, {}
    status, starts = {}, {}
    for path in Path(journal_dir).glob("*.jsonl"):  # as DocumentJournal.pending()
        if path.name.endswith(".synced.jsonl"):
            continue
        uid = path.name[: -len(".jsonl")]
        status[uid] = "open" if _being_written(path) else "syncing"
        try:
            with path.open(encoding="utf-8") as f:
                record = json.loads(f.readline())
            if record.get("name") == "start":
                starts[uid] = record["doc"]
        except (OSError, ValueError, KeyError):
            logger.debug("no readable start document in the journal of %s", uid)
    return status, starts


def _being_written(path: Path) -> bool:
    """Whether a live writer holds the journal file's lock (DocumentJournal.is_being_written)."""
    if fcntl is None:
        return False
    try:
        with path.open("a", encoding="utf-8") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def _selected(item: dict) -> dict:
    """The metadata fields ``select_metadata`` asked for (tiled nests them in ``selected``)."""
    metadata = item.get("attributes", {}).get("metadata") or {}
    return metadata.get("selected", metadata) or {}


def _row(uid: str, md: dict, status: str | None, results) -> RunRow:
    if status is None:
        status = str(md.get("stop_status") or "open")
    return RunRow(
        uid=uid, scan_id=md.get("scan_id"), plan=str(md.get("plan") or ""),
        sample=_sample_name(md.get("sample")), status=status, points_done=_done(md),
        points_planned=_planned(md), time=float(md.get("time") or 0.0), results=results,
    )  # fmt: skip


def list_runs(
    url: str,
    api_key: str | None,
    *,
    limit: int = 50,
    journal_dir: str | Path | None = None,
    timeout_s: float = 30.0,
) -> tuple[list[RunRow], int]:
    """The newest ``limit`` runs (0: all) oldest first, and how many tiled holds.

    Runs only in the journal (not in tiled yet) are added as ``syncing`` / ``open``.

    Parameters
    ----------
    url : str
        The tiled server, ``http://HOST:PORT/api/v1``.
    api_key : str or None
        Its API key.
    limit : int
        How many of the newest runs; 0: every run.
    journal_dir : path, optional
        The document journal whose not yet synced runs are added.
    timeout_s : float
        Seconds to wait for each answer.

    Raises
    ------
    RunListError
        If the server does not answer or refuses the key.
    """
    api = TiledHttp(url, api_key, timeout_s)
    try:
        total = int(api.search("raw", fields="count", **{"page[limit]": 0})["meta"]["count"])
    except RunListError as exc:
        if exc.status != 404:
            raise
        total = 0  # a fresh data directory: no `raw` container yet
    first = 0 if limit <= 0 else max(0, total - limit)
    items: list[dict] = []
    while total and first + len(items) < total:
        page = {"page[offset]": first + len(items), "page[limit]": PAGE_LIMIT}
        body = api.search(
            "raw", fields="metadata", omit_links=True, select_metadata=_RUN_FIELDS, **page
        )
        if not body.get("data"):
            break
        items.extend(body["data"])
    metas = {item["id"]: _selected(item) for item in items}
    with_results = [uid for uid, md in metas.items() if md.get("results")]
    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = dict(zip(with_results, pool.map(lambda u: _versions(api, u), with_results),
                            strict=True))  # fmt: skip
    return _rows(metas, versions, journal_dir, limit), total


def list_runs_in_catalog(
    catalog: str | Path, *, limit: int = 50, journal_dir: str | Path | None = None
) -> tuple[list[RunRow], int] | None:
    """As :func:`list_runs`, read from a data directory's SQLite catalog without a server.

    Parameters
    ----------
    catalog : path
        The catalog, ``<data dir>/catalog.db``.
    limit : int
        How many of the newest runs; 0: every run.
    journal_dir : path, optional
        The document journal whose not yet synced runs are added.

    None if the catalog cannot be read directly (see :mod:`.run_table_sqlite`).
    """
    from .run_table_sqlite import catalog_listing

    found = catalog_listing(catalog, limit=limit)
    if found is None:
        return None
    metas, versions, total = found
    return _rows(metas, versions, journal_dir, limit), total


def _rows(metas: dict[str, dict], versions: dict, journal_dir, limit: int) -> list[RunRow]:
    """The table's rows: tiled's runs with the journal's status, and journaled-only runs."""
    journaled, starts = _journal_status(Path(journal_dir) if journal_dir else None)
    rows = []
    for uid, md in metas.items():
        stopped = md.get("stop_status") is not None
        status = journaled.get(uid) if uid in journaled else None
        if stopped and status == "open":  # the writer is finishing: all documents taken
            status = "syncing"
        rows.append(_row(uid, md, status, versions.get(uid, ())))
    for uid, start in starts.items():
        if uid not in metas:  # journaled only: tiled has none of it yet
            md = {"scan_id": start.get("scan_id"), "plan": start.get("plan_name"),
                  "sample": start.get("sample"), "time": start.get("time"),
                  "planned": start.get("num_points"), "shape": start.get("shape")}  # fmt: skip
            rows.append(_row(uid, md, journaled[uid], ()))
    rows.sort(key=lambda r: r.time)
    return rows[-limit:] if limit > 0 else rows
