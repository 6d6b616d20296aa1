"""Results prepared while the scan runs: invisible until complete, then as a plain publish.

One module-scoped store on the session's real tiled server; arrays of 6 x 5 px.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from storage.version_checks import assert_v1_in_progress

from ssb_beamline.callbacks.xanes_prepare import ResultPreparer, xanes_layout
from ssb_beamline.storage import open_store, read_results
from ssb_beamline.storage.result_layout import complete_versions, result_versions
from ssb_beamline.storage.results import TiledResultSink

UNITS = {"soc": "fraction", "mask": "bool", "fractions": "fraction", "energies": "eV"}
START = {"energies_ev": [8330.0, 8345.0, 8360.0]}  # no pixel size: x, y in px


@pytest.fixture(scope="module")
def store(tiled_server, tmp_path_factory):
    store = open_store(tiled_server.url, api_key=tiled_server.api_key,
                       data_dir=tmp_path_factory.mktemp("skeleton-client"))  # fmt: skip
    yield store
    store.close()


def _arrays(rows: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(rows)
    return {
        "soc": rng.random((rows, 5), dtype=np.float32),
        "mask": rng.random((rows, 5)) > 0.5,
        "fractions": rng.random((2, rows, 5), dtype=np.float32),
        "energies": np.asarray(START["energies_ev"]),
    }


def _prepare(sink: TiledResultSink, uid: str, arrays: dict) -> None:
    layout = {k: (v.shape, v.dtype) for k, v in arrays.items()}
    sink.prepare(uid, layout, units=UNITS, start={"uid": uid, **START})
    sink._skeletons[uid].result(timeout=60)  # created (the scan would still run)


def _publish(sink, uid, arrays, table=None):
    tables = {"particles": table} if table is not None else None
    return sink.publish(uid, arrays, units=UNITS, metadata={"source": "live"}, tables=tables)


def test_a_prepared_version_is_hidden_until_its_data_are_in(store, tiled_server):
    import pandas as pd

    from ssb_beamline.storage.result_reader import read_results_http
    from ssb_beamline.storage.tiled_http import TiledHttp

    sink, uid, plain_uid = TiledResultSink(store.results), str(uuid.uuid4()), str(uuid.uuid4())
    arrays, table = _arrays(), pd.DataFrame({"label": [1, 2]})
    _prepare(sink, uid, arrays)
    assert_v1_in_progress(store.results, uid)
    with pytest.raises(KeyError, match="No analysis results are stored"):
        read_results(store.results, uid)  # the latest skips a version being written
    with pytest.raises(KeyError, match="No analysis results are stored"):
        read_results_http(TiledHttp(tiled_server.url, tiled_server.api_key), uid)
    # the extra table was not prepared: publish creates it beside the prepared arrays
    assert _publish(sink, uid, arrays, table) == f"results/{uid}/v1"
    assert complete_versions(store.results, uid) == ["v1"]
    _publish(sink, plain_uid, arrays, table)  # the same results, not prepared
    got, plain = read_results(store.results, uid), read_results(store.results, plain_uid)
    drop = {"created", "run_uid", "attrs"}
    assert {k: v for k, v in got.metadata.items() if k not in drop} == {
        k: v for k, v in plain.metadata.items() if k not in drop
    }
    for key in (*arrays, *got.coords):
        a, b = store.results[uid]["v1"][key], store.results[plain_uid]["v1"][key]
        assert (a.structure().dims, a.specs, a.metadata) == (b.structure().dims, b.specs,
                                                              b.metadata), key  # fmt: skip
    for key, value in arrays.items():
        np.testing.assert_array_equal(got.arrays[key], value)
    assert sorted(got.coords) == sorted(plain.coords) == ["energy", "x", "y"]
    np.testing.assert_array_equal(got.coords["x"], np.arange(5))
    assert list(got.tables) == ["particles"]


def test_results_that_do_not_fit_replace_the_prepared_version(store):
    sink, uid = TiledResultSink(store.results), str(uuid.uuid4())
    _prepare(sink, uid, _arrays())
    path = _publish(sink, uid, _arrays(rows=4))  # e.g. another map shape
    assert path == f"results/{uid}/v1"  # the unused one removed first
    assert result_versions(store.results, uid) == ["v1"]
    np.testing.assert_array_equal(read_results(store.results, uid).arrays["soc"],
                                  _arrays(rows=4)["soc"])  # fmt: skip


def test_the_preparer_discards_a_version_nothing_was_published_into(store):
    sink, uid = TiledResultSink(store.results), str(uuid.uuid4())
    preparer = ResultPreparer(sink, references=[0, 1])
    preparer("start", {"uid": uid, "detector_key": "det", **START})
    preparer("descriptor", {"data_keys": {"det": {"shape": [1, 6, 5]}}})
    sink._skeletons[uid].result(timeout=60)
    assert set(store.results[uid]["v1"]) == {*xanes_layout((6, 5), 3, 2), "energy", "x", "y"}
    preparer("stop", {"exit_status": "fail"})  # the analysis published nothing
    assert result_versions(store.results, uid) == []


def test_maps_sent_early_and_optional_items_end_as_a_plain_publish(store):
    """send_early's data, an optional item not produced (removed), one produced."""
    sink, uid, plain_uid = TiledResultSink(store.results), str(uuid.uuid4()), str(uuid.uuid4())
    arrays = _arrays()
    extra = {"labels": np.arange(30, dtype=np.int32).reshape(6, 5)}
    units = {**UNITS, "labels": "label", "unused": "um"}
    layout = {k: (v.shape, v.dtype) for k, v in {**arrays, **extra}.items()}
    layout["unused"] = ((6, 5), np.float32)  # e.g. a map that needs particles
    sink.prepare(uid, layout, units=units, start={"uid": uid, **START},
                 optional=["labels", "unused"])  # fmt: skip
    sink._skeletons[uid].result(timeout=60)
    assert set(store.results[uid]["v1"]) >= {"labels", "unused"}
    maps = {k: arrays[k] for k in ("soc", "fractions")}
    assert sink.send_early(uid, maps, units=units) == ["fractions", "soc"]
    assert sink.send_early(uid, maps, units=units) == []  # once per run
    everything = {**arrays, **extra}
    path = sink.publish(uid, everything, units=units, metadata={"source": "live"})
    assert path == f"results/{uid}/v1"
    sink.publish(plain_uid, everything, units=units, metadata={"source": "live"})
    got, plain = read_results(store.results, uid), read_results(store.results, plain_uid)
    assert sorted(store.results[uid]["v1"]) == sorted(store.results[plain_uid]["v1"])
    assert got.metadata["contents"] == plain.metadata["contents"]
    for key, value in everything.items():
        np.testing.assert_array_equal(got.arrays[key], value)


