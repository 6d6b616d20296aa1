"""Read a stored run's results over tiled's HTTP API: ``show`` and ``report``'s fast path.

:func:`read_results_http` returns the same :class:`~.result_layout.StoredResult`
as :func:`~.result_layout.read_results` (arrays as numpy arrays, tables as pandas
DataFrames, ``xarray_coord`` arrays as coordinates, the version's metadata) with
one request per array or table partition, made when the figure code first
looks it up, plus three listings, through
:class:`~.tiled_http.TiledHttp`: the tiled client's import (httpx, dask, the
``bluesky_tiled_plugins`` entry points) cost more than the whole command's goal.
Results holding anything else than arrays and tables raise
:class:`NotImplementedError` so the caller can read them with the client.
:func:`resolve_uid_http` is :func:`~.run_selection.resolve_uid` over the same API.

Examples
--------
>>> numpy_dtype({"endianness": "little", "kind": "f", "itemsize": 4}).str
'<f4'
>>> numpy_dtype({"endianness": "not_applicable", "kind": "b", "itemsize": 1}).str
'|b1'
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .result_layout import StoredResult, in_progress, is_version, pick_version
from .run_selection import check_uid, unique_match
from .tiled_http import TiledHttp, TiledHttpError

__all__ = ["read_results_http", "resolve_uid_http"]

#: Larger arrays are read in slices along their first axis (the tiled client's limit).
MAX_RESPONSE_BYTES = 100 * 1024 * 1024
_PARALLEL = 8  # requests at once
_ARROW = "application/vnd.apache.arrow.file"
_ENDIAN = {"little": "<", "big": ">", "not_applicable": "|"}


def numpy_dtype(data_type: dict[str, Any]) -> np.dtype:
    """The numpy dtype of tiled's ``BuiltinDtype`` JSON (as ``to_numpy_str``).

    Parameters
    ----------
    data_type : dict
        An array structure's ``data_type`` (``endianness``, ``kind``, ``itemsize``).
    """
    kind, itemsize = data_type["kind"], int(data_type["itemsize"])
    size = itemsize // 4 if kind == "U" else itemsize
    return np.dtype(
        f"{_ENDIAN[data_type['endianness']]}{kind}{size}{data_type.get('dt_units') or ''}"
    )


def _missing(exc: TiledHttpError) -> bool:
    return exc.status == 404


def resolve_uid_http(api: TiledHttp, partial: str) -> str:
    """The full uid of the stored run whose uid is or starts with ``partial``.

    Parameters
    ----------
    api : TiledHttp
        The server.
    partial : str
        A run uid or a unique prefix of one.

    Raises
    ------
    ReplayError
        If ``partial`` is not a uid, or matches no run or several.
    """
    check_uid(partial)
    try:
        body = api.get_json("metadata", f"raw/{partial}")
        start = (body["data"]["attributes"].get("metadata") or {}).get("start") or {}
        return start.get("uid") or partial
    except TiledHttpError as exc:
        if not _missing(exc):
            raise
    try:
        matches = [item["id"] for item in api.children("raw") if item["id"].startswith(partial)]
    except TiledHttpError as exc:
        if not _missing(exc):  # no `raw` container yet: no runs
            raise
        matches = []
    return unique_match(partial, matches)


def _versions(api: TiledHttp, run_uid: str) -> list[str]:
    try:
        keys = [item["id"] for item in api.children(f"results/{run_uid}")
                if not in_progress(item.get("attributes", {}).get("metadata") or {})]  # fmt: skip
    except TiledHttpError as exc:
        if not _missing(exc):
            raise
        return []
    return sorted((k for k in keys if is_version(k)), key=lambda k: int(k[1:]))


def _read_array(api: TiledHttp, path: str, structure: dict[str, Any]) -> np.ndarray:
    """The whole array, in slices along the first axis when it is large (writable)."""
    dtype = numpy_dtype(structure["data_type"])
    shape = tuple(int(n) for n in structure["shape"])
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes == 0:
        return np.empty(shape, dtype=dtype)
    if not shape or nbytes <= MAX_RESPONSE_BYTES:
        body = api.get("array/full", path, accept="application/octet-stream")
        return np.frombuffer(bytearray(body), dtype=dtype).reshape(shape)
    step = max(1, MAX_RESPONSE_BYTES * shape[0] // nbytes)
    out = np.empty(shape, dtype=dtype)
    for first in range(0, shape[0], step):
        last = min(shape[0], first + step)
        body = api.get("array/full", path, accept="application/octet-stream",
                       slice=f"{first}:{last}")  # fmt: skip
        out[first:last] = np.frombuffer(body, dtype=dtype).reshape((last - first, *shape[1:]))
    return out


def _read_table(api: TiledHttp, path: str, structure: dict[str, Any]):
    import pyarrow

    parts = [
        pyarrow.ipc.open_file(
            io.BytesIO(api.get("table/partition", path, accept=_ARROW, partition=i))
        ).read_pandas()
        for i in range(int(structure.get("npartitions") or 1))
    ]
    return as_client_table(parts)


def as_client_table(parts: list):
    """The table of these partitions as the tiled client returns it.

    Parameters
    ----------
    parts : list of pandas.DataFrame
        The partitions, in order.

    As the client's dask read: the partitions concatenated, text columns as
    pyarrow strings.
    """
    import pandas as pd

    table = parts[0] if len(parts) == 1 else pd.concat(parts)
    text = [c for c, t in table.dtypes.items() if t.kind == "O" or isinstance(t, pd.StringDtype)]
    return table.astype(dict.fromkeys(text, "string[pyarrow]")) if text else table


class LazyMapping(Mapping):
    """A read-only mapping whose values are read (once) when first looked up.

    ``show`` of a XANES run draws 5 of a version's ~20 arrays and no table: it
    reads only those (and need not import pandas at all).
    """

    def __init__(self, read: Callable[[str], Any], keys: list[str]) -> None:
        self._read_one, self._keys, self._values = read, keys, {}

    def __getitem__(self, key: str):
        if key not in self._values:
            if key not in self._keys:
                raise KeyError(key)
            self._values[key] = self._read_one(key)
        return self._values[key]

    def __contains__(self, key: object) -> bool:  # without reading the value
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"<{len(self)} stored: {', '.join(self._keys)}>"


def read_results_http(api: TiledHttp, run_uid: str, version: str | None = None) -> StoredResult:
    """One version (default: the latest) of a run's results, read over HTTP.

    Parameters
    ----------
    api : TiledHttp
        The server.
    run_uid : str
        The run's full uid.
    version : str, optional
        ``v1``, ``v2``, ...; None: the latest.

    The coordinates are read at once; each array and table when first looked up
    in ``result.arrays`` / ``result.tables`` (read-only mappings), so the server
    must still answer then.

    Raises
    ------
    KeyError
        If the run has no stored results or no such version (as ``read_results``).
    NotImplementedError
        If the version holds something other than arrays and tables.
    """
    version = pick_version(run_uid, _versions(api, run_uid), version)
    path = f"results/{run_uid}/{version}"
    body = api.get_json("metadata", path)
    metadata = dict(body["data"]["attributes"].get("metadata") or {})
    items = list(api.children(path, fields=["structure_family", "specs", "structure"]))
    arrays, tables, coords = {}, {}, {}
    for item in items:
        key, attrs = item["id"], item["attributes"]
        family, structure = attrs.get("structure_family"), attrs.get("structure") or {}
        if family == "table":
            tables[key] = structure
            continue
        if family != "array" or "fields" in (structure.get("data_type") or {"fields": 1}):
            raise NotImplementedError(f"{path}/{key} is a {family}, not a plain array or table")
        specs = {spec.get("name") for spec in attrs.get("specs") or ()}
        (coords if "xarray_coord" in specs else arrays)[key] = structure
    with ThreadPoolExecutor(max_workers=_PARALLEL) as pool:  # the axes: small, all at once
        read = pool.map(lambda k: _read_array(api, f"{path}/{k}", coords[k]), coords)
        coords = dict(zip(coords, read, strict=True))
    lazy_arrays = LazyMapping(lambda k: _read_array(api, f"{path}/{k}", arrays[k]), list(arrays))
    lazy_tables = LazyMapping(lambda k: _read_table(api, f"{path}/{k}", tables[k]), list(tables))
    return StoredResult(run_uid, version, metadata, lazy_arrays, lazy_tables, coords)
