"""The project's tiled server on a PostgreSQL catalog (issue 14).

The schema is created on first start and found on the next; the end-to-end demo
runs against it over HTTP; a stock ``tiled serve config`` server runs from the YAML
file the project writes; the catalog password never reaches a log or a file.
(The storage tests parametrised by the ``catalog`` fixture run on both catalogs.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from served import free_port, wait_until_healthy

from ssb_beamline.cli import main
from ssb_beamline.storage import EmbeddedTiledServer, open_store, read_results
from ssb_beamline.storage.catalog_db import prepare_catalog
from ssb_beamline.storage.log_redaction import redact
from ssb_beamline.storage.server_config import TILED_API_KEY_ENV, DataLayout, write_server_config


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory, postgres_cluster):
    uri = postgres_cluster.new_database("server")
    with EmbeddedTiledServer(tmp_path_factory.mktemp("pg-data"), catalog=uri) as server:
        yield server, uri


def test_the_schema_is_created_once_then_found(tmp_path, postgres_cluster):
    uri = postgres_cluster.new_database()
    assert prepare_catalog(uri, files_dir=tmp_path / "files") == "created"
    assert prepare_catalog(uri, files_dir=tmp_path / "files") == "existing"
    database = uri.rsplit("/", 1)[1]
    tables = postgres_cluster.psql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema='public'", database
    ).split()
    assert {"nodes", "data_sources", "assets", "alembic_version"} <= set(tables)


@pytest.mark.slow
def test_the_demo_end_to_end_on_postgresql(pg_server, tmp_path, monkeypatch, capsys):
    server, _ = pg_server
    data_dir = server.layout.root  # the session shares the server's detector folder
    monkeypatch.setenv(TILED_API_KEY_ENV, server.api_key)
    code = main(["demo", "--tiled", server.url, "--data-dir", str(data_dir), "--preset",
                 "quick", "--size", "64", "--out", str(tmp_path / "out")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "SOC RMSE against truth" in out
    with open_store(server.url, api_key=server.api_key, data_dir=data_dir) as store:
        (uid,) = list(store.raw)
        run = store.raw[uid]
        assert run.metadata["stop"]["exit_status"] == "success"
        journal = data_dir / "journal" / f"{uid}.synced.jsonl"
        records = [json.loads(line) for line in journal.read_text().splitlines()]
        streams = {r["doc"]["uid"]: r["doc"]["name"] for r in records if r["name"] == "descriptor"}
        counts = Counter(streams[r["doc"]["descriptor"]] for r in records if r["name"] == "event")
        for stream, n in counts.items():  # every journaled event in tiled, once
            assert np.asarray(run[stream]["seq_num"].read()).tolist() == list(range(1, n + 1))
        key = run.metadata["start"]["detector_key"]
        assert run["primary"][key].read().shape == (21, 64, 64)
        stored = read_results(store.results, uid)
        assert stored.arrays["soc"].shape == (64, 64) and stored.metadata["source"] == "live"
        assert store.raw[-1].metadata["start"]["uid"] == uid  # the stock catalogue works


def test_the_catalog_password_is_never_logged(pg_server, postgres_cluster):
    server, uri = pg_server
    server.client().create_container("password-check")  # the catalog at work
    log = (server.layout.root / "server.log").read_text()
    assert postgres_cluster.password not in log
    assert (
        redact(f"engine {uri}") == f"engine {uri.replace(postgres_cluster.password, '[redacted]')}"
    )


@pytest.mark.slow
def test_a_stock_tiled_server_from_the_yaml_file(tmp_path, postgres_cluster):
    uri = postgres_cluster.new_database("stock")
    layout = DataLayout(tmp_path / "data", catalog_uri=uri).create()
    path = write_server_config(layout, tmp_path / "tiled.yml")
    text = path.read_text()
    assert postgres_cluster.password not in text and "postgresql+asyncpg://ssb@127.0.0.1" in text
    port, key = free_port(), os.urandom(32).hex()
    env = {**os.environ, "TILED_SINGLE_USER_API_KEY": key, "PGPASSWORD": postgres_cluster.password}
    tiled = os.path.join(os.path.dirname(sys.executable), "tiled")
    process = subprocess.Popen(
        [tiled, "serve", "config", str(path), "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_until_healthy(process, port, lambda: _stderr_tail(process), 180,
                           "the stock tiled server")  # fmt: skip
        from tiled.client import from_uri

        client = from_uri(f"http://127.0.0.1:{port}/api/v1", api_key=key)
        client.create_container("results").write_array(np.arange(5), key="a")
        np.testing.assert_array_equal(client["results"]["a"].read(), np.arange(5))
        assert (layout.files / "results").exists()  # arrays in the data directory
    finally:
        process.terminate()
        process.wait(timeout=30)


def _stderr_tail(process: subprocess.Popen) -> str:
    """The end of an exited server's stderr (a running one's pipe cannot be read to EOF)."""
    if process.poll() is None:
        return "(still running)"
    return process.communicate()[1].decode()[-2000:]
