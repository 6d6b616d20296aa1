"""One results version written into tiled in as few sequential round trips as tiled allows.

tiled 0.2.20 creates a container empty and each array or table with two requests (node, then
data; our batch route does several at once: :mod:`.array_batch`). The time from the last frame
to stored results is set by how many requests wait on each other: the run's container is made
in one request (looked up only when it exists already), the versions are listed only when there
may be some, and every array, coordinate and table of the version is then written at once from
a pool of threads, the largest first. What a reader finds is unchanged (see :mod:`.result_layout`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

import ssb_beamline

from .array_batch import batches, write_many
from .array_put import put_array
from .result_layout import next_version
from .table_batch import batch_tables

__all__ = [
    "BUSY_ATTEMPTS",
    "SOFTWARE",
    "UPLOAD_THREADS",
    "child_container",
    "dims_and_coords",
    "new_version",
    "retry_busy",
    "version_metadata",
    "write_array_patiently",
    "write_version_items",
]

logger = logging.getLogger(__name__)

#: What made a results version (its ``software`` metadata).
SOFTWARE = f"ssb_beamline {ssb_beamline.__version__}"

#: Attempts of a write that tiled refused with a server error (SQLite busy under
#: concurrent writers: the RunEngine's writer, a worker, an in-process analysis).
BUSY_ATTEMPTS = 4
#: Requests in flight while a version's arrays and tables are written.
UPLOAD_THREADS = 8
#: Attempts of an array write that timed out (after tiled's own retries): a server
#: slowed by load may still have made the array, so a later attempt writes its data.
TIMEOUT_ATTEMPTS = 3


def retry_busy(write: Callable[[], Any]) -> Any:
    """Run ``write``, again after a short wait when tiled answers 5xx (database locked).

    Parameters
    ----------
    write : callable
        One tiled request, without arguments (a ``lambda``); its result is
        returned. It runs at most ``BUSY_ATTEMPTS`` (4) times, 0.2, 0.4 and 0.8 s
        apart; a 4xx answer, any other exception and the last 5xx are raised, so
        ``write`` must be safe to repeat.
    """
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


def _same_array(node, key: str, data: Any) -> bool:
    """Whether ``node[key]`` exists with the shape and dtype of ``data``."""
    try:
        existing = node[key]
        return tuple(existing.shape) == tuple(data.shape) and existing.dtype == data.dtype
    except (KeyError, AttributeError):
        return False


def _rewrite(node, key: str, data: Any) -> None:
    """Write all of ``data`` into the existing array ``node[key]`` (idempotent PUTs)."""
    client = node[key]
    if not hasattr(data, "chunks"):
        put_array(client, data)
        return
    for index in np.ndindex(*data.numblocks):  # a dask array: block by block
        client.write_block(np.asarray(data.blocks[index]), block=index)


def write_array_patiently(node, key: str, data: Any, **kwargs: Any) -> None:
    """``node.write_array(data, key=key, **kwargs)``, patient with a slow server.

    A write that times out (tiled's client has already retried it) is tried again;
    if the array was created meanwhile (the server finished the request the client
    gave up on), its data are written into it, which is idempotent.

    Parameters
    ----------
    node : tiled container client
        The results version.
    key : str
        The array's key in ``node``.
    data : numpy or dask array
        The array (a dask array keeps its chunks in tiled).
    **kwargs
        ``write_array``'s other arguments (metadata, dims, specs).
    """
    import httpx

    for attempt in range(TIMEOUT_ATTEMPTS):
        try:
            if attempt and key in node:
                _rewrite(node, key, data)
            else:
                retry_busy(lambda: node.write_array(data, key=key, **kwargs))
            return
        except httpx.HTTPStatusError as exc:
            # 409: an attempt that timed out on this side (tiled's client retried it)
            # made the array after all; its data are written again, idempotently
            if exc.response.status_code != 409 or not _same_array(node, key, data):
                raise
            logger.info("%s was made by an attempt that timed out; writing its data", key)
            _rewrite(node, key, data)
            return
        except httpx.TimeoutException:
            if attempt == TIMEOUT_ATTEMPTS - 1:
                raise
            logger.info("writing %s timed out; trying again", key)
            time.sleep(1.0 * 2**attempt)


def child_container(parent, key: str, metadata: dict) -> tuple[Any, bool]:
    """``parent[key]``, created if missing; and whether this call created it.

    Creating comes first (one request for a new run's results); an existing
    container (a later version, or another process that created it at the same
    time) is then looked up.

    Parameters
    ----------
    parent : tiled container client
        E.g. the store's ``results`` node.
    key : str
        The child's key (a run uid).
    metadata : dict
        Metadata of a newly created child (an existing one keeps its own).

    Raises
    ------
    Exception
        The creation's own error when the child does not exist afterwards either
        (e.g. ``httpx.HTTPStatusError`` 401 for a read-only key).
    """
    try:
        return retry_busy(lambda: parent.create_container(key, metadata=metadata)), True
    except Exception as exc:
        try:
            return parent[key], False
        except KeyError:
            raise exc from None  # not there either: a real failure


def new_version(run_node, metadata: dict, *, empty: bool = False) -> tuple[Any, str]:
    """Create the next version container (the next free ``vN`` if another took this one).

    Parameters
    ----------
    run_node : tiled container client
        The run's results container (``results[uid]``).
    metadata : dict
        The version's metadata; it must hold ``run_uid`` (``KeyError`` otherwise).
        ``version`` and ``attrs`` are added.
    empty : bool, optional
        ``run_node`` was just created, so its versions need no listing (one request
        fewer); True for a container holding versions only costs a retry.

    Returns
    -------
    node : tiled container client
        The new, empty version (spec ``xarray_dataset``).
    version : str
        Its key, ``"v1"``, ``"v2"``, ...

    Raises
    ------
    RuntimeError
        Five versions in a row were taken by other processes meanwhile.
    """
    from tiled.structures.core import Spec

    for _ in range(5):
        version = next_version([] if empty else list(run_node))
        empty = False
        md = {**metadata, "version": version,
              "attrs": {"run_uid": metadata["run_uid"], "version": version}}  # fmt: skip
        try:
            node = retry_busy(
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


def dims_and_coords(arrays: Mapping, metadata: Mapping, start: Mapping) -> tuple[dict, dict]:
    """The arrays' dims and coordinates: the caller's axes, else the run's start document.

    Parameters
    ----------
    arrays : mapping of str to ndarray
        The results' arrays.
    metadata : mapping
        The results' metadata; its ``axes`` (from the caller's start document) win.
    start : mapping
        The run's start document, used when ``metadata`` has no ``axes``.
    """
    from .coords import axes_of, result_axes

    axes = metadata.get("axes")
    if not isinstance(axes, Mapping):  # the caller gave no start document
        axes = axes_of(start)
    return result_axes(
        arrays, pixel_size_um=axes.get("pixel_size_um"), energies=axes.get("energies_ev")
    )


def version_metadata(
    run_uid: str,
    arrays: Mapping[str, Any],
    units: Mapping[str, str],
    metadata: Mapping[str, Any],
    tables: Mapping[str, Any] | None,
    coords: Mapping[str, Any],
) -> dict:
    """A results version's metadata: who made it, units, and what it ``contents``.

    Parameters
    ----------
    run_uid : str
        The raw run the results belong to.
    arrays : mapping of str
        The version's result arrays (only their names are used).
    units : mapping of str to str
        Unit of each array.
    metadata : mapping
        The analysis' own metadata, merged in at the top level.
    tables : mapping of str, or None
        The version's tables (only their names are used).
    coords : mapping of str
        The version's coordinate arrays (only their names are used).

    Returns
    -------
    dict
        ``run_uid``, ``software``, ``units``, the analysis metadata and the sorted
        ``contents`` (every array, coordinate and table name).
    """
    return {
        "run_uid": run_uid,
        "software": SOFTWARE,
        "units": dict(units),
        **metadata,
        "contents": sorted([*arrays, *coords, *(tables or {})]),
    }


def write_version_items(
    node,
    arrays: Mapping[str, np.ndarray],
    *,
    units: Mapping[str, str],
    dims: Mapping[str, tuple[str, ...]],
    coords: Mapping[str, tuple[np.ndarray, dict]],
    tables: Mapping[str, Any] | None = None,
    chunks: Mapping[str, tuple[int, ...]] | None = None,
    prepared: Mapping[str, Any] | None = None,
) -> None:
    """Write every array, coordinate and table of a version, all requests at once.

    Raises the first failure once every write has ended (the version is then
    incomplete, which its ``contents`` metadata shows).

    Parameters
    ----------
    node : tiled container client
        The version (from :func:`new_version`).
    arrays : mapping of str to ndarray
        The data variables (maps, volumes).
    units : mapping of str to str
        Unit of each array (e.g. ``"eV"``, ``"um"``); a missing one is stored as "".
    dims : mapping of str to tuple of str
        Dimension names of each array (``("y", "x")``); one per array axis,
        every array needs an entry (``KeyError`` otherwise).
    coords : mapping of str to (ndarray, dict)
        Coordinates: values and attributes, which must hold ``units``.
    tables : mapping of str to pandas.DataFrame, optional
        Tables of the version.
    chunks : mapping of str to tuple of int, optional
        Chunk shape per array kept in tiled (e.g. one slice of a volume per
        chunk); arrays not named are stored in tiled's default chunks.
    prepared : mapping of str to tiled array client, optional
        Arrays created already (see :mod:`.result_skeleton`): only their data are sent.
    """
    from tiled.structures.core import Spec

    def write_array(key: str, array: np.ndarray) -> None:
        data = np.ascontiguousarray(array)
        if chunks and key in chunks:  # tiled keeps a dask array's chunks
            import dask.array

            data = dask.array.from_array(data, chunks=tuple(chunks[key]))
        unit = units.get(key, "")
        write_array_patiently(
            node, key, data, metadata={"units": unit, "attrs": {"units": unit}},
            dims=list(dims[key]), specs=[Spec("xarray_data_var")],
        )  # fmt: skip

    def write_coord(key: str, values: np.ndarray, attrs: dict) -> None:
        write_array_patiently(
            node, key, values, metadata={"units": attrs["units"], "attrs": attrs},
            dims=[key], specs=[Spec("xarray_coord")],
        )  # fmt: skip

    def write_table(key: str, table: Any) -> None:
        retry_busy(lambda: node.write_table(table, key=key, metadata=_TABLE_MD))

    def write_data(client, array: np.ndarray) -> None:  # into an array created already
        retry_busy(lambda: put_array(client, array))

    prepared = prepared or {}
    jobs, arrays, tables = _batch_jobs(node, arrays, prepared, tables or {})
    for key, array in arrays.items():
        nbytes = np.asarray(array).nbytes
        if key in prepared:  # its data only: one request
            jobs.append((_cost(nbytes, 1), lambda c=prepared[key], a=array: write_data(c, a)))
        else:  # created, then its data
            jobs.append((_cost(nbytes, 2), lambda k=key, a=array: write_array(k, a)))
    for key, (v, attrs) in coords.items():
        jobs.append((_cost(v.nbytes, 2), lambda k=key, v=v, a=attrs: write_coord(k, v, a)))
    for key, table in tables.items():
        jobs.append((_cost(0, 2), lambda k=key, t=table: write_table(k, t)))
    _run_all(jobs)


def _batch_jobs(node, arrays: Mapping[str, Any], prepared: Mapping[str, Any], tables: Mapping):
    """Jobs sending small prepared arrays and tables in batches; the other arrays and tables."""
    groups = batches(node, {k: a for k, a in arrays.items() if k in prepared})
    groups, batched, tables = batch_tables(node, arrays, prepared, tables, groups, _TABLE_MD)
    jobs = [(_cost(sum(np.asarray(a).nbytes for a in g.values()), 1),
             lambda g=g, t=t: retry_busy(lambda: write_many(node, g, t)))
            for g, t in zip(groups, batched, strict=True)]  # fmt: skip
    arrays = {k: a for k, a in arrays.items() if not any(k in g for g in groups)}
    return jobs, arrays, tables


_TABLE_MD = {"kind": "table"}  # a table node's metadata
#: Rough cost of one request and of one byte on the embedded server, for the order
#: of the writes only: a 43 MB stack ~0.9 s, a creation (queued on a SQLite catalog,
#: see :mod:`.write_funnel`) ~50 ms.
_REQUEST_S = 0.05
_BYTE_S = 1 / 50e6


def _cost(nbytes: int, requests: int) -> float:
    """Expected seconds of a write of ``nbytes`` in ``requests`` sequential requests."""
    return nbytes * _BYTE_S + requests * _REQUEST_S


def _run_all(jobs: list[tuple[float, Callable[[], None]]]) -> None:
    """Run ``(cost, job)`` pairs at once, the costliest first; raise the first failure.

    The longest chains start first: the large stack, then the items still to be
    created (two requests each, their creations one at a time on SQLite), then the
    data of prepared arrays (one request each), so that they end together.

    Parameters
    ----------
    jobs : list of (float, callable)
        Each write's expected duration (:func:`_cost`) and the write.
    """
    jobs = sorted(jobs, key=lambda job: -job[0])
    with ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="results-upload") as pool:
        futures = [pool.submit(job) for _, job in jobs]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]
