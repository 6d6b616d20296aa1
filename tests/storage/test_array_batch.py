"""Several prepared arrays' data in one request (``PUT /api/v1/array/many/...``).

On the project's server (both catalogs): a version written with batches reads
exactly as one written with one PUT per array; the route applies tiled's own
authorisation (no key, read-only key, missing node: nothing written); a batch
that fails half-way leaves the version incomplete and the journal stores a
complete one. On a stock ``tiled serve config`` server the client falls back to
one PUT per array.
"""

from __future__ import annotations

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
from ssb_beamline.storage import read_results
from ssb_beamline.storage.result_layout import complete_versions
from ssb_beamline.storage.results import ResultsNotPublishedError, TiledResultSink

UNITS = {"soc": "fraction", "mask": "bool", "fractions": "fraction", "energies": "eV",
         "labels": "label", "big": "a.u."}  # fmt: skip
START = {"energies_ev": [8330.0, 8345.0, 8360.0]}


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "soc": rng.random((6, 5), dtype=np.float32),
        "mask": rng.random((6, 5)) > 0.5,
        "fractions": rng.random((2, 6, 5), dtype=np.float32),
        "energies": np.asarray(START["energies_ev"]),
        "labels": np.arange(30, dtype=np.int32).reshape(6, 5),
    }


def _prepared_publish(store, uid: str, arrays: dict, *, journal=None, table=None) -> str:
    sink = TiledResultSink(store.results, journal)
    layout = {k: (v.shape, v.dtype) for k, v in arrays.items()}
    sink.prepare(uid, layout, units=UNITS, start={"uid": uid, **START}, optional=["labels"])
    sink._skeletons[uid].result(timeout=60)
    early = {k: arrays[k] for k in ("soc", "fractions", "mask")}
    sink.send_early(uid, early, units=UNITS)
    tables = {"particles": table} if table is not None else None
    return sink.publish(uid, arrays, units=UNITS, metadata={"source": "live"}, tables=tables)


def _counting(monkeypatch) -> list[list[str]]:
    calls: list[list[str]] = []
    real = batch.write_many

    def write_many(node, items, tables=None):
        calls.append(sorted(items))
        return real(node, items, tables)

    monkeypatch.setattr("ssb_beamline.storage.result_upload.write_many", write_many)
    return calls


def test_a_batched_version_reads_as_one_written_array_by_array(keyed_server, monkeypatch):
    import pandas as pd

    _, _, store = keyed_server
    arrays, table = _arrays(), pd.DataFrame({"label": [1, 2], "radius_um": [0.5, 1.5]})
    calls = _counting(monkeypatch)
    new_uid, old_uid = str(uuid.uuid4()), str(uuid.uuid4())
    _prepared_publish(store, new_uid, arrays, table=table)
    assert sorted(calls) == [["energies", "labels"], ["fractions", "mask", "soc"]]
    monkeypatch.setattr(batch, "offered", lambda node: False)  # one PUT per array
    _prepared_publish(store, old_uid, arrays, table=table)
    assert len(calls) == 2
    new, old, _, _ = same_versions(store.results, new_uid, old_uid)
    for key, value in arrays.items():
        np.testing.assert_array_equal(new.arrays[key], value)
        assert new.arrays[key].dtype == old.arrays[key].dtype == value.dtype
    pd.testing.assert_frame_equal(new.tables["particles"], old.tables["particles"])


def _prepared_node(store, shape=(6, 5)):
    """A results version with two empty float32 arrays ``a``, ``b``; its client."""
    sink, uid = TiledResultSink(store.results), str(uuid.uuid4())
    layout = {"a": (shape, np.float32), "b": (shape, np.float32)}
    sink.prepare(uid, layout, units={}, start={"uid": uid, **START})
    return sink._skeletons[uid].result(timeout=60).node


def test_the_route_asks_tiled_for_write_access_to_every_node(keyed_server):
    server, readonly, store = keyed_server
    node = _prepared_node(store)
    data = {"a": np.ones((6, 5), np.float32), "b": np.full((6, 5), 2, np.float32)}
    url = f"{node.context.api_uri}{batch.BATCH_ROUTE}/{'/'.join(node.path_parts)}"
    body = batch.encode_batch(data)
    assert httpx.put(url, content=body).status_code == 401  # no key
    ro = httpx.put(url, content=body, headers={"Authorization": f"Apikey {readonly}"})
    assert ro.status_code == 403  # read-only key
    with pytest.raises(Exception, match="403"):
        batch.write_many(from_uri(server.url, api_key=readonly)["/".join(node.path_parts)], data)
    rw = {"Authorization": f"Apikey {server.api_key}"}
    missing = batch.encode_batch({**data, "nope": data["a"]})
    assert httpx.put(url, content=missing, headers=rw).status_code == 404
    assert not node["a"].read().any()  # every node is looked up before any write
    for bad in (b"", struct.pack(">I", 3) + b"{}}", body[:-4]):
        assert httpx.put(url, content=bad, headers=rw).status_code == 400
    batch.write_many(node, data)
    np.testing.assert_array_equal(node["b"].read(), data["b"])


