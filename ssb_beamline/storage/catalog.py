"""The stock bluesky catalogue conventions for the ``raw`` container, and scan numbers.

- ``raw`` carries the ``CatalogOfBlueskyRuns`` spec (version ``"3.0"``), with which
  bluesky-tiled-plugins' client gives ``raw[-1]``, ``raw[scan_id]``,
  ``raw.search(ScanID(n))`` and ``raw.search(PartialUID(p))``. A data directory made
  before has a spec-less ``raw``: :func:`ensure_catalog_spec` adds the spec (tiled
  0.2.20's ``update_metadata(specs=...)``) and logs the migration once.
- :class:`ScanIdCounter` numbers runs: the RunEngine's ``scan_id_source``. The
  next number is one more than the highest of (a counter file in the data
  directory, read and written under an ``flock``; the highest ``scan_id`` in
  ``raw`` when the session started; the session's last). Two sessions sharing a
  data directory therefore never get the same number, and a session started on
  an existing server continues its numbering. (Sessions on different hosts that
  share only the server, each with its own data directory, can collide: give
  them one data directory on a shared file system, or separate ranges.)

bluesky's ``PersistentDict`` (``RE.md`` on disk) is not used for this: each
session keeps its own copy in memory, so two concurrent sessions would hand out
the same numbers.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ssb_beamline.private_files import make_private_dir

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None  # type: ignore[assignment]

__all__ = ["CATALOG_SPEC_NAME", "CATALOG_SPEC_VERSION", "ScanIdCounter", "ensure_catalog_spec",
           "highest_scan_id"]  # fmt: skip

logger = logging.getLogger(__name__)

CATALOG_SPEC_NAME = "CatalogOfBlueskyRuns"
CATALOG_SPEC_VERSION = "3.0"


def catalog_specs() -> list:
    """The specs ``raw`` is created with."""
    from tiled.structures.core import Spec

    return [Spec(CATALOG_SPEC_NAME, version=CATALOG_SPEC_VERSION)]


def ensure_catalog_spec(parent, key: str):
    """``parent[key]`` with the ``CatalogOfBlueskyRuns`` spec, added if it lacks it.

    Adding the spec is a one-time migration of an older store (logged as a
    warning); it needs a key allowed to write metadata.

    Parameters
    ----------
    parent : tiled container client
        The store's root node.
    key : str
        The child container (e.g. ``"raw"``); a missing key raises ``KeyError``.
    """
    node = parent[key]
    if any(spec.name == CATALOG_SPEC_NAME for spec in node.specs):
        return node
    node.update_metadata(specs=[*catalog_specs(), *node.specs], drop_revision=True)
    logger.warning(
        "Migrated the %r container to the stock bluesky catalogue (spec %s %s): "
        "raw[-1], raw[scan_id] and the ScanID / PartialUID searches now work on it.",
        key, CATALOG_SPEC_NAME, CATALOG_SPEC_VERSION,
    )  # fmt: skip
    return parent[key]  # a fresh client, of the catalogue's class


def highest_scan_id(raw) -> int:
    """The highest ``start.scan_id`` stored in ``raw`` (0 when there is none).

    Parameters
    ----------
    raw : tiled container client
        The runs container; one sorted query on the server, whatever its size.
        A run whose top ``scan_id`` is not an int (e.g. missing) gives 0.
    """
    for node in raw.sort(("start.scan_id", -1)).values().head(1):
        value = (node.metadata.get("start") or {}).get("scan_id")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return 0


class ScanIdCounter:
    """A ``scan_id_source`` for the RunEngine that persists in ``directory``.

    Parameters
    ----------
    directory : path
        The data directory; the counter is ``<directory>/scan_id`` (mode 0600).
    raw : tiled container, optional
        The runs; their highest ``scan_id`` is a floor, read once, here (never
        while a run opens: tiled may be down then, and the RunEngine must not wait
        for it; a failure is logged and the file decides).

    Examples
    --------
    >>> import tempfile
    >>> counter = ScanIdCounter(tempfile.mkdtemp())
    >>> counter({}), counter({"scan_id": 1}), counter({})
    (1, 2, 3)
    """

    def __init__(self, directory: str | Path, raw=None) -> None:
        self.path = Path(directory) / "scan_id"
        self.floor = 0
        if raw is not None:
            try:
                self.floor = highest_scan_id(raw)
            except Exception as exc:  # numbering must never stop a session
                logger.warning("could not read the highest scan_id from tiled (%s)", exc)

    def __call__(self, md: dict) -> int:
        floor = max(self.floor, int(md.get("scan_id") or 0))
        make_private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+") as f:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # released when the file closes
            text = f.read().strip()
            stored = int(text) if text.isdigit() else 0
            scan_id = max(stored, floor) + 1
            f.seek(0)
            f.truncate()
            f.write(f"{scan_id}\n")
            f.flush()
            os.fsync(f.fileno())
        return scan_id
