"""The project's tiled catalog: tiled's, made safe for concurrent writers of tables.

``server_config`` serves this tree instead of tiled's ``catalog`` alias, so the
embedded server, ``ssb-beamline serve`` and a stock ``tiled serve config`` all get
three fixes that tiled 0.2.20 lacks. The first two were found by
``benchmarks/bench_load.py`` (4 scanning sessions and 8 readers on one server) and
are reproduced cheaply by ``tests/storage/test_concurrent_tables.py``.

One DuckDB connection, shared by every request thread
    Every appendable table (the event streams of every run) lives in the one
    DuckDB file of the data directory, and tiled's ``SQLStorage`` hands all request
    threads the same DuckDB connection (a ``StaticPool``). Two requests at once then
    commit or roll back each other's transactions: "cannot commit - no transaction
    is active", "No active transaction, cannot rollback", "Catalog write-write
    conflict", and requests that never answer. :func:`serialize_connections` makes
    a DuckDB storage hand out its connection to one thread at a time, from
    ``connect()`` to ``close()`` (tiled opens it with ``contextlib.closing`` for each
    table creation, append, read and delete). Table requests are small (event rows);
    arrays and detector frames do not use this storage and stay concurrent.

One asset row shared by every table, created by whichever request comes first
    All those tables share one asset (the DuckDB file's URI). tiled looks an asset
    up and inserts it if missing in two statements; on PostgreSQL (READ COMMITTED)
    two sessions creating their first tables at once both miss it, and the second
    insert fails: "duplicate key value violates unique constraint
    ix_assets_data_uri" (a 500 to a scan's writer). :func:`register_table_assets`
    inserts the storage's asset row when the server starts (``ON CONFLICT DO
    NOTHING``), so that requests only ever find it. A SQLite catalog cannot race
    there: the new node's row already holds SQLite's write lock when tiled looks
    the asset up.

A SQLite catalog that syncs the disk at every commit
    Each catalog write holds SQLite's one write lock across an fsync; on a busy
    disk the writes of several sessions then queue until their clients time out.
    :func:`commit_without_fsync` opens the catalog's connections with
    ``PRAGMA synchronous=NORMAL`` (safe in WAL mode; see its docstring).

Hand-written because tiled has no option for any of them: its DuckDB pool is fixed and
its asset insert is not an upsert, and its SQLite pragmas are fixed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

__all__ = ["commit_without_fsync", "from_uri", "register_table_assets", "serialize_connections"]

logger = logging.getLogger(__name__)

_SERIALIZED = "_ssb_serialized_connections"
#: Environment variable overriding the SQLite catalog's ``PRAGMA synchronous``.
SYNCHRONOUS_ENV = "SSB_CATALOG_SYNCHRONOUS"


#: How long a request waits for the DuckDB connection before it goes ahead unserialized
#: (logged): a connection that is never closed must not stop the server for good.
GATE_WAIT_S = 20.0


class _Gate:
    """A lock re-entrant for the thread that holds it, releasable from any thread.

    tiled may close a connection on another worker thread than the one that
    opened it; a ``threading.RLock`` can then never be released and every later
    table request would wait for ever.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owner: int | None = None
        self._count = 0

    def acquire(self, timeout: float) -> bool:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._count += 1
                return True
            if not self._cond.wait_for(lambda: self._owner is None, timeout):
                return False
            self._owner, self._count = me, 1
            return True

    def release(self) -> None:
        with self._cond:
            self._count -= 1
            if self._count <= 0:
                self._owner, self._count = None, 0
                self._cond.notify()


class _HeldConnection:
    """A pooled connection that releases its storage's lock when closed."""

    def __init__(self, connection: Any, lock: _Gate | None) -> None:
        self._connection = connection
        self._lock: _Gate | None = lock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def close(self) -> None:
        lock, self._lock = self._lock, None
        if lock is None:
            return
        try:
            self._connection.close()
        finally:
            lock.release()

    def __enter__(self) -> _HeldConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serialize_connections(storage: Any) -> None:
    """Let one thread at a time use ``storage``'s connection, from ``connect()`` to ``close()``.

    Calling this twice is harmless. The lock is re-entrant (a thread that holds
    the connection may open it again).

    Parameters
    ----------
    storage : tiled.storage.SQLStorage
        The storage whose ``connect`` is wrapped (in place).

    Examples
    --------
    >>> from tiled.storage import EmbeddedSQLStorage
    >>> storage = EmbeddedSQLStorage("duckdb:///tmp/example.duckdb")
    >>> serialize_connections(storage)
    >>> getattr(storage, _SERIALIZED)
    True
    """
    if getattr(storage, _SERIALIZED, False):
        return
    lock = _Gate()
    connect = type(storage).connect.__get__(storage)

    def serialized_connect() -> _HeldConnection:
        if not lock.acquire(GATE_WAIT_S):
            logger.warning(
                "the table storage's connection was held for over %.0f s; this request "
                "goes ahead without waiting for it",
                GATE_WAIT_S,
            )
            return _HeldConnection(connect(), None)
        try:
            return _HeldConnection(connect(), lock)
        except BaseException:
            lock.release()
            raise

    # tiled's storages are frozen dataclasses; equality and hashing use their
    # fields only, so the registry still finds this instance by its URI
    object.__setattr__(storage, "connect", serialized_connect)
    object.__setattr__(storage, _SERIALIZED, True)


