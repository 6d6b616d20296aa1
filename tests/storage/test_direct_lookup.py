"""The server looks a request's path up in one catalog query; what it finds is unchanged."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
from tiled.catalog import adapter as catalog_adapter
from tiled.client import from_uri

from ssb_beamline.storage import EmbeddedTiledServer
from ssb_beamline.storage.direct_lookup import _direct, install, installed


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """An in-process server (its catalog queries are counted in this process)."""
    server = EmbeddedTiledServer(tmp_path_factory.mktemp("direct-lookup"), in_process=True)
    client = from_uri(server.url, api_key=server.api_key)
    version = client.create_container("results").create_container("run").create_container("v1")
    version.write_array(np.arange(12, dtype=np.float32).reshape(3, 4), key="soc")
    yield server, client
    server.close()


def test_a_deep_path_is_one_node_query_and_reads_the_same(served, monkeypatch):
    server, _client = served
    assert installed() and install()  # build_app installed it; idempotent
    queries: list[list[str]] = []
    build = catalog_adapter.node_from_segments

    def counting(segments, root_id=0):
        queries.append(list(segments))
        return build(segments, root_id=root_id)

    monkeypatch.setattr(catalog_adapter, "node_from_segments", counting)
    url = f"{server.url}/array/full/results/run/v1/soc"
    headers = {"Authorization": f"Apikey {server.api_key}", "Accept": "application/json"}
    answer = httpx.get(url, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json() == np.arange(12).reshape(3, 4).tolist()
    assert queries == [["results", "run", "v1", "soc"]]  # tiled's walk: one per segment


def test_missing_paths_and_other_families_answer_as_tiled_does(served):
    server, client = served
    headers = {"Authorization": f"Apikey {server.api_key}"}
    missing = httpx.get(f"{server.url}/metadata/results/run/v9/soc", headers=headers, timeout=30)
    assert missing.status_code == 404
    assert "No such entry: ['results', 'run', 'v9', 'soc']" in missing.text
    container = httpx.get(f"{server.url}/array/full/results/run/v1", headers=headers, timeout=30)
    assert container.status_code == 404 and "has structure family" in container.text
    with pytest.raises(KeyError):
        client["results"]["run"]["v2"]
    assert client["results"]["run"]["v1"]["soc"].read()[2, 3] == 11


def test_an_access_policy_keeps_tiled_s_walk():
    seen = []

    async def original(*args):
        seen.append(args)
        return "walked"

    get_entry = _direct(original)
    policy = object()
    found = asyncio.run(get_entry("a/b", ["read:data"], None, None, None, object(), {}, {}, None,
                                  policy))  # fmt: skip
    assert found == "walked" and seen[0][-1] is policy


def test_the_path_query_is_tiled_s_statement_built_from_shared_aliases():
    from sqlalchemy.dialects import postgresql, sqlite

    assert install()
    built, original = (
        catalog_adapter.node_from_segments,
        catalog_adapter.node_from_segments.__wrapped__,
    )
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        for segments in (["results"], ["results", "run", "v1", "soc"], ["a", "b", "v1", "c", "d"]):
            ours, theirs = built(segments, root_id=7), original(segments, root_id=7)
            ours, theirs = ours.compile(dialect=dialect), theirs.compile(dialect=dialect)
            assert (str(ours), ours.params) == (str(theirs), theirs.params)
    first, second = built(["x", "y"]), built(["p", "q"])  # one alias per depth, own values
    (join_1,), (join_2,) = first.get_final_froms(), second.get_final_froms()
    assert join_1.left.left is join_2.left.left and join_1.left.right is join_2.left.right
    assert second.compile().params == {"id_1": 0, "key_1": "p", "key_2": "q"}