def test_a_batch_failing_half_way_leaves_the_version_incomplete_then_sync_stores_it(
    keyed_server, monkeypatch, tmp_path
):
    _, _, store = keyed_server
    real = batch.encode_batch

    def corrupt(items, tables=None):  # the server writes the first item, fails on the last
        items = dict(items)
        last = list(items)[-1]
        items[last] = np.zeros(items[last].size + 1, items[last].dtype)
        return real(items, tables)

    monkeypatch.setattr(batch, "encode_batch", corrupt)
    monkeypatch.setattr("ssb_beamline.storage.result_upload.BUSY_ATTEMPTS", 1)
    uid, arrays = str(uuid.uuid4()), _arrays()
    with pytest.raises(ResultsNotPublishedError):
        _prepared_publish(store, uid, arrays, journal=tmp_path)
    assert_v1_in_progress(store.results, uid)
    monkeypatch.setattr(batch, "encode_batch", real)
    got = synced_results(store.results, uid, tmp_path)
    for key, value in arrays.items():
        np.testing.assert_array_equal(got.arrays[key], value)


@pytest.mark.slow
def test_a_stock_tiled_server_gets_one_put_per_array(stock_server, monkeypatch):  # noqa: F811
    uri, key, _ = stock_server
    client = from_uri(uri, api_key=key)
    results = client.create_container("results")
    node = results.create_container("probe")
    assert batch.offered(node) is False  # 404 there
    assert batch.batches(node, _arrays()) == []
    calls = _counting(monkeypatch)
    uid, arrays = str(uuid.uuid4()), _arrays()
    assert _prepared_publish(_Store(results), uid, arrays) == f"results/{uid}/v1"
    assert calls == []
    _assert_stored(results, uid, arrays)


class _Store:
    """What ``_prepared_publish`` needs of a store: its ``results`` container."""

    def __init__(self, results) -> None:
        self.results = results


def _assert_stored(results, uid: str, arrays: dict):
    """``results/<uid>/v1`` is complete and holds ``arrays``; returns it as read."""
    assert complete_versions(results, uid) == ["v1"]
    got = read_results(results, uid)
    for key, value in arrays.items():
        np.testing.assert_array_equal(got.arrays[key], value)
    return got


def test_batch_bodies_round_trip_and_bad_ones_are_refused():
    data = {"a": np.arange(3, dtype=np.int16), "b": np.ones((2, 2))}
    items = batch.decode_batch(batch.encode_batch(data))
    assert [(k, m) for k, m, _, _ in items] == [("a", "application/octet-stream")] * 1 + [
        ("b", "application/octet-stream")
    ]
    assert items[0][2] == data["a"].tobytes() and items[1][2] == data["b"].tobytes()
    header = b'{"items": [{"key": "../x", "media_type": "m", "nbytes": 0}]}'
    for bad, match in (
        (b"\x00", "shorter"),
        (struct.pack(">I", 2) + b"[]", "not valid JSON"),
        (struct.pack(">I", len(header)) + header, "distinct, non-empty"),
        (batch.encode_batch(data) + b"x", "add up"),
    ):
        with pytest.raises(batch.BatchFormatError, match=match):
            batch.decode_batch(bad)


@pytest.mark.slow
def test_a_server_at_an_address_that_had_the_route_gets_each_item(stock_server, monkeypatch):  # noqa: F811
    uri, key, _ = stock_server
    results = from_uri(uri, api_key=key).create_container("results")
    api_uri = str(results.context.api_uri)
    monkeypatch.setitem(batch._OFFERED, api_uri, True)  # a server that had it, on this port
    calls = _counting(monkeypatch)
    uid, arrays = str(uuid.uuid4()), _arrays()
    table = pd.DataFrame({"label": [1, 2], "soc": [0.25, 0.5]})
    assert _prepared_publish(_Store(results), uid, arrays, table=table) == f"results/{uid}/v1"
    assert calls and batch._OFFERED[api_uri] is False  # tried once, then asked again
    got = _assert_stored(results, uid, arrays)
    pd.testing.assert_frame_equal(got.tables["particles"], table, check_dtype=False)
