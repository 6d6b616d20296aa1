"""The tiled server configuration this project runs, embedded or standalone.

One function builds the configuration so that the embedded server, ``ssb-beamline
serve`` and a stock ``tiled serve config`` server (from the YAML that
:func:`write_server_config` writes) all serve the same catalog layout:

``DATA_DIR/catalog.db``
    SQLite catalog (metadata, structure).
``DATA_DIR/files`` and ``DATA_DIR/storage.duckdb``
    writable storage for arrays (results) and tables (event data).
``DATA_DIR/detector``
    readable storage: the HDF5 files that detectors write and tiled serves in place.

The bluesky ``application/json-seq`` exporter is registered so that
``run.documents()`` works from any tiled client.
"""

from __future__ import annotations

import errno
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssb_beamline.diskspace import file_system_of, free_bytes
from ssb_beamline.private_files import UnsafeFolderError, make_private_dir, restrict_dir

from .catalog_pool import pool_arguments

#: Environment variable naming a tiled server to use instead of the embedded one.
TILED_URI_ENV = "SSB_TILED_URI"
#: Environment variable holding the API key for the server.
TILED_API_KEY_ENV = "SSB_TILED_API_KEY"
#: Environment variable overriding the default data directory.
DATA_DIR_ENV = "SSB_DATA_DIR"

JSON_SEQ_EXPORTER = "bluesky_tiled_plugins.exporters:json_seq_exporter"
#: Adapter of detector files: tiled's, refusing a damaged file with its name and frame.
CHECKED_HDF5_ADAPTER = "ssb_beamline.storage.checked_hdf5:CheckedHDF5Adapter"
#: tiled's catalog, safe for concurrent table writers (see :mod:`.catalog_tree`).
CATALOG_TREE = "ssb_beamline.storage.catalog_tree:from_uri"
#: How long a catalog write waits for SQLite's one write lock (s).
CATALOG_LOCK_WAIT_S = 25.0


@dataclass(frozen=True)
class DataLayout:
    """Where a data directory keeps each part of the store.

    Attributes
    ----------
    root : Path
        The data directory (give it absolute: the paths served are built on it).
        Nothing is created until :meth:`create`.
    catalog_uri : str or None
        PostgreSQL URI of the catalog database; None keeps the catalog in
        ``root/catalog.db`` (SQLite).
    """

    root: Path
    #: PostgreSQL catalog database URI; None keeps the catalog in ``catalog.db``.
    catalog_uri: str | None = None

    def __post_init__(self) -> None:
        check_uri_safe_path(Path(self.root))

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.db"

    @property
    def catalog_url(self) -> str:
        """The catalog database tiled opens (SQLite in the data directory by default)."""
        if self.catalog_uri:
            from .catalog_db import tiled_catalog_uri

            return tiled_catalog_uri(self.catalog_uri)
        # wait up to 25 s for another connection's write (5 s by default): several
        # sessions writing at once on a loaded machine hold the lock longer than 5 s;
        # but less than the clients' 30 s read timeout: a write still waiting when its
        # client has given up (and will send it again) is work thrown away
        return f"sqlite:///{self.catalog}?timeout={CATALOG_LOCK_WAIT_S:g}"

    @property
    def files(self) -> Path:
        return self.root / "files"

    @property
    def tables(self) -> Path:
        return self.root / "storage.duckdb"

    @property
    def detector(self) -> Path:
        """Folder that detectors write HDF5 files into; tiled reads them in place."""
        return self.root / "detector"

    @property
    def api_key_file(self) -> Path:
        return self.root / ".api_key"

    def create(self) -> DataLayout:
        """Make the folders, private to their owner (0700; idempotent).

        A data directory that other users can enter (made by an older version) is
        made 0700 too: its mode guards everything in it.

        Raises
        ------
        DataDirectoryError
            If they cannot be made, or the data directory is not writable.
        """
        try:
            for folder in (self.root, self.files, self.detector):
                make_private_dir(folder)
            restrict_dir(self.root)
        except OSError as exc:
            raise DataDirectoryError(self.root, exc) from exc
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise DataDirectoryError(self.root, PermissionError("not writable"))
        return self


class DataDirectoryError(OSError, ValueError):
    """The data directory (or the journal in it) cannot be created or written.

    It is an ``OSError`` and, so that the command line reports it as a usage
    error rather than a crash, a ``ValueError``.
    """

    def __init__(self, path: Path, cause: BaseException, what: str = "data directory") -> None:
        if getattr(cause, "errno", None) == errno.ENOSPC:
            mount = file_system_of(path)
            fix = (
                f"its file system {mount} is full ({free_bytes(path) / 1024**2:.1f} MB free). "
                f"Free space on {mount}, or choose a data directory on a larger file system "
                "with --data-dir or $SSB_DATA_DIR; then run `ssb-beamline sync`."
            )
            super().__init__(f"Cannot write the {what} {path}: {fix}")
        elif isinstance(cause, UnsafeFolderError):  # names the folder, the problem, the fix
            super().__init__(f"Cannot use {path} as the {what}: {cause}")
        else:
            super().__init__(
                f"Cannot use {path} as the {what} ({type(cause).__name__}: {cause}). "
                "Choose a writable directory with --data-dir or $SSB_DATA_DIR."
            )
        self.path = path


