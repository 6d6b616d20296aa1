"""What a reader finds at ``results/<run uid>/<version>``, and how versions are kept.

A run's analysis results are a container per version (``v1``, ``v2``, ...) under
``results/<run uid>``; each version's metadata lists what it ``contents`` so that
a version cut short (the process died during the upload) is recognised
(:func:`complete_versions`, :func:`drop_incomplete_versions`). :func:`read_results`
reads one version back as a :class:`StoredResult`. Writing is
:class:`~.results.TiledResultSink`'s part.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "IN_PROGRESS",
    "StoredResult",
    "complete_versions",
    "delete_version",
    "drop_incomplete_versions",
    "in_progress",
    "is_version",
    "next_version",
    "pick_version",
    "read_results",
    "result_versions",
    "slice_chunks",
]

logger = logging.getLogger(__name__)

_VERSION = re.compile(r"^v(\d+)$")
#: Listed in the ``contents`` of a version created before its data (while the scan
#: runs) and never stored as a child: every completeness check sees the version as
#: incomplete until the final metadata, written after all data, drop it.
IN_PROGRESS = "(being written)"


def in_progress(metadata: Any) -> bool:
    """Whether a version's metadata mark it as created ahead of its data, not yet written.

    Parameters
    ----------
    metadata : mapping
        A results version's metadata (its ``contents`` list is looked at).

    Examples
    --------
    >>> in_progress({"contents": ["soc", IN_PROGRESS]}), in_progress({"contents": ["soc"]})
    (True, False)
    """
    contents = metadata.get("contents") if hasattr(metadata, "get") else None
    return isinstance(contents, list | tuple) and IN_PROGRESS in contents


def is_version(key: str) -> bool:
    """Whether ``key`` names a results version (``v1``, ``v2``, ...).

    Parameters
    ----------
    key : str
        A key of a run's results container.
    """
    return _VERSION.match(key) is not None


@dataclass(frozen=True)
class StoredResult:
    """One stored analysis version of a run.

    Attributes
    ----------
    run_uid : str
        Start uid of the run the results belong to.
    version : str
        ``v1``, ``v2``, ...: one per analysis of the run (a replay adds one).
    metadata : dict
        How the results were made (source, estimator, ranges, timings).
    arrays : dict of str to numpy.ndarray
        The maps and volumes by key (units in ``metadata``).
    tables : dict of str to pandas.DataFrame
        Tables by name (e.g. ``particles``).
    coords : dict of str to numpy.ndarray
        Coordinate arrays: ``x``, ``y``, ``z`` in um (pixels when the pixel size is
        unknown), ``energy`` in eV.
    """

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

    Parameters
    ----------
    shape : tuple of int
        Shape of an array of 3 or more dimensions, last three ``(Z, Y, X)``.

    Raises
    ------
    ValueError
        If ``shape`` has fewer than 3 dimensions.

    Examples
    --------
    >>> slice_chunks((32, 64, 64)), slice_chunks((5, 32, 64, 64))
    ((1, 64, 64), (5, 1, 64, 64))
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) < 3:
        raise ValueError(f"slice chunks need an array of >= 3 dimensions, got shape {shape}")
    return (*shape[:-3], 1, *shape[-2:])


def next_version(existing: list[str]) -> str:
    """The version after the highest of ``existing`` (``v1`` if there is none).

    Parameters
    ----------
    existing : list of str
        Keys of the run's results container; those that are not versions are ignored.

    Examples
    --------
    >>> next_version(["v1", "v3", "x"]), next_version([])
    ('v4', 'v1')
    """
    numbers = [int(m.group(1)) for key in existing if (m := _VERSION.match(key))]
    return f"v{max(numbers, default=0) + 1}"


def _is_complete(node) -> bool:
    """Whether a stored version holds everything its metadata lists (older: no list)."""
    contents = node.metadata.get("contents")
    return contents is None or set(contents) <= set(node)


def complete_versions(
    results_container, run_uid: str, where: Callable[[dict], bool] | None = None
) -> list[str]:
    """Versions of a run's results stored completely (and whose metadata pass ``where``).

    Parameters
    ----------
    results_container : tiled container client
        The ``results`` container (``results[uid][version]``).
    run_uid : str
        Full start uid of the run.
    where : callable, optional
        ``where(metadata) -> bool`` on each version's metadata; None: every complete
        version.

    Returns
    -------
    list of str
        The versions whose upload finished, oldest first.
    """
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

    Parameters
    ----------
    results_container : tiled container client
        The ``results`` container (``results[uid][version]``).
    run_uid : str
        Full start uid of the run.
    where : callable
        ``where(metadata) -> bool``: True for the versions of the dead process (e.g.
        its worker id); required, so that an upload in progress is not deleted.

    Returns
    -------
    list of str
        The versions deleted.
    """
    if run_uid not in results_container:
        return []
    node = results_container[run_uid]
    dropped = []
    for version in result_versions(results_container, run_uid):
        if not _is_complete(node[version]) and where(dict(node[version].metadata)):
            delete_version(node, version)
            dropped.append(version)
    return dropped


