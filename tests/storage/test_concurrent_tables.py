"""Concurrent table writers on one server, on each catalog (the load test's failures, cheaply).

``benchmarks/bench_load.py`` (4 scanning sessions + 8 readers) saw two kinds of
server errors; both root causes are reproduced here on tiled itself, and fixed in
:mod:`ssb_beamline.storage.catalog_tree`:

- tiled hands every request thread the one DuckDB connection of the table
  storage: one request's close rolls back another's open transaction, whose rows
  are then lost, or whose commit fails ("cannot commit - no transaction is
  active", seen in the load test on both catalogs);
- tiled looks an asset up, then inserts it: two PostgreSQL sessions that both miss
  the DuckDB file's asset (shared by every table) both insert it, and the second
  fails ("duplicate key value violates unique constraint ix_assets_data_uri").

If a tiled release fixes either, its ``test_tiled_...`` reproduction fails: the
workaround in ``catalog_tree`` can then go.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from contextlib import closing

import numpy as np
import pyarrow as pa
import pytest

from ssb_beamline.storage import EmbeddedTiledServer
from ssb_beamline.storage.catalog_db import prepare_catalog, tiled_catalog_uri
from ssb_beamline.storage.catalog_tree import from_uri, serialize_connections

N_THREADS = 6
N_APPENDS = 4


def _duckdb(path):
    from tiled.storage import EmbeddedSQLStorage

    storage = EmbeddedSQLStorage(f"duckdb:///{path}")
    with closing(storage.connect()) as setup:
        setup.cursor().execute("CREATE TABLE t (x INTEGER)")
        setup.commit()
    return storage


def _insert_then_commit(storage, value: int) -> None:
    connection = storage.connect()
    try:
        connection.cursor().execute(f"INSERT INTO t VALUES ({value})")
        yield  # the transaction is open here
        connection.commit()
    finally:
        connection.close()


def _rows_in(storage) -> list[tuple[int]]:
    with closing(storage.connect()) as check:
        cursor = check.cursor()
        cursor.execute("SELECT x FROM t ORDER BY x")
        return cursor.fetchall()


def test_tiled_shares_one_duckdb_transaction_between_requests(tmp_path):
    storage = _duckdb(tmp_path / "stock.duckdb")
    try:
        first = _insert_then_commit(storage, 1)
        next(first)  # request 1: its transaction is open
        storage.connect().close()  # request 2 (any thread) ends: the pool rolls back
        next(first, None)  # request 1 commits: no error, nothing to commit
        assert _rows_in(storage) == []  # its row is lost (or, threaded, its commit fails)
    finally:
        storage.dispose()


def test_serialized_duckdb_connection_waits_for_the_open_transaction(tmp_path):
    storage = _duckdb(tmp_path / "serialized.duckdb")
    serialize_connections(storage)
    second_done = threading.Event()

    def second_request() -> None:
        for _ in _insert_then_commit(storage, 2):
            pass
        second_done.set()

    try:
        first = _insert_then_commit(storage, 1)
        next(first)
        thread = threading.Thread(target=second_request)
        thread.start()
        assert not second_done.wait(0.3)  # it waits for request 1's connection
        next(first, None)  # request 1 commits and closes
        thread.join(timeout=30)
        assert second_done.is_set()
        assert _rows_in(storage) == [(1,), (2,)]
    finally:
        storage.dispose()


async def _put_asset_twice(adapter, data_uri: str, wait_for_lock: bool):
    """Two catalog sessions register one asset; the second looks before the first commits.

    Returns the two asset ids, or the second session's error.
    """
    from sqlalchemy import text
    from tiled.structures.data_source import Asset

    asset = Asset(data_uri=data_uri, is_directory=False, parameter="data_uri", num=None)
    async with adapter.context.session() as one, adapter.context.session() as two:
        first = await adapter._put_asset(one, asset)  # inserted, not committed
        second = asyncio.create_task(adapter._put_asset(two, asset))
        if wait_for_lock:  # until session two waits on session one's row
            async with adapter.context.session() as watch:
                for _ in range(600):
                    query = "SELECT count(*) FROM pg_locks WHERE NOT granted"
                    if (await watch.execute(text(query))).scalar():
                        break
                    await asyncio.sleep(0.05)
        await one.commit()
        try:
            return first, await second
        except Exception as exc:
            return exc


def _race(postgres_cluster, tmp_path, tree, wait_for_lock: bool):
    """A fresh PostgreSQL catalog built by ``tree``; :func:`_put_asset_twice` on it,
    with the table storage's asset."""
    uri = postgres_cluster.new_database()
    prepare_catalog(uri, files_dir=tmp_path / "files")
    tables = f"duckdb:///{tmp_path / 'storage.duckdb'}"
    adapter = tree(tiled_catalog_uri(uri), writable_storage=[tmp_path / "files", tables])
    storage = next(s for s in adapter.context.writable_storage.values() if "duckdb" in s.uri)

    async def race():
        try:
            return await _put_asset_twice(adapter, storage.uri, wait_for_lock)
        finally:
            await adapter.context.engine.dispose()

    return asyncio.run(race())