def check_uri_safe_path(root: Path) -> None:
    """Refuse a data directory whose path the store's URIs cannot hold.

    The catalogue (``sqlite:///<root>/catalog.db?timeout=...``) and the detector
    files (``file://localhost/<root>/...``) are named by URIs: a ``?`` there starts
    the query (the catalogue was made next to the directory, outside it), and a
    control character (a newline) cannot be opened at all.

    Parameters
    ----------
    root : pathlib.Path
        The data directory.

    Raises
    ------
    ValueError
        The message names the character and the fix.

    Examples
    --------
    >>> check_uri_safe_path(Path("/data/run #1 (50%)"))
    >>> check_uri_safe_path(Path("/data/what?"))
    Traceback (most recent call last):
    ...
    ValueError: The data directory /data/what? holds '?', which ...
    """
    text = str(root)
    bad = sorted({c for c in text if c == "?" or ord(c) < 32 or ord(c) == 127})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise ValueError(
            f"The data directory {text} holds {shown}, which the URIs of its catalogue and "
            "detector files cannot carry (they would point outside it). Choose a path "
            "without it with --data-dir or $SSB_DATA_DIR."
        )


def default_data_dir() -> Path:
    """The data directory: ``$SSB_DATA_DIR`` or ``~/.local/share/ssb_beamline``."""
    if env := os.environ.get(DATA_DIR_ENV):
        return Path(env).expanduser()
    return Path.home() / ".local" / "share" / "ssb_beamline"


def load_or_create_api_key(layout: DataLayout) -> str:
    """Return the server's API key: ``$SSB_TILED_API_KEY``, else one kept in the data dir.

    The key file is created with mode 0600 so that only its owner can read it.

    Parameters
    ----------
    layout : DataLayout
        The data directory; its folders are created when a new key is written
        (``DataDirectoryError`` if that is impossible).
    """
    if env := os.environ.get(TILED_API_KEY_ENV):
        return env
    if layout.api_key_file.exists():
        return layout.api_key_file.read_text().strip()
    key = secrets.token_hex(32)
    layout.create()
    fd = os.open(layout.api_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


def server_config(layout: DataLayout, *, api_key: str | None) -> dict[str, Any]:
    """The tiled server configuration (the same schema as ``tiled serve config``).

    Parameters
    ----------
    layout : DataLayout
        The data directory and catalog served.
    api_key : str or None
        The single-user API key; None leaves it out so that a YAML file can take
        it from the environment (``tiled serve config`` reads
        ``TILED_SINGLE_USER_API_KEY``; without it tiled makes a random one).
    """
    authentication: dict[str, Any] = {}
    if api_key is not None:
        authentication["single_user_api_key"] = api_key
    return {
        "authentication": authentication,
        "trees": [
            {
                "path": "/",
                # tiled's catalog; one thread at a time on the DuckDB table storage
                "tree": CATALOG_TREE,
                "args": {
                    "uri": layout.catalog_url,
                    "writable_storage": [str(layout.files), f"duckdb:///{layout.tables}"],
                    "readable_storage": [str(layout.detector)],
                    # closed detector files read without SWMR; damaged ones named (issue 11)
                    "adapters_by_mimetype": {"application/x-hdf5": CHECKED_HDF5_ADAPTER},
                    # tiled initialises a new catalog in a subprocess (seconds);
                    # skip that when the catalog already exists. A PostgreSQL
                    # catalog is prepared before (catalog_db.prepare_catalog).
                    "init_if_not_exists": not (layout.catalog_uri or layout.catalog.exists()),
                    # PostgreSQL: connections kept for a scan's end (see catalog_pool)
                    **pool_arguments(layout.catalog_uri),
                },
            }
        ],
        "media_types": {"BlueskyRun": {"application/json-seq": JSON_SEQ_EXPORTER}},
    }


def write_server_config(layout: DataLayout, path: Path) -> Path:
    """Write a YAML config for a stock ``tiled serve config`` server.

    The API key is not written: set ``TILED_SINGLE_USER_API_KEY`` in the server's
    environment. Two differences from ``ssb-beamline serve``: a stock server has
    no read-only keys, and tiled prints its key in the start-up banner on stderr
    (keep that output private).

    Parameters
    ----------
    layout : DataLayout
        The data directory and catalog to serve (a PostgreSQL URI is written
        without its password: the server reads ``PGPASSWORD`` or ``~/.pgpass``).
    path : Path
        The YAML file to write (overwritten if it exists).

    Returns
    -------
    Path
        ``path``.
    """
    import yaml

    config = server_config(layout, api_key=None)
    del config["authentication"]
    args = config["trees"][0]["args"]
    args["init_if_not_exists"] = True
    if layout.catalog_uri:  # never a password in a file: tiled's asyncpg reads $PGPASSWORD
        from .catalog_db import without_password

        args["uri"] = without_password(args["uri"])
    path.write_text(
        "# tiled server for ssb_beamline: run with\n"
        "#   TILED_SINGLE_USER_API_KEY=... tiled serve config THIS_FILE [--port N]\n"
        "# tiled prints the key in its start-up banner on stderr: keep that output private.\n"
        "# A PostgreSQL catalog takes its password from PGPASSWORD (or ~/.pgpass).\n"
        "# Detectors must write their HDF5 files under the readable_storage folder.\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
    return path
