"""Open the project's tiled store: the embedded server, or one named by URI."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from .catalog import catalog_specs, ensure_catalog_spec
from .dir_lock import data_dir_lock
from .server import EmbeddedTiledServer
from .server_config import TILED_API_KEY_ENV, TILED_URI_ENV, default_data_dir

__all__ = [
    "RAW_CONTAINER",
    "RESULTS_CONTAINER",
    "TiledStore",
    "TiledUnavailableError",
    "check_tiled_uri",
    "open_store",
]

logger = logging.getLogger(__name__)

#: Container (under the server root) that holds the raw bluesky runs.
RAW_CONTAINER = "raw"
#: Container (under the server root) that holds analysis results, keyed by run uid.
RESULTS_CONTAINER = "results"


class TiledUnavailableError(ConnectionError):
    """The tiled server could not be reached or refused the credentials."""


@dataclass
class TiledStore:
    """A connected tiled store: where raw runs and results live.

    Attributes
    ----------
    client : tiled container client
        The server root.
    raw : tiled container client
        The raw bluesky runs (written by bluesky's ``TiledWriter``).
    results : tiled container client
        The analysis results, ``results[run_uid][version]``.
    server : EmbeddedTiledServer or None
        The embedded server, when this store started one (closed with the store).
    detector_dir : pathlib.Path or None
        Where detectors should write HDF5 files so that the server can serve them
        (None for a remote server: configure the detector path there).
    journal_dir : pathlib.Path or None
        Where documents are journaled until tiled has them.
    uri : str
        The server's API address (``http://127.0.0.1:8000/api/v1``); "" until known.
    """

    client: Any
    raw: Any
    results: Any
    server: EmbeddedTiledServer | None = None
    detector_dir: Path | None = None
    uri: str = ""
    journal_dir: Path | None = None
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        if not self._closed and self.server is not None:
            self.server.close()
        self._closed = True

    def __enter__(self) -> TiledStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: Attempts to create a top-level container that tiled answered with a conflict
#: (another process created it at the same moment) or a busy database (5xx).
CREATE_ATTEMPTS = 5


def _ensure_container(parent, key: str, specs=None):
    """``parent[key]``, created if missing.

    Safe when other processes create it at the same moment (two demos on a brand-new
    server): whoever loses the race gets a 409 from tiled and reads the winner's
    container instead; a 5xx (database busy) is tried again after a short wait.
    """
    for attempt in range(CREATE_ATTEMPTS):
        if key in parent:
            return parent[key]
        try:
            parent.create_container(key, metadata={"ssb_beamline": key}, specs=specs)
        except httpx.HTTPStatusError as exc:  # tiled's ClientError is one
            status = exc.response.status_code
            if status == httpx.codes.CONFLICT:
                logger.debug("%r was created by another process at the same time", key)
            elif status < 500 or attempt == CREATE_ATTEMPTS - 1:
                raise
            else:
                time.sleep(0.1 * 2**attempt)
            continue
        break
    return parent[key]


def check_tiled_uri(uri: str, *, timeout_s: float = 5.0) -> None:
    """Raise :class:`TiledUnavailableError` unless a tiled server answers at ``uri``.

    Parameters
    ----------
    uri : str
        The tiled server's API address, ``http(s)://host:port/api/v1``.
    timeout_s : float, default 5.0
        How long to wait for ``/healthz`` to answer, s (keyword only).

    Raises
    ------
    TiledUnavailableError
        If ``uri`` is not an http(s) address, nothing answers, or the answer is not
        HTTP 200; the message says how to start or point at a server.
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TiledUnavailableError(
            f"{uri!r} is not a tiled server URI. Give one like "
            "http://127.0.0.1:8000/api/v1 (with --tiled or $SSB_TILED_URI)."
        )
    probe = f"{parts.scheme}://{parts.netloc}/healthz"
    try:
        response = httpx.get(probe, timeout=timeout_s, trust_env=False)
    except httpx.HTTPError as exc:
        raise TiledUnavailableError(
            f"No tiled server answered at {parts.scheme}://{parts.netloc} "
            f"({type(exc).__name__}: {exc}). Start one with `ssb-beamline serve`, "
            "or point --tiled / $SSB_TILED_URI at a running server."
        ) from exc
    if response.status_code != 200:
        raise TiledUnavailableError(
            f"{probe} answered HTTP {response.status_code}; that is not a healthy tiled "
            "server. Check the URI and the server's log."
        )


def open_store(
    uri: str | None = None,
    *,
    api_key: str | None = None,
    data_dir: str | Path | None = None,
) -> TiledStore:
    if uri or os.environ.get(TILED_URI_ENV):
        return _open_store(uri, api_key=api_key, data_dir=data_dir)
    if (service := _background_service(data_dir)) is not None:
        return service
    # Two sessions on one data directory start their embedded servers one at a
    # time: a fresh catalog is initialised once, ``raw``/``results`` created once.
    with data_dir_lock(data_dir or default_data_dir()):
        return _open_store(uri, api_key=api_key, data_dir=data_dir)


def _open_store(
    uri: str | None = None,
    *,
    api_key: str | None = None,
    data_dir: str | Path | None = None,
) -> TiledStore:
    """Connect to tiled: ``uri`` (or ``$SSB_TILED_URI``), else start the embedded server.

    Parameters
    ----------
    uri : str, optional
        A running tiled server, e.g. ``http://127.0.0.1:8000/api/v1``.
    api_key : str, optional
        Its key (default ``$SSB_TILED_API_KEY``). Never logged.
    data_dir : path, optional
        Data directory of the embedded server (default :func:`default_data_dir`).

    Raises
    ------
    TiledUnavailableError
        If the named server does not answer or refuses the key.
    """
    from tiled.client import from_uri

    uri = uri or os.environ.get(TILED_URI_ENV)
    if uri is None:
        server = EmbeddedTiledServer(data_dir or default_data_dir())
        client = server.client()
        detector_dir: Path | None = server.layout.detector
        journal_dir = server.layout.root / "journal"
        uri = server.url
    else:
        server = None
        detector_dir = None
        journal_dir = Path(data_dir or default_data_dir()) / "journal"
        check_tiled_uri(uri)
        api_key = api_key or os.environ.get(TILED_API_KEY_ENV)
        try:
            client = from_uri(uri, api_key=api_key)
        except Exception as exc:  # tiled raises several client errors here
            raise TiledUnavailableError(
                f"The tiled server at {uri} refused the connection ({type(exc).__name__}). "
                "Check the API key ($SSB_TILED_API_KEY) and the URI."
            ) from exc
    try:
        raw = _ensure_container(client, RAW_CONTAINER, specs=catalog_specs())
        raw = ensure_catalog_spec(client, RAW_CONTAINER)  # migrates an older data directory
        results = _ensure_container(client, RESULTS_CONTAINER)
    except Exception:
        if server is not None:
            server.close()
        raise
    logger.info("tiled store at %s", uri)
    return TiledStore(
        client=client,
        raw=raw,
        results=results,
        server=server,
        detector_dir=detector_dir,
        uri=uri,
        journal_dir=journal_dir,
    )


open_store.__doc__ = _open_store.__doc__


def _background_service(data_dir: str | Path | None) -> TiledStore | None:
    """The store through the data directory's background server, when one runs.

    That server holds the data directory: a session connects to it (the same
    catalog, detector folder and journal) instead of waiting for it to stop.
    """
    from .server_config import DataLayout, load_or_create_api_key
    from .service import running_service

    found = running_service(data_dir or default_data_dir())
    if found is None:
        return None
    key = load_or_create_api_key(DataLayout(found.data_dir))
    store = _open_store(found.url, api_key=key, data_dir=found.data_dir)
    store.detector_dir = found.detector_dir
    return store