def test_an_early_send_into_an_unprepared_or_unfitting_version_sends_nothing(store):
    sink, uid = TiledResultSink(store.results), str(uuid.uuid4())
    assert sink.send_early(uid, _arrays(), units=UNITS) == []  # nothing prepared
    _prepare(sink, uid, _arrays())
    assert sink.send_early(uid, _arrays(rows=4), units=UNITS) == ["energies"]  # maps differ
    path = _publish(sink, uid, _arrays(rows=4))  # a fresh version, as without the early send
    assert path == f"results/{uid}/v1" and result_versions(store.results, uid) == ["v1"]
    np.testing.assert_array_equal(read_results(store.results, uid).arrays["soc"],
                                  _arrays(rows=4)["soc"])  # fmt: skip


def test_the_preparer_adds_the_post_processors_maps_as_optional(store):
    from ssb_beamline.callbacks.particles_live import ParticleStatistics

    sink, uid = TiledResultSink(store.results), str(uuid.uuid4())
    preparer = ResultPreparer(sink, references=[0, 1], post_processors=[ParticleStatistics()])
    preparer("start", {"uid": uid, "detector_key": "det", **START})
    preparer("descriptor", {"data_keys": {"det": {"shape": [1, 6, 5]}}})
    skeleton = sink._skeletons[uid].result(timeout=60)
    declared = ParticleStatistics().layout((6, 5))
    assert skeleton.optional == set(declared)
    assert set(store.results[uid]["v1"]) == {*xanes_layout((6, 5), 3, 2), *declared,
                                             "energy", "x", "y"}  # fmt: skip
    preparer("stop", {"exit_status": "fail"})
    assert result_versions(store.results, uid) == []


class _Runs:
    """Raw runs by uid that count their lookups; a run appears once ``present`` is set."""

    def __init__(self, uid: str, present: bool) -> None:
        self.lookups: list[str] = []
        self.present = present
        self.run = type("Run", (), {"item": {"id": uid}, "metadata": {}})()
        self.run.update_metadata = lambda metadata, drop_revision=False: self.run.metadata.update(
            metadata
        )

    def __getitem__(self, uid: str):
        self.lookups.append(uid)
        if not self.present:
            raise KeyError(uid)
        return self.run


@pytest.mark.parametrize("found_during_scan", [True, False])
def test_the_raw_run_is_looked_up_once_before_it_is_linked(store, found_during_scan):
    uid = str(uuid.uuid4())
    runs = _Runs(uid, present=found_during_scan)
    sink = TiledResultSink(store.results, runs=runs)
    _prepare(sink, uid, _arrays())
    assert len(runs.lookups) == 1  # while the scan runs
    runs.present = True  # e.g. the writer stored the run meanwhile
    assert _publish(sink, uid, _arrays()) == f"results/{uid}/v1"
    # found during the scan: only the link's read-back; else looked up once more first
    assert len(runs.lookups) == (2 if found_during_scan else 3)
    assert runs.run.metadata["results"] == {"latest": f"results/{uid}/v1", "versions": ["v1"]}
