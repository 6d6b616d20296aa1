"""Analysis results kept on local disk while tiled cannot take them.

When publishing a run's results fails (the server is down),
:class:`~.results.TiledResultSink` writes them here instead of dropping them:
``<journal>/results/<entry>/`` holds ``metadata.json`` (run uid, units, metadata,
which arrays and tables), ``arrays.npz`` (uncompressed: written at disk speed) and
one Parquet file per table. An entry is written in a hidden folder and renamed
when complete, so a crash never leaves half an entry behind. :func:`sync_results`
(run by :func:`~.journal.sync_pending`, i.e. ``ssb-beamline sync``) uploads each
entry as the next version of the run's results and removes it once tiled has it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ssb_beamline.private_files import PRIVATE_DIR, make_private_dir, open_private

from .server_config import DataDirectoryError

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_METADATA = "metadata.json"
_ARRAYS = "arrays.npz"


@dataclass
class JournaledResult:
    """One journaled result: what :meth:`TiledResultSink.publish` was given."""

    run_uid: str
    arrays: dict[str, np.ndarray]
    units: dict[str, str]
    metadata: dict[str, Any]
    tables: dict[str, Any] = field(default_factory=dict)
    partial_version: str | None = None  # a version tiled got only part of


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"cannot journal a {type(value).__name__} in result metadata")


class ResultJournal:
    """Journaled analysis results in ``directory`` (created on first write)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def write(
        self,
        run_uid: str,
        arrays: Mapping[str, np.ndarray],
        *,
        units: Mapping[str, str],
        metadata: Mapping[str, Any],
        tables: Mapping[str, Any] | None = None,
        partial_version: str | None = None,
    ) -> Path:
        """Keep one result on disk; returns its entry folder.

        Raises
        ------
        DataDirectoryError
            If the journal folder cannot be written (the results stay in memory only).
        """
        name = f"{time.time_ns():020d}-{_UNSAFE.sub('_', run_uid)}"
        entry = self.directory / name
        tmp = self.directory / f".{name}.tmp"
        try:
            make_private_dir(self.directory)
            tmp.mkdir(mode=PRIVATE_DIR)
            with open_private(tmp / _ARRAYS, "xb") as f:
                np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
            for key, table in (tables or {}).items():
                with open_private(tmp / f"{key}.parquet", "xb") as f:
                    table.to_parquet(f)
            record = {
                "run_uid": run_uid,
                "units": dict(units),
                "metadata": dict(metadata),
                "arrays": list(arrays),
                "tables": list(tables or {}),
                "partial_version": partial_version,
            }
            with open_private(tmp / _METADATA, "x", encoding="utf-8") as f:
                f.write(json.dumps(record, default=_json_default))
            tmp.rename(entry)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataDirectoryError(self.directory, exc, "result journal") from exc
        return entry

    def pending(self) -> list[Path]:
        """Entries not yet in tiled, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(
            p for p in self.directory.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def read(self, entry: Path) -> JournaledResult:
        """Read an entry back (arrays loaded into memory)."""
        import pandas as pd

        record = json.loads((entry / _METADATA).read_text())
        with np.load(entry / _ARRAYS, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in record["arrays"]}
        tables = {key: pd.read_parquet(entry / f"{key}.parquet") for key in record["tables"]}
        return JournaledResult(
            record["run_uid"],
            arrays,
            record["units"],
            record["metadata"],
            tables,
            record.get("partial_version"),
        )

    def remove(self, entry: Path) -> None:
        shutil.rmtree(entry)


def sync_results(results_container, journal: ResultJournal) -> list[str]:
    """Upload every journaled result as the next version of its run's results.

    A version that tiled got only part of when publishing failed is removed first,
    so that the complete copy takes its place. An entry that fails to upload stays
    in the journal (the failure is logged) and the others are still tried.

    Returns
    -------
    list of str
        Where each result was stored, ``results/<uid>/<version>``.
    """
    from .results import TiledResultSink

    sink = TiledResultSink(results_container)  # no journal: a failure leaves the entry
    stored = []
    for entry in journal.pending():
        result = journal.read(entry)
        uid, partial = result.run_uid, result.partial_version
        try:
            if partial and uid in results_container and partial in results_container[uid]:
                logger.warning("removing the incomplete results/%s/%s from tiled", uid, partial)
                results_container[uid][partial].delete(recursive=True)
            metadata = {
                **result.metadata,
                "journaled": {"entry": entry.name, "uploaded": dt.datetime.now(dt.UTC).isoformat()},
            }
            path = sink.publish(
                uid, result.arrays, units=result.units, metadata=metadata, tables=result.tables
            )
        except Exception as exc:  # the server may fail in many ways; keep the entry
            logger.error(
                "journaled results %s of run %s not uploaded (%s: %s); they stay in %s",
                entry.name,
                uid,
                type(exc).__name__,
                exc,
                journal.directory,
            )
            continue
        journal.remove(entry)
        stored.append(path)
        logger.info("journaled results of run %s uploaded to %s", uid, path)
    return stored
