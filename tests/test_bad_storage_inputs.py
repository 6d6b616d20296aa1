"""Bad storage inputs: each refused with one line naming the fix; nothing starts half-way.

A wrong catalog URI (nobody answers, wrong password, not PostgreSQL), a database of
another layout, and a catalog whose array storage is missing. "Not half-way": the
server process is never started, the data directory is not created, and a
refused database gets no tables.
"""

from __future__ import annotations

import socket

import numpy as np
import pytest

from ssb_beamline.cli import main
from ssb_beamline.storage import EmbeddedTiledServer
from ssb_beamline.storage.catalog_db import CatalogDatabaseError


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(capsys, data_dir, catalog) -> str:
    """``ssb-beamline serve`` with a bad catalog: exit code 2 and its one line."""
    code = main(["serve", "--data-dir", str(data_dir), "--port", "0", "--catalog", catalog])
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert code == 2, out
    assert out.startswith("error:") and out.count("error:") == 1
    assert "Traceback" not in out
    return out


def test_nobody_answers_at_the_catalog_uri(tmp_path, capsys):
    port = _closed_port()
    data = tmp_path / "data"
    out = _serve(capsys, data, f"postgresql://ssb:pw-not-shown@127.0.0.1:{port}/tiled")
    assert f"No PostgreSQL server answered at 127.0.0.1:{port}" in out
    assert "start it, or fix the host and port in --catalog" in out
    assert "pw-not-shown" not in out
    assert not data.exists()


def test_a_uri_that_is_not_postgresql(tmp_path, capsys):
    out = _serve(capsys, tmp_path / "data", "mysql://u:secret@127.0.0.1/db")
    assert "is not a PostgreSQL URI" in out and "postgresql://USER@HOST:5432/DB" in out
    assert "secret" not in out


def test_a_wrong_password(tmp_path, postgres_cluster, capsys):
    uri = postgres_cluster.uri("postgres").replace(postgres_cluster.password, "wrong-pw")
    out = _serve(capsys, tmp_path / "data", uri)
    assert "refused user 'ssb'" in out and "fix the password" in out
    assert "wrong-pw" not in out and postgres_cluster.password not in out
    assert not (tmp_path / "data").exists()


def test_a_database_that_does_not_exist(tmp_path, postgres_cluster, capsys):
    out = _serve(capsys, tmp_path / "data", postgres_cluster.uri("no_such_db"))
    assert "has no database 'no_such_db': create it" in out


def test_a_database_of_another_layout_is_refused_untouched(tmp_path, postgres_cluster):
    uri = postgres_cluster.new_database("other")
    database = uri.rsplit("/", 1)[1]
    postgres_cluster.psql("CREATE TABLE invoices (id int)", database)
    with pytest.raises(
        CatalogDatabaseError, match=r"holds 1 tables of another layout \(invoices\)"
    ):
        EmbeddedTiledServer(tmp_path / "data", catalog=uri)
    tables = postgres_cluster.psql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema='public'", database
    )
    assert tables.split() == ["invoices"]  # no tiled table was added
    assert not (tmp_path / "data").exists()


def test_a_catalog_whose_array_storage_is_missing(tmp_path, postgres_cluster, capsys):
    uri = postgres_cluster.new_database()
    with EmbeddedTiledServer(tmp_path / "first", catalog=uri, in_process=True) as server:
        server.client().write_array(np.arange(3), key="a")
    out = _serve(capsys, tmp_path / "elsewhere", uri)
    assert f"the array storage {tmp_path / 'elsewhere' / 'files'} does not exist" in out
    assert "pass the --data-dir that holds it" in out
    assert not (tmp_path / "elsewhere").exists()


def test_a_data_directory_whose_array_storage_was_removed(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "catalog.db").write_bytes(b"")  # a catalog, its files/ folder gone
    code = main(["serve", "--data-dir", str(data), "--port", "0"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 2
    assert f"its array storage {data / 'files'} does not: restore that folder" in out
