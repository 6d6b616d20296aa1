"""A results version created while its scan runs, so only data remain after the last frame.

The structure of a live analysis's results is fixed when the scan starts (the map
shape from the detector's descriptor, the energies from the start document, the
list of result arrays): :func:`build_skeleton` creates the run's container, the
version container, every array node (without data) and the coordinate arrays
(with their data) then, on a background thread. After the last frame
:meth:`~.results.TiledResultSink.publish` sends only the data PUTs (concurrently)
and the final metadata. tiled 0.2.20 has no call that creates a node with its
data in one request, nor a rename, hence this module.

The version is created with :data:`~.result_layout.IN_PROGRESS` in its
``contents``, a key never stored: every completeness check (``_is_complete``,
the run table's count, ``complete_versions``) sees it as incomplete, and
``read_results`` skips it for the latest, until the final metadata (one request,
after every data PUT has succeeded) replace the contents by the real list. What a
reader then finds at ``results/<uid>/vN`` is what a plain publish stores.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .coords import axes_of, result_axes
from .result_layout import IN_PROGRESS
from .result_upload import UPLOAD_THREADS, child_container, new_version, retry_busy

__all__ = ["Skeleton", "build_skeleton", "discard", "drop_unused", "matching_items"]

logger = logging.getLogger(__name__)

#: Arrays larger than one upload request of the tiled client are left to publish.
MAX_PREPARED_BYTES = 100_000_000


@dataclass
class Skeleton:
    """A version created ahead of its data.

    Attributes
    ----------
    run_uid, version : str
        Where it is: ``results/<run_uid>/<version>``.
    node, run_node : tiled container clients
        The version and the run's results container.
    created : bool
        Whether the run's results container was created for this version.
    start : dict
        The run's start document (pixel size, energies).
    items : dict
        ``key -> (array client, shape, dtype, dims, unit)`` of the arrays created.
    coords : dict
        ``name -> values`` of the coordinates stored (with their data).
    run : tiled client or None
        The raw run (its metadata link the results), if found.
    optional : frozenset of str
        Keys of ``items`` the results may lack (removed then, see ``unused``).
    """

    run_uid: str
    version: str
    node: Any
    run_node: Any
    created: bool
    start: dict
    items: dict[str, tuple[Any, tuple[int, ...], str, tuple[str, ...], str]] = field(
        default_factory=dict
    )
    coords: dict[str, np.ndarray] = field(default_factory=dict)
    run: Any = None
    optional: frozenset[str] = frozenset()

    def unused(self, arrays: Mapping[str, Any]) -> list[str]:
        """Optional prepared arrays that ``arrays`` lack (removed before the version completes)."""
        return sorted(k for k in self.items if k in self.optional and k not in arrays)

    def fits(
        self,
        arrays: Mapping[str, np.ndarray],
        units: Mapping[str, str],
        dims: Mapping[str, tuple[str, ...]],
        coords: Mapping[str, tuple[np.ndarray, dict]],
        chunks: Mapping[str, Any] | None,
    ) -> str | None:
        """None if the final results fill this skeleton, else what differs."""
        for key, (_, shape, dtype, item_dims, unit) in self.items.items():
            if key not in arrays and key in self.optional:
                continue  # see unused()
            if key not in arrays:
                return f"{key} was not produced"
            array = np.asarray(arrays[key])
            found = (array.shape, array.dtype.str, tuple(dims[key]), units.get(key, ""))
            if found != (shape, dtype, item_dims, unit) or key in (chunks or {}):
                return f"{key} is {found}, prepared {(shape, dtype, item_dims, unit)}"
        for name, values in self.coords.items():
            if name not in coords or not np.array_equal(coords[name][0], values):
                return f"coordinate {name} differs"
        return None


def _dummy(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """An array of ``shape`` and ``dtype`` that takes no memory (for the axes)."""
    return np.broadcast_to(np.zeros((), dtype=dtype), shape)


def build_skeleton(
    results,
    run_uid: str,
    layout: Mapping[str, tuple[tuple[int, ...], Any]],
    *,
    units: Mapping[str, str],
    start: Mapping[str, Any],
    software: str,
    optional: frozenset[str] = frozenset(),
) -> Skeleton:
    """Create the version of ``layout`` (``key -> (shape, dtype)``) with no data yet.

    Parameters
    ----------
    results : tiled container client
        The store's ``results`` container.
    run_uid : str
        The run.
    layout : mapping
        ``key -> (shape, dtype)`` of the arrays the analysis will publish.
    units : mapping
        Unit of each array.
    start : mapping
        The run's start document (pixel size, energies for the coordinates).
    software : str
        Recorded in the version's metadata.
    optional : frozenset of str, optional
        Keys of ``layout`` the results may lack (e.g. maps that need particles).
    """
    from dask.array.core import normalize_chunks
    from tiled.structures.array import ArrayStructure, BuiltinDtype
    from tiled.structures.core import Spec, StructureFamily
    from tiled.structures.data_source import DataSource

    layout = {k: (tuple(int(n) for n in s), np.dtype(d)) for k, (s, d) in layout.items()}
    layout = {
        k: v for k, v in layout.items() if np.prod(v[0]) * v[1].itemsize <= MAX_PREPARED_BYTES
    }
    axes = axes_of(dict(start))  # as publish computes them
    dims, coords = result_axes(
        {k: _dummy(s, d) for k, (s, d) in layout.items()},
        pixel_size_um=axes["pixel_size_um"],
        energies=axes["energies_ev"],
    )
    run_node, created = child_container(results, run_uid, {"run_uid": run_uid})
    md = {"run_uid": run_uid, "software": software, "units": dict(units),
          "contents": sorted([*layout, *coords, IN_PROGRESS])}  # fmt: skip
    node, version = new_version(run_node, md, empty=created)
    skeleton = Skeleton(run_uid, version, node, run_node, created, dict(start), optional=optional)

    def create(key: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        auto = normalize_chunks(("auto",) * len(shape), limit=MAX_PREPARED_BYTES,
                                dtype=dtype, shape=shape)  # fmt: skip
        structure = ArrayStructure(shape=shape, chunks=auto, dims=list(dims[key]),
                                   data_type=BuiltinDtype.from_numpy_dtype(dtype))  # fmt: skip
        unit = units.get(key, "")
        client = retry_busy(
            lambda: node.new(
                StructureFamily.array,
                [DataSource(structure=structure, structure_family=StructureFamily.array)],
                key=key,
                metadata={"units": unit, "attrs": {"units": unit}},
                specs=[Spec("xarray_data_var")],
            )
        )
        skeleton.items[key] = (client, shape, dtype.str, tuple(dims[key]), unit)

    def write_coord(name: str, values: np.ndarray, attrs: dict) -> None:
        retry_busy(lambda: node.write_array(values, key=name, metadata={"units": attrs["units"],
                   "attrs": attrs}, dims=[name], specs=[Spec("xarray_coord")]))  # fmt: skip
        skeleton.coords[name] = values

    with ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="results-skeleton") as pool:
        futures = [pool.submit(create, k, s, d) for k, (s, d) in layout.items()]
        futures += [pool.submit(write_coord, n, v, a) for n, (v, a) in coords.items()]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:  # publish then writes everything into a fresh version
        discard(skeleton)
        raise errors[0]
    return skeleton


def discard(skeleton: Skeleton) -> None:
    """Delete a skeleton that will not be filled (logged if tiled refuses).

    Parameters
    ----------
    skeleton : Skeleton
        The prepared version (from :func:`build_skeleton`).
    """
    try:
        skeleton.node.delete(recursive=True, external_only=False)  # our own, empty arrays
    except Exception:  # an incomplete version is skipped by readers; not worth a failure
        logger.warning("could not remove the unused results/%s/%s", skeleton.run_uid,
                       skeleton.version, exc_info=True)  # fmt: skip


def matching_items(skeleton: Skeleton, arrays: Mapping[str, Any], units: Mapping[str, str]):
    """``key -> array client`` of the prepared arrays that ``arrays`` fill as they are.

    An array whose shape, dtype or unit differs from its node is left out (publish
    then finds the difference and stores a fresh version).

    Parameters
    ----------
    skeleton : Skeleton
        The prepared version.
    arrays : mapping of str to ndarray
        Final results, e.g. the maps, before the rest of the results is computed.
    units : mapping of str to str
        Their units.
    """
    fit = {}
    for key, array in arrays.items():
        item = skeleton.items.get(key)
        if item is None:
            continue
        found = np.asarray(array)
        if (found.shape, found.dtype.str, units.get(key, "")) == (item[1], item[2], item[4]):
            fit[key] = item[0]
    return fit


def drop_unused(skeleton: Skeleton, arrays: Mapping[str, Any]) -> None:
    """Delete the optional prepared arrays that ``arrays`` lack (see ``Skeleton.unused``).

    Parameters
    ----------
    skeleton : Skeleton
        The prepared version, still marked as being written.
    arrays : mapping of str to ndarray
        The final results.
    """
    for key in skeleton.unused(arrays):
        client = skeleton.items[key][0]
        retry_busy(lambda c=client: c.delete(external_only=False))  # never written
