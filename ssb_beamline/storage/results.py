"""Analysis results in tiled, next to the raw run they were computed from.

Layout: ``results/<run uid>/<version>`` is a container whose metadata links the run
(``run_uid``) and records how the result was made (``source``, ``parameters``,
``calibration``, ``units``); its children are arrays (maps, stacks). A new analysis of
the same run is stored as the next version (``v1``, ``v2``, ...): live results are
never overwritten.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import ssb_beamline

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


def _next_version(existing: list[str]) -> str:
    numbers = [int(m.group(1)) for key in existing if (m := _VERSION.match(key))]
    return f"v{max(numbers, default=0) + 1}"


class TiledResultSink:
    """Write analysis results into a tiled ``results`` container.

    Parameters
    ----------
    results_container : tiled container client
        The store's ``results`` container (see :func:`~.connect.open_store`).
    """

    def __init__(self, results_container) -> None:
        self._results = results_container

    def publish(
        self,
        run_uid: str,
        arrays: Mapping[str, np.ndarray],
        *,
        units: Mapping[str, str],
        metadata: Mapping[str, Any],
        tables: Mapping[str, Any] | None = None,
    ) -> str:
        """Store ``arrays`` (and ``tables``, pandas DataFrames) as the next version.

        Returns the path of the stored version, ``results/<uid>/<version>``.
        """
        if run_uid not in self._results:
            self._results.create_container(run_uid, metadata={"run_uid": run_uid})
        run_node = self._results[run_uid]
        version = _next_version(list(run_node))
        md = {
            "run_uid": run_uid,
            "version": version,
            "created": dt.datetime.now(dt.UTC).isoformat(),
            "software": f"ssb_beamline {ssb_beamline.__version__}",
            "units": dict(units),
            **dict(metadata),
        }
        node = run_node.create_container(version, metadata=md)

        def write(item: tuple[str, np.ndarray]) -> None:
            key, array = item
            node.write_array(
                np.ascontiguousarray(array), key=key, metadata={"units": units.get(key, "")}
            )

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
        raise KeyError(f"Run {run_uid!r} has results {versions}, not {version!r}.")
    node = results_container[run_uid][version]
    arrays, tables = {}, {}
    for key in node:
        child = node[key]
        if child.structure_family == "table":
            tables[key] = child.read()
        else:
            arrays[key] = child.read()
    return StoredResult(run_uid, version, dict(node.metadata), arrays, tables)
