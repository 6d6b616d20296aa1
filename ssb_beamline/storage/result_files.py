"""A stored run's results read from the data directory's files: ``show``/``report`` serverless.

On the embedded default (no ``--tiled``, no ``$SSB_TILED_URI``, the SQLite catalog
``<data dir>/catalog.db``) the commands need no tiled server: the catalog's
``nodes``, ``data_sources``, ``structures`` and ``assets`` tables name each
result's structure and files, which :mod:`.result_files_data` reads (Zarr
arrays, Parquet tables). Starting a server for one command costs 4-30 s of
tiled imports; this answers in a fraction of a second, and returns the same
:class:`~.result_layout.StoredResult` as :func:`~.result_reader.read_results_http`
(same keys in the server's order, dtypes, tables, coordinates, metadata; arrays
and tables read when first looked up).

As :mod:`.run_table_sqlite`, it reads the catalog read-only and only on the
schema revisions it knows (:func:`~.run_table_sqlite.connect_catalog`): on any
other, and on anything unexpected (a data source of another kind, a file laid
out otherwise, a read error), it raises :class:`~.result_files_data.ResultFilesError`
and the command reads over HTTP instead. A uid or version that is not in the
catalog is the user's error, as over HTTP (the server would read the same catalog).

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> open_result_files(Path(tempfile.mkdtemp())) is None  # no catalog there
True
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from .result_files_data import ResultFilesError, ZarrArray, open_zarr, read_parquet, read_zarr
from .result_layout import StoredResult, in_progress, is_version, pick_version
from .result_reader import LazyMapping
from .run_selection import check_uid, unique_match
from .run_table_sqlite import connect_catalog

__all__ = ["ResultFiles", "ResultFilesError", "open_result_files"]

_ZARR, _PARQUET = "application/x-zarr", "application/x-parquet"
_CHILD = "SELECT id FROM nodes WHERE parent = ? AND key = ?"
_CHILDREN = """
SELECT n.key, n.structure_family, n.specs, d.id, d.mimetype, d.management, s.structure,
       a.data_uri, x.parameter, x.num
FROM nodes n
LEFT JOIN data_sources d ON d.node_id = n.id
LEFT JOIN structures s ON s.id = d.structure_id
LEFT JOIN data_source_asset_association x ON x.data_source_id = d.id
LEFT JOIN assets a ON a.id = x.asset_id
WHERE n.parent = ? ORDER BY n.id, d.id, x.parameter, x.num
"""


@dataclass
class _Node:
    """One child of a results version as the catalog describes it."""

    family: str
    specs: list
    sources: set = field(default_factory=set)
    mimetype: str | None = None
    management: str | None = None
    structure: dict = field(default_factory=dict)
    assets: list = field(default_factory=list)  # (parameter, num, data_uri)


def _path(uri: str | None) -> Path:
    """The local path of a ``file://`` asset, as tiled's ``path_from_uri`` (not unquoted)."""
    parsed = urlparse(uri or "")
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise ResultFilesError(f"an asset at {uri!r}, not a local file")
    return Path(parsed.path)


def _array(key: str, node: _Node) -> ZarrArray:
    if "fields" in (node.structure.get("data_type") or {"fields": 1}):
        raise ResultFilesError(f"{key}: an array of structured data type")
    if node.mimetype != _ZARR or [a[0] for a in node.assets] != ["data_uri"]:
        raise ResultFilesError(f"{key}: a {node.mimetype} array with assets {node.assets}")
    return open_zarr(_path(node.assets[0][2]), node.structure)


def _table(key: str, node: _Node) -> list[Path]:
    count = int(node.structure.get("npartitions") or 1)
    wanted = [("data_uris", i) for i in range(count)]
    if node.mimetype != _PARQUET or [a[:2] for a in node.assets] != wanted:
        raise ResultFilesError(f"{key}: a {node.mimetype} table with assets {node.assets}")
    return [_path(uri) for _, _, uri in node.assets]


def _nodes(db: sqlite3.Connection, parent: int) -> dict[str, _Node]:
    nodes: dict[str, _Node] = {}
    for key, family, specs, source, mimetype, management, structure, uri, param, num in db.execute(
        _CHILDREN, (parent,)
    ):
        node = nodes.setdefault(key, _Node(family, json.loads(specs or "[]")))
        if source is None:
            continue
        node.sources.add(source)
        node.mimetype, node.management = mimetype, management
        node.structure = json.loads(structure) if structure else {}
        if uri is not None:
            node.assets.append((param, num, uri))
    return nodes


