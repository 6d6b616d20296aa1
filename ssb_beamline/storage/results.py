"""Analysis results in tiled, next to the raw run they were computed from.

Layout: ``results/<run uid>/<version>`` is a container whose metadata links the run
(``run_uid``) and records how the result was made (``source``, ``parameters``,
``calibration``, ``units``); its children are arrays (maps, stacks). A new analysis of
the same run is stored as the next version (``v1``, ``v2``, ...): live results are
never overwritten. Results that cannot be published (tiled is down) are journaled
on local disk and uploaded by ``ssb-beamline sync`` (see :mod:`.result_journal`).

Each version is an ``xarray_dataset`` for tiled's stock client: every array carries
its dimension names and the version holds coordinate arrays (``x``/``y``/``z`` in um,
``energy`` in eV; see :mod:`.coords`). Its metadata lists what it ``contents`` so that
a version cut short (the process died during the upload) is recognised
(:func:`complete_versions`, :func:`drop_incomplete_versions`). When the sink knows
the raw runs, the run's metadata links its results (``results: {latest, versions}``).

Volumes (tomograms, 3D maps) are stored chunked, one 2-D slice per chunk
(``publish(..., chunks={"volume": slice_chunks(volume.shape)})``), so that a client
reads ``node[k]`` without fetching the volume.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import ssb_beamline

from .coords import pixel_size_of, result_axes
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
    coords: dict[str, np.ndarray] = field(default_factory=dict)  # x, y (um), energy (eV)


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
    runs : tiled container client, optional
        The store's ``raw`` container: each run's metadata then links its results,
        and the coordinates take the pixel size from its start document.
    """

    def __init__(
        self, results_container, journal_dir: str | Path | None = None, *, runs=None
    ) -> None:
        self._results = results_container
        self._runs = runs
        self.journal = ResultJournal(Path(journal_dir) / "results") if journal_dir else None

    #: The chunking hint for volumes (one slice per chunk), so callbacks need no storage import.
    slice_chunks = staticmethod(slice_chunks)

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
        from tiled.structures.core import Spec

        run_node = _child_container(self._results, run_uid, {"run_uid": run_uid})
        start = self._start_of(run_uid)
        dims, coords = result_axes(
            arrays, pixel_size_um=pixel_size_of(start), energies=start.get("energies_ev")
        )
        md = {
            "run_uid": run_uid,
            "software": f"ssb_beamline {ssb_beamline.__version__}",
            "units": dict(units),
            **metadata,
            "contents": sorted([*arrays, *coords, *(tables or {})]),
        }
        node, version = _new_version(run_node, md)
        started.append(version)

        def write(item: tuple[str, np.ndarray]) -> None:
            key, array = item
            data = np.ascontiguousarray(array)
            if chunks and key in chunks:  # tiled keeps a dask array's chunks
                import dask.array

                data = dask.array.from_array(data, chunks=tuple(chunks[key]))
            unit = units.get(key, "")
            _retry_busy(lambda: node.write_array(
                data, key=key, metadata={"units": unit, "attrs": {"units": unit}},
                dims=list(dims[key]), specs=[Spec("xarray_data_var")],
            ))  # fmt: skip

        def write_coord(item: tuple[str, tuple[np.ndarray, dict]]) -> None:
            key, (values, attrs) = item
            _retry_busy(lambda: node.write_array(
                values, key=key, metadata={"units": attrs["units"], "attrs": attrs},
                dims=[key], specs=[Spec("xarray_coord")],
            ))  # fmt: skip

        # Each array is a few HTTP requests; overlap them (the server is concurrent).
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(write, arrays.items()))
            list(pool.map(write_coord, coords.items()))
        for key, table in (tables or {}).items():
            _retry_busy(lambda: node.write_table(table, key=key, metadata={"kind": "table"}))  # noqa: B023
        logger.info("stored %d result arrays at results/%s/%s", len(arrays), run_uid, version)
        path = f"results/{run_uid}/{version}"
        self._link(run_uid, path)
        return path

    def _start_of(self, run_uid: str) -> dict:
        if self._runs is None:
            return {}
        try:
            return dict(self._runs[run_uid].metadata.get("start") or {})
        except Exception:  # no such run (results of a run stored elsewhere)
            logger.debug("no start document for run %s", run_uid, exc_info=True)
            return {}

    def relink(self, run_uid: str, path: str) -> None:
        """Refresh run ``run_uid``'s link to its results after versions were removed."""
        self._link(run_uid, path)

    def _link(self, run_uid: str, path: str) -> None:
        """Record the results in the run's metadata (the results are stored already)."""
        if self._runs is None:
            return
        try:
            run = self._runs[run_uid]
            run.update_metadata(
                metadata={"results": {"latest": path,
                                      "versions": result_versions(self._results, run_uid)}},
                drop_revision=True,
            )  # fmt: skip
        except Exception:  # the results are stored: a missing link must not lose them
            logger.exception("results of run %s stored at %s, not linked from it", run_uid, path)


