"""Tables created with their rows inside the batch request (``PUT /api/v1/array/many/...``).

On the project's server (both catalogs): a version whose particle tables went with
the arrays in one batch reads exactly as one written item by item with tiled's own
``write_table`` (POST, then PUT); the route asks tiled for the scopes of both
requests and checks every item before writing; a retried batch is idempotent, a
conflicting one refused; a batch failing half-way leaves the version incomplete
and the journal stores it complete. On a stock ``tiled serve config`` server the
tables are written with tiled's two requests each.
"""

from __future__ import annotations

import json
import struct
import uuid

import httpx
import numpy as np
import pandas as pd
import pytest
from storage.test_stock_server import stock_server  # noqa: F401 (a fixture)
from storage.version_checks import assert_v1_in_progress, same_versions, synced_results
from tiled.client import from_uri

from ssb_beamline.storage import array_batch as batch
from ssb_beamline.storage import read_results, table_batch
from ssb_beamline.storage.results import ResultsNotPublishedError, TiledResultSink

UNITS = {"soc": "fraction", "mask": "bool", "fractions": "fraction", "labels": "label"}
START = {"energies_ev": [8330.0, 8345.0, 8360.0]}
MD = {"kind": "table"}


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    return {
        "soc": rng.random((6, 5), dtype=np.float32),
        "mask": rng.random((6, 5)) > 0.5,
        "fractions": rng.random((2, 6, 5), dtype=np.float32),
        "labels": np.arange(30, dtype=np.int32).reshape(6, 5),
    }


def _tables() -> dict[str, pd.DataFrame]:
    particles = pd.DataFrame({
        "label": np.arange(1, 5, dtype=np.int64), "radius_um": [0.5, 1.5, 2.0, np.nan],
        "soc_mean": np.linspace(0, 1, 4, dtype=np.float32), "edge": ["a", "b", "c", "d"],
    })  # fmt: skip
    bins = pd.DataFrame({"bin": [0, 1, 2], "count": [3, 0, 7], "mean_soc": [0.1, np.nan, 0.9]})
    return {"particles": particles, "impedance_bins": bins}


def _publish(results, uid: str, *, journal=None, tables=None) -> str:
    sink = TiledResultSink(results, journal)
    arrays = _arrays()
    layout = {k: (v.shape, v.dtype) for k, v in arrays.items()}
    sink.prepare(uid, layout, units=UNITS, start={"uid": uid, **START}, optional=["labels"])
    sink._skeletons[uid].result(timeout=60)
    sink.send_early(uid, {k: arrays[k] for k in ("soc", "mask")}, units=UNITS)
    tables = _tables() if tables is None else tables
    return sink.publish(uid, arrays, units=UNITS, metadata={"source": "live"}, tables=tables)


def _counting(monkeypatch) -> tuple[list, list]:
    """Record the batches and tiled's own ``write_table`` calls of a publish."""
    calls: list = []
    made: list = []
    real_many, real_table = batch.write_many, type(_Node.node).write_table

    def write_many(node, items, tables=None):
        calls.append((sorted(items), sorted(tables or {})))
        return real_many(node, items, tables)

    def write_table(self, data, **kwargs):
        made.append(kwargs["key"])
        return real_table(self, data, **kwargs)

    monkeypatch.setattr("ssb_beamline.storage.result_upload.write_many", write_many)
    monkeypatch.setattr(type(_Node.node), "write_table", write_table)
    return calls, made


class _Node:
    node = None  # a tiled container client (its class is patched)


def test_tables_in_the_batch_read_as_ones_written_by_tiled(keyed_server, monkeypatch):
    _, _, store = keyed_server
    _Node.node = store.results
    calls, made = _counting(monkeypatch)
    new_uid, old_uid = str(uuid.uuid4()), str(uuid.uuid4())
    _publish(store.results, new_uid)
    early = (["mask", "soc"], [])  # send_early's batch
    assert sorted(calls) == [(["fractions", "labels"], ["impedance_bins", "particles"]), early]
    assert made == []  # no POST + PUT per table
    monkeypatch.setattr(batch, "offered", lambda node: False)  # tiled's own requests
    _publish(store.results, old_uid)
    assert len(calls) == 2 and sorted(made) == ["impedance_bins", "particles"]
    new, old, a_node, b_node = same_versions(store.results, new_uid, old_uid)
    for key in _tables():
        a, b = a_node[key], b_node[key]
        assert a.metadata == MD
        sa, sb = a.structure(), b.structure()
        assert (sa.arrow_schema, sa.columns, sa.npartitions, sa.resizable) == (
            sb.arrow_schema, sb.columns, sb.npartitions, sb.resizable,
        )  # fmt: skip
        pd.testing.assert_frame_equal(a.read(), b.read())
        pd.testing.assert_frame_equal(a.read(), _tables()[key], check_dtype=False)
    for key in _tables():
        pd.testing.assert_frame_equal(new.tables[key], old.tables[key])


def _prepared_node(store):
    """A results version with an empty float32 array ``a``; its client."""
    sink, uid = TiledResultSink(store.results), str(uuid.uuid4())
    sink.prepare(uid, {"a": ((6, 5), np.float32)}, units={}, start={"uid": uid, **START})
    return sink._skeletons[uid].result(timeout=60).node


