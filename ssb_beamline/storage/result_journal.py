"""Analysis results kept on local disk while tiled cannot take them.

When publishing a run's results fails (the server is down),
:class:`~.results.TiledResultSink` writes them here instead of dropping them:
``<journal>/results/<entry>/`` holds ``metadata.json`` (run uid, units, metadata,
which arrays and tables), ``arrays.npz`` (uncompressed: written at disk speed) and
one Parquet file per table. An entry is written in a hidden folder and renamed
when complete, so a crash never leaves half an entry behind. :func:`~.sync.sync_results`
(run by :func:`~.sync.sync_pending`, i.e. ``ssb-beamline sync``) uploads each
entry as the next version of the run's results and removes it once tiled has it.
A damaged entry is refused by :meth:`ResultJournal.read` with a
:class:`ResultEntryError` naming the file (and line), and sync goes on with the others.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ssb_beamline._jsonable import jsonable
from ssb_beamline.private_files import PRIVATE_DIR, make_private_dir, open_private

from .server_config import DataDirectoryError

__all__ = ["JournaledResult", "ResultEntryError", "ResultJournal"]

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_METADATA = "metadata.json"
_ARRAYS = "arrays.npz"
_FIX = (
    "Restore the file, or move the entry folder out of the journal so that sync stops "
    "retrying it (`ssb-beamline replay <uid>` recomputes a run's results)."
)


class ResultEntryError(ValueError):
    """A journaled result cannot be read back; the message names the file (and line).

    Attributes
    ----------
    path : Path
        The damaged file (or the entry folder).
    line : int or None
        The line of ``metadata.json`` that is not valid JSON, when that is the problem.
    """

    def __init__(self, path: Path, problem: str, *, line: int | None = None) -> None:
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}. {_FIX}")
        self.path = path
        self.line = line


@dataclass
class JournaledResult:
    """One journaled result: what :meth:`TiledResultSink.publish` was given.

    Attributes
    ----------
    run_uid : str
        Start uid of the run the result belongs to.
    arrays : dict of str to ndarray
        The result arrays (maps, volumes), as published.
    units : dict of str to str
        Unit of each array (e.g. ``"eV"``).
    metadata : dict
        The version's metadata, with its ``created`` time (used by sync to find
        an earlier partial upload of the same result).
    tables : dict of str to pandas.DataFrame
        The result tables (empty when none).
    partial_version : str or None
        A version (``"v3"``) tiled created before failing; sync deletes it before
        uploading this entry again. None when tiled got nothing.
    """

    run_uid: str
    arrays: dict[str, np.ndarray]
    units: dict[str, str]
    metadata: dict[str, Any]
    tables: dict[str, Any] = field(default_factory=dict)
    partial_version: str | None = None  # a version tiled got only part of


class ResultJournal:
    """Journaled analysis results in ``directory`` (created on first write).

    Parameters
    ----------
    directory : path
        The journal's results folder (``<journal>/results``), made private (0700)
        on the first :meth:`write`; a folder that cannot be written makes that
        write raise ``DataDirectoryError``.
    """

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
                f.write(json.dumps(jsonable(record, finite=False)))
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
        """Read an entry back (arrays loaded into memory).

        Raises
        ------
        ResultEntryError
            If a file of the entry is missing or damaged (the message names it).
        """
        record = _read_record(entry / _METADATA)
        arrays_path = entry / _ARRAYS
        try:
            with np.load(arrays_path, allow_pickle=False) as npz:
                missing = [key for key in record["arrays"] if key not in npz.files]
                if missing:
                    raise ResultEntryError(
                        arrays_path, f"has no array {', '.join(map(repr, missing))} "
                        f"(listed in {_METADATA})"
                    )  # fmt: skip
                arrays = {key: npz[key] for key in record["arrays"]}
        except FileNotFoundError:
            raise ResultEntryError(arrays_path, "is missing (the entry is incomplete)") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            if isinstance(exc, ResultEntryError):
                raise
            raise ResultEntryError(
                arrays_path, f"is not a readable .npz file ({type(exc).__name__}: {exc})"
            ) from None
        return JournaledResult(
            record["run_uid"],
            arrays,
            record["units"],
            record["metadata"],
            {key: _read_table(entry / f"{key}.parquet") for key in record["tables"]},
            record.get("partial_version"),
        )

    def remove(self, entry: Path) -> None:
        shutil.rmtree(entry)


def _read_record(path: Path) -> dict[str, Any]:
    """The parsed ``metadata.json`` of an entry, checked for the keys read needs."""
    try:
        record = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except FileNotFoundError:
        raise ResultEntryError(path, "is missing (the entry is incomplete)") from None
    except json.JSONDecodeError as exc:
        raise ResultEntryError(
            path,
            f"is not valid JSON at column {exc.colno}: {exc.msg.removesuffix(' at')}",
            line=exc.lineno,
        ) from None
    except OSError as exc:
        raise ResultEntryError(path, f"cannot be read ({exc.strerror or exc})") from None
    expected = {"run_uid": str, "units": dict, "metadata": dict, "arrays": list, "tables": list}
    if not isinstance(record, dict):
        raise ResultEntryError(path, "does not hold a JSON object")
    wrong = [key for key, kind in expected.items() if not isinstance(record.get(key), kind)]
    if wrong:
        raise ResultEntryError(path, f"lacks or has a wrong type for {', '.join(wrong)}")
    return record


def _read_table(path: Path):
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise ResultEntryError(path, "is missing (the entry is incomplete)") from None
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise ResultEntryError(
            path, f"is not a readable Parquet file ({type(exc).__name__}: {exc})"
        ) from None