class ResultFiles:
    """Runs and results of one data directory, read from its catalog and files.

    Parameters
    ----------
    db : sqlite3.Connection
        The catalog, read-only (:func:`~.run_table_sqlite.connect_catalog`).
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def _child(self, parent: int | None, key: str) -> int | None:
        if parent is None:
            return None
        found = self.db.execute(_CHILD, (parent, key)).fetchone()
        return None if found is None else found[0]

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One consistent view of the catalog; its errors as :class:`ResultFilesError`."""
        try:
            self.db.execute("BEGIN")
            try:
                yield
            finally:
                self.db.execute("ROLLBACK")
        except (sqlite3.Error, ValueError, TypeError, KeyError) as exc:
            if isinstance(exc, ResultFilesError | KeyError):
                raise  # KeyError: no such results (the user's error, as over HTTP)
            raise ResultFilesError(f"reading the catalog: {exc!r}") from exc

    def resolve_uid(self, partial: str) -> str:
        """The full uid of the stored run whose uid is or starts with ``partial``.

        Parameters
        ----------
        partial : str
            A run uid or a unique prefix of one.

        Raises
        ------
        ReplayError
            If ``partial`` is not a uid, or matches no run or several.
        """
        check_uid(partial)
        with self._snapshot():
            raw = self._child(0, "raw")
            exact = self.db.execute(
                "SELECT metadata -> '$.start.uid' FROM nodes WHERE parent = ? AND key = ?",
                (raw, partial),
            ).fetchone()
            if exact is not None:
                return (json.loads(exact[0]) if exact[0] else None) or partial
            matches = [
                key
                for (key,) in self.db.execute(
                    "SELECT key FROM nodes WHERE parent = ? AND substr(key, 1, ?) = ? ORDER BY id",
                    (raw, len(partial), partial),
                )
            ]
        return unique_match(partial, matches)

    def read_results(self, run_uid: str, version: str | None = None) -> StoredResult:
        """One version (default: the latest) of a run's results.

        Parameters
        ----------
        run_uid : str
            The run's full uid.
        version : str, optional
            ``v1``, ``v2``, ...; None: the latest.

        Returns
        -------
        StoredResult
            As :func:`~.result_reader.read_results_http`: coordinates read at once,
            arrays and tables when first looked up (from the files, no server).

        Raises
        ------
        KeyError
            If the run has no stored results or no such version.
        ResultFilesError
            If the catalog or the files are not as this reader expects.
        """
        with self._snapshot():
            run = self._child(self._child(0, "results"), run_uid)
            rows = self.db.execute("SELECT key, id, metadata FROM nodes WHERE parent = ?", (run,))
            ids, written = {}, set()  # written: not a version still being written
            for key, node, md in rows if run else ():
                if is_version(key):
                    ids[key] = node
                    if not in_progress(json.loads(md or "{}") or {}):
                        written.add(key)
            # the latest skips a version still being written; one asked for by name is read
            listed = ids if version is not None else written
            version = pick_version(run_uid, sorted(listed, key=lambda k: int(k[1:])), version)
            (metadata,) = self.db.execute(
                "SELECT metadata FROM nodes WHERE id = ?", (ids[version],)
            ).fetchone()
            nodes = _nodes(self.db, ids[version])
        arrays: dict[str, ZarrArray] = {}
        tables: dict[str, list[Path]] = {}
        coords: dict[str, ZarrArray] = {}
        for key, node in nodes.items():
            if len(node.sources) != 1 or node.management != "writable":
                raise ResultFilesError(f"{key}: {len(node.sources)} {node.management} sources")
            if node.family == "table":
                tables[key] = _table(key, node)
            elif node.family == "array":
                names = {spec.get("name") for spec in node.specs}
                (coords if "xarray_coord" in names else arrays)[key] = _array(key, node)
            else:
                raise ResultFilesError(f"{key}: a {node.family}, not an array or table")
        return StoredResult(
            run_uid,
            version,
            dict(json.loads(metadata) or {}),
            LazyMapping(lambda k: read_zarr(arrays[k]), list(arrays)),
            LazyMapping(lambda k: read_parquet(tables[k]), list(tables)),
            {key: read_zarr(array) for key, array in coords.items()},
        )

    def close(self) -> None:
        """Close the catalog connection (the results read stay readable)."""
        self.db.close()


def open_result_files(data_dir: str | Path) -> ResultFiles | None:
    """The runs and results of ``data_dir`` read without a server, or None.

    Parameters
    ----------
    data_dir : path
        The data directory (its ``catalog.db`` and the files tiled wrote).

    None when there is no SQLite catalog or its schema is not one read here:
    ask a server then.
    """
    db = connect_catalog(Path(data_dir) / "catalog.db")
    return None if db is None else ResultFiles(db)