def _url(node) -> str:
    return f"{node.context.api_uri}{batch.BATCH_ROUTE}/{'/'.join(node.path_parts)}"


def test_the_route_asks_tiled_for_the_scopes_of_a_post_and_a_put(keyed_server):
    server, readonly, store = keyed_server
    node = _prepared_node(store)
    a = np.ones((6, 5), np.float32)
    body = batch.encode_batch({"a": a}, {"t": (_tables()["particles"], MD)})
    assert httpx.put(_url(node), content=body).status_code == 401  # no key
    ro = httpx.put(_url(node), content=body, headers={"Authorization": f"Apikey {readonly}"})
    assert ro.status_code in (401, 403)  # read-only key
    rw = {"Authorization": f"Apikey {server.api_key}"}
    missing = batch.encode_batch({"a": a, "nope": a}, {"t": (_tables()["particles"], MD)})
    assert httpx.put(_url(node), content=missing, headers=rw).status_code == 404
    gone = _url(node) + "-missing"
    assert httpx.put(gone, content=body, headers=rw).status_code == 404
    for bad in (_with_node(body, {"id": "t", "structure_family": "array"}),
                _with_node(body, {"id": "other", "structure_family": "table"}),
                _with_node(body, {"structure_family": "table", "data_sources": "x"})):  # fmt: skip
        assert httpx.put(_url(node), content=bad, headers=rw).status_code == 400
    assert "t" not in node and not node["a"].read().any()  # nothing written
    batch.write_many(node, {"a": a}, {"t": (_tables()["particles"], MD)})
    pd.testing.assert_frame_equal(node["t"].read(), _tables()["particles"], check_dtype=False)
    np.testing.assert_array_equal(node["a"].read(), a)


def _with_node(body: bytes, node: dict) -> bytes:
    """``body`` with its table item's ``node`` replaced."""
    (size,) = struct.unpack(">I", body[:4])
    header = json.loads(body[4 : 4 + size])
    for item in header["items"]:
        if "node" in item:
            item["node"] = node
    raw = json.dumps(header).encode()
    return struct.pack(">I", len(raw)) + raw + body[4 + size :]


def test_a_retried_batch_is_idempotent_and_a_conflicting_one_refused(keyed_server):
    _, _, store = keyed_server
    node = _prepared_node(store)
    a, frame = np.ones((6, 5), np.float32), _tables()["particles"]
    batch.write_many(node, {"a": a}, {"t": (frame, MD)})
    batch.write_many(node, {"a": a}, {"t": (frame, MD)})  # a retry: the same again
    pd.testing.assert_frame_equal(node["t"].read(), frame, check_dtype=False)
    for other in ((frame[["label", "edge"]], MD), (frame, {"kind": "other"})):
        with pytest.raises(httpx.HTTPStatusError, match="409"):
            batch.write_many(node, {"a": a * 2}, {"t": other})
    pd.testing.assert_frame_equal(node["t"].read(), frame, check_dtype=False)
    np.testing.assert_array_equal(node["a"].read(), a)  # the arrays were not written


def test_a_table_failing_half_way_leaves_the_version_incomplete_then_sync_stores_it(
    keyed_server, monkeypatch, tmp_path
):
    _, _, store = keyed_server
    real = table_batch.table_item

    def corrupt(key, frame, metadata):  # the node is made, its rows fail
        entry, blob = real(key, frame, metadata)
        return entry, blob[: len(blob) // 2]

    monkeypatch.setattr(table_batch, "table_item", corrupt)
    monkeypatch.setattr("ssb_beamline.storage.result_upload.BUSY_ATTEMPTS", 1)
    uid = str(uuid.uuid4())
    with pytest.raises(ResultsNotPublishedError):
        _publish(store.results, uid, journal=tmp_path)
    assert_v1_in_progress(store.results, uid)
    monkeypatch.setattr(table_batch, "table_item", real)
    got = synced_results(store.results, uid, tmp_path)
    for key, frame in _tables().items():
        pd.testing.assert_frame_equal(got.tables[key], frame, check_dtype=False)


@pytest.mark.slow
def test_a_stock_tiled_server_gets_tiled_s_own_table_requests(stock_server, monkeypatch):  # noqa: F811
    uri, key, _ = stock_server
    results = from_uri(uri, api_key=key).create_container("results")
    _Node.node = results
    calls, made = _counting(monkeypatch)
    uid = str(uuid.uuid4())
    assert _publish(results, uid) == f"results/{uid}/v1"
    assert calls == [] and sorted(made) == ["impedance_bins", "particles"]
    got = read_results(results, uid)
    for key_, frame in _tables().items():
        pd.testing.assert_frame_equal(got.tables[key_], frame, check_dtype=False)


def test_table_items_round_trip_and_bad_nodes_are_refused():
    frame = _tables()["particles"]
    items = batch.decode_batch(batch.encode_batch({"a": np.ones(2)}, {"t": (frame, MD)}))
    assert [(k, n is None) for k, _, _, n in items] == [("a", True), ("t", False)]
    assert items[1][1] == table_batch.TABLE_MEDIA_TYPE and items[1][3].metadata == MD
    body = batch.encode_batch({}, {"t": (frame, MD)})
    with pytest.raises(batch.BatchFormatError, match="a table with id 't'"):
        batch.decode_batch(_with_node(body, {"id": "t", "structure_family": "container"}))
