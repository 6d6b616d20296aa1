"""``runs`` read straight from the SQLite catalog lists what the server lists over HTTP."""

from __future__ import annotations

import sqlite3
import uuid

import numpy as np
import pytest

from ssb_beamline.storage import open_store
from ssb_beamline.storage.results import TiledResultSink
from ssb_beamline.storage.run_table import list_runs, list_runs_in_catalog
from ssb_beamline.storage.synthetic import count_run, write_run


@pytest.fixture(scope="module")
def stored(tiled_server, tmp_path_factory):
    """Three runs: one with a complete and a partial results version, one still open."""
    store = open_store(tiled_server.url, api_key=tiled_server.api_key,
                       data_dir=tmp_path_factory.mktemp("sqlite-runs-client"))  # fmt: skip
    uids = [f"sqlrun-{uuid.uuid4()}" for _ in range(3)]
    write_run(store.raw, count_run(uids[0]))
    write_run(store.raw, count_run(uids[1], values=(1.0, 2.0)))
    write_run(store.raw, count_run(uids[2])[:-1])  # no stop document: open
    TiledResultSink(store.results, runs=store.raw).publish(uids[0], {"soc": np.zeros((4, 4))},
                                                           units={}, metadata={})  # fmt: skip
    store.results[uids[0]].create_container("v2", metadata={"contents": ["soc", "mask"]})
    yield uids
    store.close()


def test_the_catalog_gives_the_rows_the_server_gives(stored, tiled_server):
    catalog = tiled_server.layout.catalog
    for limit in (0, 2):
        direct = list_runs_in_catalog(catalog, limit=limit)
        assert direct == list_runs(tiled_server.url, tiled_server.api_key, limit=limit)
    rows, total = list_runs_in_catalog(catalog, limit=0)
    by_uid = {row.uid: row for row in rows}
    assert total >= 3 and set(stored) <= set(by_uid)
    assert by_uid[stored[0]].results == (("v1", True), ("v2", False))
    assert (by_uid[stored[1]].status, by_uid[stored[1]].points_done) == ("success", 2)
    assert by_uid[stored[2]].status == "open"


def test_an_unknown_catalog_schema_is_left_to_the_server(tiled_server, tmp_path):
    copy = tmp_path / "catalog.db"
    with sqlite3.connect(tiled_server.layout.catalog) as source, sqlite3.connect(copy) as dest:
        source.backup(dest)
        dest.execute("UPDATE alembic_version SET version_num = 'future0000'")
    assert list_runs_in_catalog(copy, limit=5) is None
    assert list_runs_in_catalog(tmp_path / "missing.db", limit=5) is None
    copy.write_bytes(b"not a database")
    assert list_runs_in_catalog(copy, limit=5) is None
