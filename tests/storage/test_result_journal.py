"""Results are journaled when tiled is down, and uploaded by sync when it is back."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid

import numpy as np
import pandas as pd
import pytest
import stamina

from ssb_beamline.storage import (
    ResultsNotPublishedError,
    TiledResultSink,
    open_store,
    read_results,
    result_versions,
)
from ssb_beamline.storage.journal import DocumentJournal, sync_pending
from ssb_beamline.storage.result_journal import ResultJournal


def maps() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "soc": rng.random((16, 12), dtype=np.float32),
        "edge_energy": np.linspace(8340, 8350, 192, dtype=np.float32).reshape(16, 12),
        "mask": rng.random((16, 12)) > 0.3,
        "normalized": rng.random((5, 16, 12), dtype=np.float32),
    }


class Relay:
    """A TCP relay in front of a tiled server: cut it and the server is gone."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = 0
        self._sockets: list[socket.socket] = []
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port = listener.getsockname()[1]
        self._sockets = [listener]
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)

    def down(self) -> None:
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._sockets = []


def test_results_published_while_tiled_is_down_reach_it_after_sync(tmp_path, tiled_server):
    relay = Relay(tiled_server.port)
    uri = f"http://127.0.0.1:{relay.port}/api/v1"
    store = open_store(uri, api_key=tiled_server.api_key, data_dir=tmp_path)
    sink = TiledResultSink(store.results, store.journal_dir)
    uid = f"journaled-{uuid.uuid4()}"
    arrays = maps()
    table = pd.DataFrame({"label": [1, 2, 3], "radius_um": [1.5, 2.0, 0.7]})
    units = {"soc": "fraction", "edge_energy": "eV", "mask": "bool", "normalized": "1"}
    relay.down()  # tiled goes away before the results are ready
    try:
        with (
            stamina.set_testing(True, attempts=1),
            pytest.raises(ResultsNotPublishedError, match=r"kept in .*`ssb-beamline sync` uploads"),
        ):
            sink.publish(
                uid, arrays, units=units, metadata={"source": "live"}, tables={"particles": table}
            )
        (entry,) = ResultJournal(tmp_path / "journal" / "results").pending()
        files = {p.name for p in entry.iterdir()}
        assert files == {"metadata.json", "arrays.npz", "particles.parquet"}
        relay.up()  # tiled is back
        back = open_store(uri, api_key=tiled_server.api_key, data_dir=tmp_path)
        assert sync_pending(back.raw, DocumentJournal(back.journal_dir)) == []  # no raw runs
        assert ResultJournal(back.journal_dir / "results").pending() == []
        assert result_versions(back.results, uid) == ["v1"]
        stored = read_results(back.results, uid)
        assert stored.metadata["source"] == "live" and stored.metadata["units"] == units
        assert stored.metadata["journaled"]["entry"] == entry.name
        assert set(stored.arrays) == set(arrays)
        for name, array in arrays.items():
            assert stored.arrays[name].dtype == array.dtype, name
            np.testing.assert_array_equal(stored.arrays[name], array, err_msg=name)
        pd.testing.assert_frame_equal(stored.tables["particles"], table)
        # another outage: the next publish, once tiled is back, uploads the journal first
        relay.down()
        with stamina.set_testing(True, attempts=1), pytest.raises(ResultsNotPublishedError):
            sink.publish(uid, {"soc": arrays["soc"] + 1}, units={}, metadata={"n": 2})
        relay.up()
        assert sink.publish(uid, {"soc": arrays["soc"] + 2}, units={}, metadata={"n": 3}) == (
            f"results/{uid}/v3"
        )
        assert sink.journal.pending() == []
        second = read_results(back.results, uid, "v2")
        assert second.metadata["n"] == 2
        np.testing.assert_array_equal(second.arrays["soc"], arrays["soc"] + 1)
    finally:
        relay.down()