def test_tiled_asset_registration_races_on_postgresql(tmp_path, postgres_cluster):
    from sqlalchemy.exc import IntegrityError
    from tiled.catalog import from_uri as tiled_from_uri

    outcome = _race(postgres_cluster, tmp_path, tiled_from_uri, wait_for_lock=True)
    assert isinstance(outcome, IntegrityError)
    assert "ix_assets_data_uri" in str(outcome)


def test_table_asset_is_registered_before_any_request(tmp_path, postgres_cluster):
    first, second = _race(postgres_cluster, tmp_path, from_uri, wait_for_lock=False)
    assert first == second  # both sessions found the row the server start inserted


def _rows(i: int, k: int) -> pa.Table:
    return pa.table({f"x{i}": np.full(3, k, np.int64), "y": np.arange(3, dtype=np.float64) + k})


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


def _at_once(server, work) -> list[str]:
    """Run ``work(i, client)`` in threads (a client each) released together; their errors."""
    from tiled.client import from_uri as client_from_uri

    errors: list[str] = []
    barrier = threading.Barrier(N_THREADS)

    def run(i: int, client) -> None:
        try:
            barrier.wait(timeout=60)
            work(i, client)
        except Exception as exc:
            errors.append(f"thread {i}: {type(exc).__name__}: {exc}"[:300])

    clients = [client_from_uri(server.url, api_key=server.api_key) for _ in range(N_THREADS)]
    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tables_created_appended_and_read_at_once_all_succeed(tmp_path, postgres_cluster):
    """Through the project's server on PostgreSQL (where both races showed): the
    first tables of a fresh catalog created at once, then appended to and read at
    once; no request fails (tiled's client retries a failed creation, so the
    server's error log is checked too)."""
    catalog = postgres_cluster.new_database()
    server_errors = _Errors()
    logging.getLogger("uvicorn.error").addHandler(server_errors)
    try:
        with EmbeddedTiledServer(tmp_path, catalog=catalog, in_process=True) as server:
            parent = server.client().create_container("tables")
            created = _at_once(
                server,
                lambda i, c: c["tables"].create_appendable_table(_rows(i, 0).schema, key=f"t{i}"),
            )

            def append_and_read(i: int, client) -> None:
                table = client["tables"][f"t{i}"]
                for k in range(N_APPENDS):
                    table.append_partition(0, _rows(i, k))
                    assert len(table.read()) == 3 * (k + 1)

            appended = _at_once(server, append_and_read)
            frames = [parent[f"t{i}"].read() for i in range(N_THREADS)]
    finally:
        logging.getLogger("uvicorn.error").removeHandler(server_errors)
    assert (created, appended, server_errors.records) == ([], [], [])
    for i, frame in enumerate(frames):  # every row once, in order
        assert frame[f"x{i}"].tolist() == np.repeat(np.arange(N_APPENDS), 3).tolist()


def _synchronous_mode(tmp_path) -> int:
    from sqlalchemy import text
    from tiled.server.connection_pool import close_database_connection_pool

    tmp_path.mkdir()
    catalog = from_uri(
        f"sqlite:///{tmp_path / 'catalog.db'}", writable_storage=[str(tmp_path / "files")],
        init_if_not_exists=True,
    )  # fmt: skip

    async def ask() -> int:
        try:
            async with catalog.context.session() as db:
                return (await db.execute(text("PRAGMA synchronous"))).scalar_one()
        finally:
            await close_database_connection_pool(catalog.context.database_settings)

    return asyncio.run(ask())


def test_the_sqlite_catalog_commits_without_an_fsync_each_time(tmp_path, monkeypatch):
    monkeypatch.delenv("SSB_CATALOG_SYNCHRONOUS", raising=False)
    assert _synchronous_mode(tmp_path / "a") == 1  # NORMAL (SQLite's default is 2, FULL)
    monkeypatch.setenv("SSB_CATALOG_SYNCHRONOUS", "full")
    assert _synchronous_mode(tmp_path / "b") == 2
    monkeypatch.setenv("SSB_CATALOG_SYNCHRONOUS", "sometimes")
    with pytest.raises(ValueError, match="SSB_CATALOG_SYNCHRONOUS='SOMETIMES' is not a SQLite"):
        _synchronous_mode(tmp_path / "c")