#: Attempts of a write that tiled refused with a server error (SQLite busy under
#: concurrent writers: the RunEngine's writer, a worker, an in-process analysis).
BUSY_ATTEMPTS = 4


def _retry_busy(write: Callable[[], Any]) -> Any:
    """Run ``write``, again after a short wait when tiled answers 5xx (database locked)."""
    import httpx

    for attempt in range(BUSY_ATTEMPTS):
        try:
            return write()
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code < 500 or attempt == BUSY_ATTEMPTS - 1:
                raise
            logger.info("tiled busy (%s); writing again", exc.response.status_code)
            time.sleep(0.2 * 2**attempt)
    return None


def _child_container(parent, key: str, metadata: dict):
    """``parent[key]``, created if missing (another process may create it at the same time)."""
    if key not in parent:
        try:
            _retry_busy(lambda: parent.create_container(key, metadata=metadata))
        except Exception:
            if key not in parent:  # not a lost race: a real failure
                raise
    return parent[key]


def _new_version(run_node, metadata: dict):
    """Create the next version container (the next free ``vN`` if another took this one)."""
    from tiled.structures.core import Spec

    for _ in range(5):
        version = _next_version(list(run_node))
        md = {**metadata, "version": version,
              "attrs": {"run_uid": metadata["run_uid"], "version": version}}  # fmt: skip
        try:
            node = _retry_busy(
                lambda md=md, version=version: run_node.create_container(
                    version, metadata=md, specs=[Spec("xarray_dataset")]
                )
            )
        except Exception:
            if version not in run_node:  # not taken by another process: a real failure
                raise
            continue
        return node, version
    raise RuntimeError(f"could not create a new results version under {run_node.uri}")


def _is_complete(node) -> bool:
    """Whether a stored version holds everything its metadata lists (older: no list)."""
    contents = node.metadata.get("contents")
    return contents is None or set(contents) <= set(node)


def complete_versions(
    results_container, run_uid: str, where: Callable[[dict], bool] | None = None
) -> list[str]:
    """Versions of a run's results stored completely (and whose metadata pass ``where``)."""
    if run_uid not in results_container:
        return []
    node = results_container[run_uid]
    found = []
    for version in result_versions(results_container, run_uid):
        child = node[version]
        if _is_complete(child) and (where is None or where(dict(child.metadata))):
            found.append(version)
    return found


def drop_incomplete_versions(
    results_container, run_uid: str, where: Callable[[dict], bool]
) -> list[str]:
    """Delete the versions cut short during their upload that pass ``where``; their names.

    ``where`` (on the version's metadata) must single out the versions of the dead
    process (e.g. a killed worker): another process may be uploading one right now.
    """
    if run_uid not in results_container:
        return []
    node = results_container[run_uid]
    dropped = []
    for version in result_versions(results_container, run_uid):
        if not _is_complete(node[version]) and where(dict(node[version].metadata)):
            node[version].delete(recursive=True, external_only=False)  # our own arrays
            dropped.append(version)
    return dropped


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
    arrays, tables, coords = {}, {}, {}
    for key in node:
        child = node[key]
        if child.structure_family == "table":
            tables[key] = child.read()
        elif any(spec.name == "xarray_coord" for spec in child.specs):
            coords[key] = child.read()
        else:
            arrays[key] = child.read()
    return StoredResult(run_uid, version, dict(node.metadata), arrays, tables, coords)
