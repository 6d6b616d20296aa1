"""Analysis results in tiled, next to the raw run they were computed from.

Layout: ``results/<run uid>/<version>`` is a container whose metadata links the run
(``run_uid``) and records how the result was made (``source``, ``parameters``,
``calibration``, ``units``); its children are arrays (maps, stacks). A new analysis of
the same run is stored as the next version (``v1``, ``v2``, ...): live results are
never overwritten. Results that cannot be published (tiled is down) are journaled
on local disk and uploaded by ``ssb-beamline sync`` (see :mod:`.result_journal`).

Volumes (tomograms, 3D maps) are stored chunked, one 2-D slice per chunk
(``publish(..., chunks={"volume": slice_chunks(volume.shape)})``), so that a client
reads ``node[k]`` without fetching the volume.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import ssb_beamline

from .result_journal import ResultJournal

logger = logging.getLogger(__name__)

_VERSION = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class StoredResult:
    """One stored analysis version of a run."""

    run_uid: str
    version: str
    metadata: dict[str, Any]
    arrays: dict[str, np.ndarray]
    tables: dict[str, Any] = field(default_factory=dict)  # name -> pandas DataFrame


def slice_chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Chunk shape of one slice of a volume whose last three axes are ``(Z, Y, X)``.

    Leading axes (e.g. the energies of a stack of volumes) stay in the chunk, so
    ``stack[:, z]`` (a slice at every energy) is one chunk.

    Examples
    --------
    >>> slice_chunks((32, 64, 64)), slice_chunks((5, 32, 64, 64))
    ((1, 64, 64), (5, 1, 64, 64))
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) < 3:
        raise ValueError(f"slice chunks need an array of >= 3 dimensions, got shape {shape}")
    return (*shape[:-3], 1, *shape[-2:])


def _next_version(existing: list[str]) -> str:
    numbers = [int(m.group(1)) for key in existing if (m := _VERSION.match(key))]
    return f"v{max(numbers, default=0) + 1}"


class ResultsNotPublishedError(RuntimeError):
    """Results did not reach tiled; the message says where they are kept instead."""


class TiledResultSink:
    """Write analysis results into a tiled ``results`` container.

    Parameters
    ----------
    results_container : tiled container client
        The store's ``results`` container (see :func:`~.connect.open_store`).
    journal_dir : path, optional
        The store's journal directory (``store.journal_dir``): results that cannot
        be published are kept in ``<journal_dir>/results`` until ``ssb-beamline
        sync`` uploads them. Without it a failure only raises.
    """

    def __init__(self, results_container, journal_dir: str | Path | None = None) -> None:
        self._results = results_container
        self.journal = ResultJournal(Path(journal_dir) / "results") if journal_dir else None

    def publish(
        self,
        run_uid: str,
        arrays: Mapping[str, np.ndarray],
        *,
        units: Mapping[str, str],
        metadata: Mapping[str, Any],
        tables: Mapping[str, Any] | None = None,
        chunks: Mapping[str, tuple[int, ...]] | None = None,
    ) -> str:
        """Store ``arrays`` (and ``tables``, pandas DataFrames) as the next version.

        Returns the path of the stored version, ``results/<uid>/<version>``.
        ``chunks`` gives the chunk shape of some arrays in tiled (e.g.
        :func:`slice_chunks` for volumes); the others are stored as tiled chooses.

        Raises
        ------
        ResultsNotPublishedError
            If tiled failed and the results were journaled instead (the message says
            where), so nothing is lost. Without a journal, tiled's own error.
        """
        metadata = {"created": dt.datetime.now(dt.UTC).isoformat(), **dict(metadata)}
        started: list[str] = []  # the version, once tiled has created it
        try:
            if self.journal is not None and self.journal.pending():
                self._upload_journaled()  # tiled may be back: older results go first
            return self._publish(run_uid, arrays, units, metadata, tables, started, chunks)
        except Exception as exc:
            cause = f"{type(exc).__name__}: {exc}"
            if self.journal is None:
                raise
            entry = self.journal.write(
                run_uid,
                arrays,
                units=units,
                metadata=metadata,
                tables=tables,
                partial_version=started[0] if started else None,
            )
            logger.error(
                "results of run %s not published to tiled (%s); kept in %s for `ssb-beamline sync`",
                run_uid,
                cause,
                entry,
            )
            raise ResultsNotPublishedError(
                f"Publishing the results of run {run_uid} to tiled failed ({cause}). They are "
                f"kept in {entry}; `ssb-beamline sync` uploads them when tiled is back."
            ) from exc

    def _upload_journaled(self) -> None:
        """Upload results journaled during an outage (failures are logged, not raised)."""
        from .sync import sync_results

        sync_results(self._results, self.journal)

    def _publish(
        self, run_uid, arrays, units, metadata, tables, started: list[str], chunks=None
    ) -> str:
        if run_uid not in self._results:
            self._results.create_container(run_uid, metadata={"run_uid": run_uid})
        run_node = self._results[run_uid]
        version = _next_version(list(run_node))
        md = {
            "run_uid": run_uid,
            "version": version,
            "software": f"ssb_beamline {ssb_beamline.__version__}",
            "units": dict(units),
            **metadata,
        }
        node = run_node.create_container(version, metadata=md)
        started.append(version)

        def write(item: tuple[str, np.ndarray]) -> None:
            key, array = item
            data = np.ascontiguousarray(array)
            if chunks and key in chunks:  # tiled keeps a dask array's chunks
                import dask.array

                data = dask.array.from_array(data, chunks=tuple(chunks[key]))
            node.write_array(data, key=key, metadata={"units": units.get(key, "")})

        # Each array is a few HTTP requests; overlap them (the server is concurrent).
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(write, arrays.items()))
        for key, table in (tables or {}).items():
            node.write_table(table, key=key, metadata={"kind": "table"})
        logger.info("stored %d result arrays at results/%s/%s", len(arrays), run_uid, version)
        return f"results/{run_uid}/{version}"


def result_versions(results_container, run_uid: str) -> list[str]:
    """The stored versions of a run's results, oldest first (empty if none)."""
    if run_uid not in results_container:
        return []
    keys = [k for k in results_container[run_uid] if _VERSION.match(k)]
    return sorted(keys, key=lambda k: int(k[1:]))


def read_results(results_container, run_uid: str, version: str | None = None) -> StoredResult:
    """Read one version (default: the latest) of a run's results.

    Raises
    ------
    KeyError
        If the run has no stored results or no such version; the message lists
        what is there.
    """
    versions = result_versions(results_container, run_uid)
    if not versions:
        raise KeyError(
            f"No analysis results are stored for run {run_uid!r}. Replay the run to "
            "compute them, or check the uid with `ssb-beamline runs`."
        )
    version = version or versions[-1]
    if version not in versions:
        raise KeyError(
            f"Run {run_uid!r} has results {versions}, not {version!r}. Pass one of these "
            "(--version), or none for the latest."
        )
    node = results_container[run_uid][version]
    arrays, tables = {}, {}
    for key in node:
        child = node[key]
        if child.structure_family == "table":
            tables[key] = child.read()
        else:
            arrays[key] = child.read()
    return StoredResult(run_uid, version, dict(node.metadata), arrays, tables)