def delete_version(run_node, version: str) -> None:
    """Delete one version of a run's results; one the server did delete counts as done.

    A server without :mod:`~ssb_beamline.storage.idempotent_delete` answers 500 when
    a file of the version was never written (a version prepared during a scan whose
    server died), after it removed the catalog entry: the version is gone all the same.

    Parameters
    ----------
    run_node : tiled container client
        ``results[<run uid>]``.
    version : str
        The version to delete (``"v1"``, ...), with all its arrays and tables.
    """
    try:
        run_node[version].delete(recursive=True, external_only=False)  # our own arrays
    except Exception:
        if version in run_node:
            raise
        logger.warning("%s/%s is deleted, but the server failed to remove a file of it",
                       run_node.item["id"], version)  # fmt: skip


def result_versions(results_container, run_uid: str) -> list[str]:
    """The stored versions of a run's results, oldest first (empty if none).

    Parameters
    ----------
    results_container : tiled container client
        The ``results`` container (``results[uid][version]``).
    run_uid : str
        Full start uid of the run.

    Returns
    -------
    list of str
        ``["v1", "v2", ...]`` in numeric order (``v10`` after ``v9``).
    """
    if run_uid not in results_container:
        return []
    keys = [k for k in results_container[run_uid] if is_version(k)]
    return sorted(keys, key=lambda k: int(k[1:]))


def pick_version(run_uid: str, versions: list[str], version: str | None = None) -> str:
    """``version`` (default: the latest) if the run has it, else a KeyError saying what to pass.

    Parameters
    ----------
    run_uid : str
        The run (named in the error message).
    versions : list of str
        Its stored versions, oldest first.
    version : str, optional
        The version asked for; None: the latest.

    Returns
    -------
    str
        The version to read.

    Raises
    ------
    KeyError
        If the run has no stored results or no such version; the message lists
        what is there.

    Examples
    --------
    >>> pick_version("abc", ["v1", "v2"]), pick_version("abc", ["v1", "v2"], "v1")
    ('v2', 'v1')
    """
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
    return version


def read_results(results_container, run_uid: str, version: str | None = None) -> StoredResult:
    """Read one version (default: the latest) of a run's results.

    Parameters
    ----------
    results_container : tiled container client
        The ``results`` container (``results[uid][version]``).
    run_uid : str
        Full start uid of the run.
    version : str, optional
        ``v1``, ``v2``, ...; None: the latest.

    Returns
    -------
    StoredResult
        The arrays, tables, coordinates and metadata of that version.

    Raises
    ------
    KeyError
        If the run has no stored results or no such version; the message lists
        what is there.

    Notes
    -----
    The latest version skips versions still being written (created while their
    scan runs, see :data:`IN_PROGRESS`); a version asked for by name is read as is.
    """
    versions = result_versions(results_container, run_uid)
    if version is None:
        while versions and in_progress(results_container[run_uid][versions[-1]].metadata):
            versions = versions[:-1]
    version = pick_version(run_uid, versions, version)
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


def earlier_attempts(results_container, result) -> list[str]:
    """Versions of the run's results that are earlier uploads of this same result.

    ``result`` is a :class:`~.result_journal.JournaledResult`: its ``partial_version``,
    the versions whose ``created`` metadata equal its own, and versions still marked
    being written (:func:`in_progress`): prepared while the scan ran for the live
    results that could not be published, so journaled (a prepared version that
    tiled refused to remove, e.g. during an outage, is never filled).
    """
    uid = result.run_uid
    if uid not in results_container:
        return []
    created = result.metadata.get("created")
    node = results_container[uid]
    return [
        version
        for version, child in node.items()
        if version == result.partial_version
        or (created is not None and child.metadata.get("created") == created)
        or in_progress(child.metadata)
    ]


def links_at_least(link: Any, path: str) -> bool:
    """Whether a run's ``results`` link points at ``path``'s version or a later one."""
    latest = link.get("latest") if isinstance(link, dict) else None
    if not isinstance(latest, str) or latest.rsplit("/", 1)[0] != path.rsplit("/", 1)[0]:
        return False
    version, ours = latest.rsplit("/", 1)[1], path.rsplit("/", 1)[1]
    return is_version(version) and int(version[1:]) >= int(ours[1:])