def _asset_uri(storage: Any) -> str:
    """The ``data_uri`` tiled records for a table in ``storage`` (as ``SQLAdapter`` does)."""
    from tiled.storage import strip_connection_parameters, strip_storage_uri_query_on_write

    if strip_storage_uri_query_on_write():
        return strip_connection_parameters(storage.uri)
    return storage.uri


def register_table_assets(catalog_uri: str, data_uris: list[str], timeout_s: float = 10.0) -> None:
    """Insert the asset rows of the table storages into a PostgreSQL catalog, if missing.

    Runs on its own event loop in a short-lived thread, so that it may be called
    from any thread (tiled builds its app synchronously), with its own engine.

    Parameters
    ----------
    catalog_uri : str
        The catalog's SQLAlchemy URI (``postgresql+asyncpg://...``).
    data_uris : list of str
        The assets' ``data_uri`` s, as tiled records them.
    timeout_s : float
        Bound on connecting.
    """
    from sqlalchemy.dialects.postgresql import insert
    from sqlalchemy.ext.asyncio import create_async_engine
    from tiled.catalog import orm

    async def register() -> None:
        engine = create_async_engine(catalog_uri, connect_args={"timeout": timeout_s})
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    insert(orm.Asset)
                    .values([{"data_uri": uri, "is_directory": False} for uri in data_uris])
                    .on_conflict_do_nothing(index_elements=["data_uri"])
                )
        finally:
            await engine.dispose()

    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(register())
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="register-table-assets")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def commit_without_fsync(engine: Any) -> None:
    """Open every new connection of a SQLite catalog with ``PRAGMA synchronous=NORMAL``.

    In WAL mode (see :func:`~.server.use_write_ahead_log`) SQLite then syncs the
    log at checkpoints instead of at every commit. The catalog stays consistent;
    an operating-system crash or power cut (not a killed process) may lose the
    last commits, which the writers' journals still hold. With ``FULL`` (SQLite's
    default) each catalog write holds the one write lock across an fsync, and on
    a busy disk the writes queue behind it until clients time out (seen in CI as
    a server that stopped answering for two minutes). ``$SSB_CATALOG_SYNCHRONOUS``
    (e.g. ``FULL``) overrides the mode.

    Parameters
    ----------
    engine : sqlalchemy.ext.asyncio.AsyncEngine
        The catalog's engine (tiled's).
    """
    from sqlalchemy import event

    mode = os.environ.get(SYNCHRONOUS_ENV, "NORMAL").upper()
    if mode not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise ValueError(
            f"${SYNCHRONOUS_ENV}={mode!r} is not a SQLite synchronous mode; "
            "use NORMAL (default), FULL or EXTRA"
        )

    def on_connect(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        try:
            cursor.execute(f"PRAGMA synchronous={mode}")
        finally:
            cursor.close()

    event.listen(engine.sync_engine, "connect", on_connect)


def from_uri(uri: str, **kwargs: Any) -> Any:
    """tiled's ``tiled.catalog.from_uri`` (same arguments), its table storage made safe.

    Parameters
    ----------
    uri : str
        The catalog database's URI.
    **kwargs
        tiled's other ``from_uri`` arguments (storage, adapters, ...).

    Returns
    -------
    CatalogContainerAdapter
        The catalog adapter tiled builds.
    """
    from tiled.catalog import from_uri as tiled_from_uri
    from tiled.storage import SQLStorage

    adapter = tiled_from_uri(uri, **kwargs)
    if adapter.context.engine.dialect.name == "sqlite":
        commit_without_fsync(adapter.context.engine)
    tables = [s for s in adapter.context.writable_storage.values() if isinstance(s, SQLStorage)]
    for storage in tables:
        if storage.dialect == "duckdb":
            serialize_connections(storage)
    if tables and adapter.context.engine.dialect.name == "postgresql":
        register_table_assets(
            adapter.context.engine.url.render_as_string(hide_password=False),
            [_asset_uri(s) for s in tables],
        )
    return adapter
