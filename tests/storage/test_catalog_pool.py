"""A burst of requests reuses the server's PostgreSQL connections instead of opening new ones."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tiled.client import from_uri

from ssb_beamline.storage import EmbeddedTiledServer
from ssb_beamline.storage.catalog_pool import (
    MAX_OVERFLOW,
    POOL_SIZE,
    POOL_SIZE_ENV,
    pool_arguments,
)
from ssb_beamline.storage.server_config import DataLayout, server_config

#: Requests in flight at once: more than tiled's 5 kept connections, as at a scan's end.
BURST = 16


@pytest.fixture(scope="module")
def pg_served(tmp_path_factory, postgres_cluster):
    uri = postgres_cluster.new_database("pool")
    with EmbeddedTiledServer(tmp_path_factory.mktemp("pool-data"), catalog=uri) as server:
        yield server, uri.rsplit("/", 1)[1]


def _sessions(cluster, database: str) -> int:
    """Connections ever opened to ``database`` (PostgreSQL's own count), once it is settled.

    Each backend adds its own connection to the count when it flushes its statistics,
    which PostgreSQL defers (by a second, or longer when the machine is busy): the count
    is read until it has not changed for 2 s (CI read 19 where 18 was the count).
    """
    query = f"SELECT sessions FROM pg_stat_database WHERE datname = '{database}'"
    count, same_since = int(cluster.psql(query).strip()), time.monotonic()
    deadline = same_since + 60.0  # a ceiling for a count that never settles only
    while time.monotonic() - same_since < 2.0 and time.monotonic() < deadline:
        time.sleep(0.25)
        now = int(cluster.psql(query).strip())
        if now != count:
            count, same_since = now, time.monotonic()
    return count


def _burst(server, prefix: str) -> None:
    """``BURST`` container creations at once, each followed by a read of its listing."""
    headers = {"Authorization": f"Apikey {server.api_key}"}

    def create_and_read(i: int) -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
            body = {
                "structure_family": "container",
                "data_sources": [],
                "metadata": {"i": i},
                "specs": [],
                "id": f"{prefix}{i}",
            }
            http.post("/metadata/results", json=body).raise_for_status()
            http.get(f"/search/results/{prefix}{i}").raise_for_status()

    with ThreadPoolExecutor(BURST) as pool:
        list(pool.map(create_and_read, range(BURST)))


def test_a_second_burst_opens_no_catalog_connection(pg_served, postgres_cluster):
    server, database = pg_served
    from_uri(server.url, api_key=server.api_key).create_container("results")
    _burst(server, "warm")  # the pool grows to what the burst needs, once
    before = _sessions(postgres_cluster, database)
    for round_ in range(3):
        _burst(server, f"again{round_}-")
    # tiled's default pool (5 kept) closed and reopened its overflow connections
    assert _sessions(postgres_cluster, database) == before


def test_only_a_postgresql_catalog_gets_the_larger_pool(tmp_path, monkeypatch):
    monkeypatch.delenv(POOL_SIZE_ENV, raising=False)
    sqlite = server_config(DataLayout(tmp_path), api_key="k")["trees"][0]["args"]
    assert "catalog_pool_size" not in sqlite
    layout = DataLayout(tmp_path, catalog_uri="postgresql://tiled@db.example/catalog")
    args = server_config(layout, api_key="k")["trees"][0]["args"]
    assert args["catalog_pool_size"] == POOL_SIZE
    assert args["catalog_max_overflow"] == MAX_OVERFLOW


def test_the_pool_size_can_be_set_and_a_bad_one_is_refused(monkeypatch):
    uri = "postgresql://tiled@db.example/catalog"
    monkeypatch.setenv(POOL_SIZE_ENV, "8")
    assert pool_arguments(uri)["catalog_pool_size"] == 8
    for bad in ("0", "many", "-3"):
        monkeypatch.setenv(POOL_SIZE_ENV, bad)
        with pytest.raises(ValueError, match=POOL_SIZE_ENV):
            pool_arguments(uri)
