"""Analysis results in tiled, next to the raw run they were computed from.

Layout (see :mod:`.result_layout`): ``results/<run uid>/<version>`` is a container
whose metadata links the run (``run_uid``) and records how the result was made
(``source``, ``parameters``, ``calibration``, ``units``, ``contents``); its children
are arrays (maps, stacks) and tables. A new analysis of the same run is stored as
the next version (``v1``, ``v2``, ...): live results are never overwritten.
Results that cannot be published (tiled is down) are journaled on local disk
(:mod:`.result_journal`) and uploaded by ``ssb-beamline sync`` (or before the next
results this sink publishes), each as a new version that replaces the incomplete
attempts of the same result.

Each version is an ``xarray_dataset`` for tiled's stock client: every array carries
its dimension names and the version holds coordinate arrays (``x``/``y``/``z`` in um,
``energy`` in eV; see :mod:`.coords`). When the sink knows the raw runs, the run's
metadata links its results (``results: {latest, versions}``).

Volumes (tomograms, 3D maps) are stored chunked, one 2-D slice per chunk
(``publish(..., chunks={"volume": slice_chunks(volume.shape)})``), so that a client
reads ``node[k]`` without fetching the volume.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .array_batch import offered
from .coords import axes_of
from .result_early import EarlyWrites
from .result_journal import JournaledResult, ResultEntryError, ResultJournal
from .result_layout import (
    StoredResult,
    complete_versions,
    delete_version,
    drop_incomplete_versions,
    earlier_attempts,
    read_results,
    result_versions,
    slice_chunks,
)
from .result_link import LINK_ATTEMPTS, link_run
from .result_skeleton import Skeleton, build_skeleton, discard, drop_unused
from .result_upload import (
    SOFTWARE,
    child_container,
    dims_and_coords,
    new_version,
    version_metadata,
    write_version_items,
)

__all__ = [
    "LINK_ATTEMPTS",
    "ResultsNotPublishedError",
    "StoredResult",
    "TiledResultSink",
    "complete_versions",
    "drop_incomplete_versions",
    "read_results",
    "result_versions",
    "slice_chunks",
]

logger = logging.getLogger(__name__)

#: ``on_failure(path, line, message)``: told about a journal entry left pending.
FailureHandler = Callable[[Path, "int | None", str], None]


class ResultsNotPublishedError(RuntimeError):
    """Results did not reach tiled; the message says where they are kept instead."""

    #: The results are computed and journaled: callers log the message, no traceback.
    kept_for_sync = True


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
        self._skeletons: dict[str, Future] = {}  # run uid -> Skeleton being created
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="results-prepare")
        self._early = EarlyWrites()

    #: The chunking hint for volumes (one slice per chunk), so callbacks need no storage import.
    slice_chunks = staticmethod(slice_chunks)

    def prepare(
        self,
        run_uid: str,
        layout: Mapping[str, tuple[tuple[int, ...], Any]],
        *,
        units: Mapping[str, str],
        start: Mapping[str, Any],
        optional: Iterable[str] = (),
    ) -> None:
        """Create the next version of ``run_uid``'s results now, without data (in the background).

        ``layout`` (``key -> (shape, dtype)``) lists arrays the coming :meth:`publish`
        will store; it then sends only their data. The version is marked as being
        written (:data:`~.result_layout.IN_PROGRESS`) until publish has stored
        everything, so no reader takes it for complete. A failure here only
        costs time: publish then stores everything itself. Arrays named in
        ``optional`` may be missing from the results (their nodes are then removed).
        """
        self._skeletons[run_uid] = self._pool.submit(
            self._prepared, run_uid, dict(layout), units=dict(units), start=dict(start),
            optional=frozenset(optional))  # fmt: skip

    def _prepared(self, run_uid: str, layout: dict, **kwargs: Any) -> Skeleton:
        """The version of :meth:`prepare`, and the raw run it will be linked from."""
        skeleton = build_skeleton(self._results, run_uid, layout, software=SOFTWARE, **kwargs)
        offered(skeleton.node)  # the batch route is asked for now, while the scan runs
        try:  # None (not in tiled yet, or no answer): publish looks it up again
            skeleton.run = self._run_of(run_uid)
        except Exception:
            logger.info("raw run %s not found while its scan runs", run_uid, exc_info=True)
        return skeleton

    def send_early(
        self, run_uid: str, arrays: Mapping[str, np.ndarray], *, units: Mapping[str, str]
    ) -> list[str]:
        """Start storing final ``arrays`` (e.g. the maps) while the rest is computed.

        Only into a version :meth:`prepare` has created already, and only arrays
        that fit their prepared node; their data are sent in the background and
        :meth:`publish` (which must follow, with the same array objects) waits for
        them. Returns the keys being sent (see :mod:`.result_early`).
        """
        future = self._skeletons.get(run_uid)
        if future is None or not future.done() or future.exception() is not None:
            return []
        return self._early.start(run_uid, future.result(), arrays, units)

    def discard(self, run_uid: str) -> None:
        """Remove the version :meth:`prepare` created if nothing was published into it."""
        self._early.take(run_uid).settle()
        skeleton = self._take_skeleton(run_uid)
        if skeleton is not None:
            discard(skeleton)

    def _take_skeleton(self, run_uid: str) -> Skeleton | None:
        future = self._skeletons.pop(run_uid, None)
        if future is None:
            return None
        try:
            return future.result(timeout=60)
        except Exception:  # publish stores everything itself
            logger.warning("results of run %s were not prepared in tiled", run_uid, exc_info=True)
            return None

    def publish(
        self,
        run_uid: str,
        arrays: Mapping[str, np.ndarray],
        *,
        units: Mapping[str, str],
        metadata: Mapping[str, Any],
        tables: Mapping[str, Any] | None = None,
        chunks: Mapping[str, tuple[int, ...]] | None = None,
        start: Mapping[str, Any] | None = None,
    ) -> str:
        """Store ``arrays`` (and ``tables``, pandas DataFrames) as the next version.

        Returns the path of the stored version, ``results/<uid>/<version>``.
        ``chunks`` gives the chunk shape of some arrays in tiled (e.g.
        :func:`slice_chunks` for volumes); the others are stored as tiled chooses.
        ``start``, the run's start document, gives the axes (pixel size, energies;
        kept in the metadata as ``axes``, so a journaled copy keeps them too);
        without it they come from the raw run in tiled, and are in pixels when that
        run is not there (yet).

        Raises
        ------
        ResultsNotPublishedError
            If tiled failed and the results were journaled instead (the message says
            where), so nothing is lost. Without a journal, tiled's own error.
        """
        metadata = {"created": dt.datetime.now(dt.UTC).isoformat(), **dict(metadata)}
        if start is not None:
            metadata["axes"] = axes_of(start)
        started: list[str] = []  # the version, once tiled has created it
        try:
            if self.journal is not None and self.journal.pending():
                # tiled may be back: older results go first (failures stay journaled)
                self.upload_journaled(self.journal)
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

    def _publish(
        self, run_uid, arrays, units, metadata, tables, started: list[str], chunks=None
    ) -> str:
        skeleton = self._take_skeleton(run_uid)
        with ThreadPoolExecutor(1, thread_name_prefix="results-lookup") as pool:
            # the raw run, looked up once: while the scan ran, else now (in the background)
            found = skeleton.run if skeleton is not None else None
            run = (
                (lambda: found) if found is not None else pool.submit(self._run_of, run_uid).result
            )
            if skeleton is not None:
                path = self._fill(skeleton, run, arrays, units, metadata, tables, started, chunks)
                if path is not None:
                    return path
            # the run's container, and its start document (for the coordinates)
            run_node, created = child_container(self._results, run_uid, {"run_uid": run_uid})
            run = run()
        start = dict(run.metadata.get("start") or {}) if run is not None else {}
        dims, coords = dims_and_coords(arrays, metadata, start)
        md = version_metadata(run_uid, arrays, units, metadata, tables, coords)
        node, version = new_version(run_node, md, empty=created)
        started.append(version)
        write_version_items(
            node, arrays, units=units, dims=dims, coords=coords, tables=tables, chunks=chunks
        )
        logger.info("stored %d result arrays at results/%s/%s", len(arrays), run_uid, version)
        path = f"results/{run_uid}/{version}"
        # a run node made just now holds this version only: no listing needed
        link_run(run, [version] if created else run_node, path, self._run_of)
        return path

    def _fill(
        self, skeleton: Skeleton, run: Callable, arrays, units, metadata, tables, started, chunks
    ) -> str | None:
        """Publish into a prepared version; None if the results do not fit it (removed).

        ``run()`` gives the raw run's client (or None) once its lookup ended.
        """
        from tiled.structures.core import Spec

        run_uid = skeleton.run_uid
        early = self._early.take(run_uid)  # data sent already (send_early)
        dims, coords = dims_and_coords(arrays, metadata, skeleton.start)
        unfit = skeleton.fits(arrays, units, dims, coords, chunks)
        if unfit is not None:
            logger.info("results of run %s do not fit the prepared version: %s", run_uid, unfit)
            early.settle()
            discard(skeleton)
            return None
        started.append(skeleton.version)
        rest = {k: a for k, a in arrays.items() if early.arrays.get(k) is not a}
        if len(rest) + len(early.arrays) > len(arrays):  # an array sent early was replaced
            early.settle()  # its early write ends before the replacement is written
        with ThreadPoolExecutor(1, thread_name_prefix="results-drop") as pool:
            dropped = pool.submit(drop_unused, skeleton, arrays)  # optional, not produced
            try:
                write_version_items(
                    skeleton.node, rest, units=units, dims=dims,
                    coords={k: v for k, v in coords.items() if k not in skeleton.coords},
                    tables=tables, chunks=chunks,
                    prepared={k: item[0] for k, item in skeleton.items.items()},
                )  # fmt: skip
            except BaseException:
                early.settle()  # the version is left incomplete; its writes end first
                raise
            early.wait()
            dropped.result()
        found = run()
        md = {**version_metadata(run_uid, arrays, units, metadata, tables, coords),
              "version": skeleton.version,
              "attrs": {"run_uid": run_uid, "version": skeleton.version}}  # fmt: skip
        # the version becomes complete here, after every data write succeeded
        skeleton.node.replace_metadata(metadata=md, specs=[Spec("xarray_dataset")],
                                       drop_revision=True)  # fmt: skip
        logger.info("stored %d result arrays at results/%s/%s (prepared)", len(arrays), run_uid,
                    skeleton.version)  # fmt: skip
        path = f"results/{run_uid}/{skeleton.version}"
        link_run(
            found, [skeleton.version] if skeleton.created else skeleton.run_node, path, self._run_of
        )
        return path

    def _run_of(self, run_uid: str):
        """The raw run's client (None without ``runs``, or if it is stored elsewhere)."""
        if self._runs is None:
            return None
        try:
            return self._runs[run_uid]
        except KeyError:  # no such run (results of a run stored elsewhere, or not yet)
            logger.debug("no raw run %s for its results", run_uid, exc_info=True)
            return None  # a server that does not answer raises: the results are journaled

    def relink(self, run_uid: str, path: str) -> None:
        """Refresh run ``run_uid``'s link to its results after versions were removed."""
        link_run(self._run_of(run_uid), self._results[run_uid], path, self._run_of)

    def upload_journaled(
        self, journal: ResultJournal, on_failure: FailureHandler | None = None
    ) -> list[str]:
        """Upload every journaled result as the next version of its run's results.

        An earlier attempt of the same result that tiled got only in part (the
        server died during the upload) is removed once the complete copy is stored,
        so each result is stored once. An entry that cannot be read or uploaded
        stays in the journal and is passed to ``on_failure`` (default: logged as an
        error); the others are still tried.

        Returns
        -------
        list of str
            Where each result was stored, ``results/<uid>/<version>``.
        """
        stored = []
        for entry in journal.pending():
            try:
                result = journal.read(entry)
            except ResultEntryError as exc:
                _failed(on_failure, exc.path, exc.line, str(exc))
                continue
            try:
                path = self._upload_entry(entry, result)
            except Exception as exc:  # the server may fail in many ways; keep the entry
                message = (
                    f"{entry}: the results of run {result.run_uid} were not uploaded "
                    f"({type(exc).__name__}: {exc}); they stay in the journal, run sync again "
                    "when tiled answers."
                )
                _failed(on_failure, entry, None, message)
                continue
            journal.remove(entry)
            stored.append(path)
            logger.info("journaled results of run %s uploaded to %s", result.run_uid, path)
        return stored

    def _upload_entry(self, entry: Path, result: JournaledResult) -> str:
        """Store ``result`` as a new version, then remove the earlier, incomplete attempts.

        The complete copy never reuses an attempt's version name: a server killed
        during an upload can leave an array's files in its storage without a catalog
        entry, and tiled then refuses to create that path again (zarr
        ``ContainsArrayError``, a 500).
        """
        earlier = earlier_attempts(self._results, result)
        metadata = {
            **result.metadata,
            "journaled": {"entry": entry.name, "uploaded": dt.datetime.now(dt.UTC).isoformat()},
        }
        started: list[str] = []
        path = self._publish(
            result.run_uid, result.arrays, result.units, metadata, result.tables, started
        )
        for version in earlier:
            logger.warning("removing the incomplete results/%s/%s", result.run_uid, version)
            delete_version(self._results[result.run_uid], version)
        if earlier:
            self.relink(result.run_uid, path)
        return path


def _failed(on_failure: FailureHandler | None, path: Path, line: int | None, message: str):
    if on_failure is None:
        logger.error("%s", message)
    else:
        on_failure(Path(path), line, message)
