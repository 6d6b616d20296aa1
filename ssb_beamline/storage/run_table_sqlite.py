"""The runs table read straight from the data directory's SQLite catalog, without a server.

``ssb-beamline runs`` on the embedded default needs no tiled server: the catalog
(``<data dir>/catalog.db``, tiled's SQL schema) holds every run's start and stop
documents and each results version. Reading it with the standard library's
``sqlite3`` in read-only mode answers in a fraction of a second even when no
server runs (starting one costs 10-40 s of CPU). SQLite serves a consistent
snapshot to a reader while a server writes (the catalog is in WAL mode), and a
read-only connection cannot change it.

tiled's catalog schema is internal to tiled, so this reader only runs on the
schema revisions it was written for (:data:`KNOWN_SCHEMAS`, tiled's alembic
revision); on any other, or any SQLite error, :func:`catalog_listing` returns
None and the command asks a server as before. The rows are the same as those
:func:`~.run_table.list_runs` reads over HTTP: runs in tiled's default order
(insertion), the same metadata fields, a version complete when it holds every
key of its ``contents``.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> catalog_listing(Path(tempfile.mkdtemp()) / "catalog.db", limit=5) is None  # no catalog
True
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

__all__ = ["KNOWN_SCHEMAS", "catalog_listing", "connect_catalog"]

logger = logging.getLogger(__name__)

#: tiled catalog schema revisions (alembic) this reader understands (tiled 0.2.x).
KNOWN_SCHEMAS = frozenset({"917dbbcfc4b1"})

#: The run metadata fields of the table (as ``run_table._RUN_FIELDS`` selects them).
_FIELDS = {
    "scan_id": "$.start.scan_id",
    "plan": "$.start.plan_name",
    "sample": "$.start.sample",
    "time": "$.start.time",
    "planned": "$.start.num_points",
    "shape": "$.start.shape",
    "stop_status": "$.stop.exit_status",
    "events": "$.stop.num_events",
    "results": "$.results.versions",
}
_RUNS = (
    "SELECT n.key, " + ", ".join(f"n.metadata -> '{path}'" for path in _FIELDS.values())
    + " FROM nodes n WHERE n.parent = ? ORDER BY n.id"
)  # fmt: skip
_VERSIONS = """
SELECT r.key, v.key, v.metadata -> '$.contents',
       (SELECT count(*) FROM nodes c WHERE c.parent = v.id)
FROM nodes r JOIN nodes v ON v.parent = r.id
WHERE r.parent = ? AND r.key IN ({marks})
"""


def _container(db: sqlite3.Connection, key: str) -> int | None:
    found = db.execute("SELECT id FROM nodes WHERE parent = 0 AND key = ?", (key,)).fetchone()
    return None if found is None else found[0]


def _versions(db: sqlite3.Connection, uids: list[str]) -> dict[str, tuple[tuple[str, bool], ...]]:
    results = _container(db, "results")
    found: dict[str, list[tuple[str, bool]]] = {}
    for first in range(0, len(uids) if results is not None else 0, 500):  # SQLite's ? limit
        chunk = uids[first : first + 500]
        query = _VERSIONS.format(marks=", ".join("?" * len(chunk)))
        for uid, key, contents, count in db.execute(query, (results, *chunk)):
            if key.startswith("v") and key[1:].isdigit():
                listed = json.loads(contents) if contents else None
                complete = not isinstance(listed, list) or count >= len(listed)
                found.setdefault(uid, []).append((key, complete))
    return {u: tuple(sorted(v, key=lambda vc: int(vc[0][1:]))) for u, v in found.items()}


def connect_catalog(catalog: str | Path) -> sqlite3.Connection | None:
    """A read-only connection to tiled's SQLite catalog, if its schema is one read here.

    Parameters
    ----------
    catalog : path
        tiled's SQLite catalog, ``<data dir>/catalog.db``.

    None when the catalog is missing, cannot be opened, or its schema revision is
    not in :data:`KNOWN_SCHEMAS` (the caller then asks a server).
    """
    path = Path(catalog)
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error:
        return None
    try:
        (schema,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except (sqlite3.Error, TypeError, ValueError) as exc:
        logger.info("reading %s directly failed (%s): asking the server", path, exc)
        db.close()
        return None
    if schema not in KNOWN_SCHEMAS:
        logger.info("catalog schema %s is not one the direct reader knows", schema)
        db.close()
        return None
    return db


def catalog_listing(
    catalog: str | Path, *, limit: int
) -> tuple[dict[str, dict], dict[str, tuple[tuple[str, bool], ...]], int] | None:
    """``(metadata by uid, versions by uid, total)`` of the newest ``limit`` runs (0: all).

    Parameters
    ----------
    catalog : path
        tiled's SQLite catalog, ``<data dir>/catalog.db`` (opened read-only).
    limit : int
        How many of the newest runs; 0: every run.

    None when the catalog is missing, of an unknown schema, or cannot be read.
    """
    path = Path(catalog)
    db = connect_catalog(path)
    if db is None:
        return None
    try:
        raw = _container(db, "raw")
        if raw is None:
            return {}, {}, 0
        rows = db.execute(_RUNS, (raw,)).fetchall()
        total = len(rows)
        if limit > 0:
            rows = rows[-limit:]
        metas = {
            key: {name: json.loads(v) for name, v in zip(_FIELDS, values, strict=True) if v}
            for key, *values in rows
        }
        with_results = [uid for uid, md in metas.items() if md.get("results")]
        return metas, _versions(db, with_results), total
    except (sqlite3.Error, TypeError, ValueError) as exc:
        logger.info("reading %s directly failed (%s): asking the server", path, exc)
        return None
    finally:
        db.close()
