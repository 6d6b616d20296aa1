"""The arrays and tables tiled 0.2 wrote for a results version, read as its server serves them.

tiled keeps what a client writes to its catalog in the writable storage of the
data directory: an array as a Zarr (format 3) directory, a table as one Parquet
file per partition (``tiled.adapters.zarr`` / ``tiled.adapters.parquet``
``init_storage``). :func:`open_zarr` checks a Zarr array's ``zarr.json``
against the catalog's structure and :func:`read_zarr` reads it; :func:`read_parquet`
reads a table. Both return what the HTTP reader (:mod:`.result_reader`) returns
for the same node: tiled's server reads the same files with ``zarr`` (trimmed to
the catalog's shape) and with dask's Parquet reader.

The ``zarr`` package is not used to read: its import (asyncio machinery, every
codec) costs more than reading a version's arrays. Only the layout tiled writes
is read here (a regular chunk grid, the ``bytes`` codec, little endian,
optionally ``zstd``, decoded by libzstd through pyarrow); anything else
raises :class:`ResultFilesError` so that the caller reads over HTTP.

Examples
--------
>>> _fill_value(0.0, np.dtype("<f4")), _fill_value("NaN", np.dtype("<f8"))
(0.0, nan)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from .result_reader import as_client_table, numpy_dtype

__all__ = ["ResultFilesError", "ZarrArray", "open_zarr", "read_parquet", "read_zarr"]

#: Zarr (format 3) data types read here: tiled's numeric and boolean arrays.
_TYPES = frozenset(
    {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
     "float16", "float32", "float64", "complex64", "complex128"}
)  # fmt: skip
_SPECIAL_FILLS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class ResultFilesError(RuntimeError):
    """The catalog or a stored file is not as this reader expects: read over HTTP instead."""


@dataclass(frozen=True)
class ZarrArray:
    """A Zarr array tiled wrote, checked against its catalog structure.

    Attributes
    ----------
    directory : pathlib.Path
        The array's folder (``zarr.json``, ``c/...`` chunk files).
    dtype : numpy.dtype
        The catalog's data type (also the stored one).
    shape : tuple of int
        The catalog's shape (the stored array may extend past it to whole chunks).
    chunks : tuple of int
        The chunk shape.
    fill : object
        The value of chunks with no file: never written, or all fill values in
        arrays written before :mod:`.array_codecs` (zarr then left those out).
    separator : str
        Between the chunk indices in a chunk file's name.
    zstd : bool
        Whether the chunks are zstd-compressed.
    """

    directory: Path
    dtype: np.dtype
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    fill: Any
    separator: str
    zstd: bool


def _fill_value(value: Any, dtype: np.dtype) -> Any:
    """A Zarr 3 ``fill_value`` as a number (NaN and infinities are strings there)."""
    if isinstance(value, str):
        if value not in _SPECIAL_FILLS or dtype.kind not in "fc":
            raise ResultFilesError(f"fill value {value!r} of a {dtype} array")
        return _SPECIAL_FILLS[value]
    if not isinstance(value, bool | int | float):
        raise ResultFilesError(f"fill value {value!r}")
    return value


def _codecs(codecs: list[dict], dtype: np.dtype) -> bool:
    """Whether the chunks are zstd-compressed; ResultFilesError for other codecs."""
    names = [codec.get("name") for codec in codecs]
    if names not in (["bytes"], ["bytes", "zstd"]):
        raise ResultFilesError(f"codecs {names}")
    endian = (codecs[0].get("configuration") or {}).get("endian")
    if endian != "little" and not (endian is None and dtype.itemsize == 1):
        raise ResultFilesError(f"{endian} endian chunks")
    return len(names) == 2


def open_zarr(directory: Path, structure: dict[str, Any]) -> ZarrArray:
    """The Zarr array in ``directory``, if it is laid out as tiled writes it.

    Parameters
    ----------
    directory : pathlib.Path
        The array's folder (the catalog asset's ``data_uri``).
    structure : dict
        The catalog's array structure (``data_type``, ``shape``, ``chunks``).

    Raises
    ------
    ResultFilesError
        If ``zarr.json`` is missing or not the format, data type, chunk grid or
        codecs read here, or disagrees with ``structure``.
    """
    try:
        meta = json.loads((directory / "zarr.json").read_text())
        dtype = numpy_dtype(structure["data_type"])
        shape = tuple(int(n) for n in structure["shape"])
        stored = tuple(int(n) for n in meta["shape"])
        chunks = tuple(int(n) for n in meta["chunk_grid"]["configuration"]["chunk_shape"])
        grid, keys = meta["chunk_grid"]["name"], meta["chunk_key_encoding"]
        separator = (keys.get("configuration") or {}).get("separator", "/")
        kind = (meta.get("zarr_format"), meta.get("node_type"), meta.get("storage_transformers"))
        data_type = meta["data_type"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ResultFilesError(f"{directory}: {exc!r}") from exc
    if kind != (3, "array", []) or grid != "regular" or keys.get("name") != "default":
        raise ResultFilesError(f"{directory}: a Zarr layout not read here {kind, grid, keys}")
    if not isinstance(data_type, str) or data_type not in _TYPES:
        raise ResultFilesError(f"{directory}: Zarr data type {data_type!r}")
    stored_dtype = np.dtype(data_type).newbyteorder(
        "<" if np.dtype(data_type).itemsize > 1 else "|"
    )
    if stored_dtype != dtype or separator not in ("/", "."):
        raise ResultFilesError(f"{directory}: {data_type} in Zarr, {dtype} in the catalog")
    if len(stored) != len(shape) or len(chunks) != len(shape) or min(chunks, default=1) < 1:
        raise ResultFilesError(f"{directory}: Zarr shape {stored}, catalog shape {shape}")
    if any(n > m for n, m in zip(shape, stored, strict=True)):
        raise ResultFilesError(f"{directory}: Zarr shape {stored}, catalog shape {shape}")
    zstd = _codecs(meta.get("codecs") or [], dtype)
    fill = _fill_value(meta.get("fill_value"), dtype)
    return ZarrArray(directory, dtype, shape, chunks, fill, separator, zstd)


def _chunk(array: ZarrArray, index: tuple[int, ...], decode) -> np.ndarray | None:
    """Chunk ``index`` (None: never written, so all fill values)."""
    name = "c" + "".join(f"{array.separator}{i}" for i in index)
    try:
        body = (array.directory / name).read_bytes()
    except FileNotFoundError:
        return None
    if decode is not None:
        try:
            body = decode(body)
        except Exception as exc:  # any decoding failure: read over HTTP
            raise ResultFilesError(f"{array.directory / name}: {exc!r}") from exc
    count = math.prod(array.chunks)
    if len(body) != count * array.dtype.itemsize:
        raise ResultFilesError(f"{array.directory / name}: {len(body)} bytes, not {count} values")
    return np.frombuffer(body, dtype=array.dtype).reshape(array.chunks)


def read_zarr(array: ZarrArray) -> np.ndarray:
    """The whole array (the catalog's shape), writable, as tiled's server serves it.

    Parameters
    ----------
    array : ZarrArray
        From :func:`open_zarr`.

    Raises
    ------
    ResultFilesError
        If a chunk file cannot be read or decoded.
    """
    out = np.full(array.shape, array.fill, dtype=array.dtype)
    if out.size == 0:
        return out
    decode = None
    if array.zstd:  # libzstd through pyarrow (imported by the tables anyway): numcodecs,
        import pyarrow  # zarr's codec package, takes 0.1-0.7 s to import

        codec, size = pyarrow.Codec("zstd"), math.prod(array.chunks) * array.dtype.itemsize
        decode = lambda body: codec.decompress(body, decompressed_size=size)  # noqa: E731
    counts = [math.ceil(n / c) for n, c in zip(array.shape, array.chunks, strict=True)]
    try:
        for index in product(*(range(n) for n in counts)):
            chunk = _chunk(array, index, decode)
            if chunk is None:
                continue
            region = tuple(
                slice(i * c, min((i + 1) * c, n))
                for i, c, n in zip(index, array.chunks, array.shape, strict=True)
            )
            out[region] = chunk[tuple(slice(0, r.stop - r.start) for r in region)]
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
        if isinstance(exc, ResultFilesError):
            raise
        raise ResultFilesError(f"{array.directory}: {exc!r}") from exc
    return out


def read_parquet(paths: list[Path]):
    """The table of these Parquet partitions, as the tiled client reads it over HTTP.

    Parameters
    ----------
    paths : list of pathlib.Path
        The partitions' files, in order (the catalog's ``data_uris`` assets).

    Raises
    ------
    ResultFilesError
        If a partition cannot be read.
    """
    import pyarrow
    import pyarrow.parquet

    try:
        parts = [pyarrow.parquet.read_table(path).to_pandas() for path in paths]
    except (OSError, ValueError, pyarrow.ArrowException) as exc:
        raise ResultFilesError(f"{paths}: {exc!r}") from exc
    if not parts:
        raise ResultFilesError("a table of no partitions")
    return as_client_table(parts)
