"""The batch route looks all its nodes up in one catalog session; what it writes is unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from tiled.client import from_uri

from ssb_beamline.storage import EmbeddedTiledServer, batch_lookup
from ssb_beamline.storage import array_batch as batch


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """An in-process server (its catalog statements are counted in this process)."""
    server = EmbeddedTiledServer(tmp_path_factory.mktemp("batch-lookup"), in_process=True)
    yield server, from_uri(server.url, api_key=server.api_key)
    server.close()


def _selects_of_batch(client, name: str, count: int) -> tuple[int, dict, object]:
    """SELECT statements the server ran for one batch writing ``count`` arrays."""
    version = client["results"].create_container(name)
    data = {f"a{i}": np.full((4, 3), i, np.float32) for i in range(count)}
    for key in data:
        version.write_array(np.zeros((4, 3), np.float32), key=key)
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        batch.write_many(version, data)
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    return sum(s.lstrip().upper().startswith("SELECT") for s in statements), data, version


def test_a_batch_of_any_size_costs_the_same_catalog_queries(served):
    _, client = served
    client.create_container("results")
    few, data, version = _selects_of_batch(client, "few", 2)
    many, more, more_version = _selects_of_batch(client, "many", 8)
    assert few == many  # one looked-up node at a time costs ~10 SELECTs per node
    for node, written in ((version, data), (more_version, more)):
        for key, value in written.items():
            np.testing.assert_array_equal(node[key].read(), value)


def test_without_the_one_lookup_each_node_is_looked_up_and_written_the_same(served, monkeypatch):
    _, client = served
    if "results" not in client:
        client.create_container("results")
    monkeypatch.setattr(batch_lookup, "can_find", lambda root, policy: False)
    few, _, _ = _selects_of_batch(client, "few-walked", 2)
    many, data, version = _selects_of_batch(client, "many-walked", 8)
    assert many > few
    for key, value in data.items():
        np.testing.assert_array_equal(version[key].read(), value)


def test_an_access_policy_or_a_filtered_root_keeps_the_lookups_one_by_one():
    class Root:
        context = object()

        def __init__(self, conditions=()):
            self.conditions, self.access_filters = list(conditions), []

        async def lookup_adapter(self, segments):
            raise AssertionError("not called")

    assert batch_lookup.can_find(Root(), None)
    assert not batch_lookup.can_find(Root(), access_policy=object())
    assert not batch_lookup.can_find(Root(conditions=["key = 'x'"]), None)
    assert not batch_lookup.can_find(object(), None)  # not a catalog