def test_an_entry_that_fails_to_upload_stays_journaled(tmp_path, tiled_server, caplog):
    journal = ResultJournal(tmp_path / "results")
    journal.write("run-b", {"soc": np.zeros((2, 2))}, units={}, metadata={"source": "live"})

    class Down:
        def __contains__(self, key):
            raise ConnectionError("tiled is still down")

    from ssb_beamline.storage.sync import sync_results

    assert sync_results(Down(), journal) == []
    assert len(journal.pending()) == 1
    assert "not uploaded (ConnectionError: tiled is still down)" in caplog.text
    results = tiled_server.client().create_container("results-journal")
    assert sync_results(results, journal) == ["results/run-b/v1"]
    assert journal.pending() == []


def test_a_result_tiled_stored_but_never_acknowledged_is_stored_once(tmp_path, tiled_server):
    """The server stored the upload, then died before answering: sync replaces, not adds."""
    from ssb_beamline.storage.sync import sync_results

    results = tiled_server.client().create_container(f"results-{uuid.uuid4().hex[:8]}")
    created = "2026-12-06T01:02:03.456789+00:00"
    arrays = {"soc": np.ones((2, 2), np.float32)}
    half = {"soc": np.zeros((2, 2), np.float32)}
    TiledResultSink(results).publish("run-c", half, units={}, metadata={"created": created})
    journal = ResultJournal(tmp_path / "results")  # what the client journaled meanwhile
    journal.write("run-c", arrays, units={}, metadata={"created": created, "source": "live"})
    # the complete copy takes a fresh name (a dead server may have left files under v1)
    assert sync_results(results, journal) == ["results/run-c/v2"]
    assert result_versions(results, "run-c") == ["v2"]
    stored = read_results(results, "run-c")
    assert stored.metadata["source"] == "live" and stored.metadata["created"] == created
    np.testing.assert_array_equal(stored.arrays["soc"], arrays["soc"])


def _journaled_run(journal: DocumentJournal) -> str:
    """A closed run whose documents are in ``journal`` only (pending); its uid."""
    from event_model import compose_run

    bundle = compose_run(metadata={"plan_name": "xanes"})
    uid = bundle.start_doc["uid"]
    journal.append(uid, "start", bundle.start_doc)
    journal.append(uid, "stop", bundle.compose_stop())
    return uid


def test_sync_links_each_run_it_writes_to_its_results(tmp_path, tiled_server):
    """Results stored (or journaled) while their run was not in tiled get linked by sync."""
    from ssb_beamline.storage.sync import sync_all

    store = open_store(tiled_server.url, api_key=tiled_server.api_key, data_dir=tmp_path)
    journal = DocumentJournal(store.journal_dir)
    # two runs whose documents tiled never got, only the journal
    uids = stored, journaled = [_journaled_run(journal), _journaled_run(journal)]
    sink = TiledResultSink(store.results, store.journal_dir, runs=store.raw)
    sink.publish(stored, maps(), units={}, metadata={"source": "live"})  # no run to link yet
    ResultJournal(store.journal_dir / "results").write(
        journaled, maps(), units={}, metadata={"source": "live"}
    )
    report = sync_all(store.raw, journal)
    assert report.ok and sorted(report.runs) == sorted(uids)
    assert report.results == [f"results/{journaled}/v1"]
    for uid in uids:
        link = store.raw[uid].metadata["results"]
        assert link == {"latest": f"results/{uid}/v1", "versions": ["v1"]}, uid


def test_a_link_that_cannot_be_restored_does_not_stop_sync(tmp_path, tiled_server, caplog):
    """tiled failing while sync restores a link: the run is synced, the failure logged."""
    from ssb_beamline.storage.sync import sync_all

    class Down:
        def __contains__(self, key):
            raise ConnectionError("tiled went away")

    store = open_store(tiled_server.url, api_key=tiled_server.api_key, data_dir=tmp_path)
    journal = DocumentJournal(store.journal_dir)
    uid = _journaled_run(journal)
    report = sync_all(store.raw, journal, results=Down())
    assert report.ok and report.runs == [uid] and journal.pending() == []
    assert f"results of run {uid} not linked from it: tiled failed" in caplog.text
