"""A stop document that tiled lost (a concurrent metadata PATCH) is written again."""

from __future__ import annotations

import uuid

import pytest

from ssb_beamline.storage import open_store
from ssb_beamline.storage.journal import DocumentJournal, JournaledWriter
from ssb_beamline.storage.stop_record import StopNotRecordedError, confirm_stop_recorded


@pytest.fixture
def store(tiled_server):
    with open_store(tiled_server.url, api_key=tiled_server.api_key) as store:
        yield store


def _docs():
    start = {"uid": str(uuid.uuid4()), "time": 1.0, "plan_name": "count"}
    stop = {"uid": str(uuid.uuid4()), "run_start": start["uid"], "time": 2.0,
            "exit_status": "success", "num_events": {}}  # fmt: skip
    return start, stop


class WriterThatLosesTheStop:
    """Creates the run as TiledWriter does; its stop PATCH is 'lost' (never sent)."""

    def __init__(self, raw) -> None:
        self.raw = raw

    def __call__(self, name, doc) -> None:
        if name == "start":
            self.raw.create_container(key=doc["uid"], metadata={"start": doc})


def test_a_missing_stop_is_written_again_and_a_present_one_left(store):
    start, stop = _docs()
    store.raw.create_container(key=start["uid"], metadata={"start": start, "results": {}})
    assert confirm_stop_recorded(store.raw, start["uid"], stop) == 1
    metadata = store.raw[start["uid"]].metadata
    assert metadata["stop"]["uid"] == stop["uid"]
    assert metadata["results"] == {}  # other keys are kept
    assert confirm_stop_recorded(store.raw, start["uid"], stop) == 0


def test_a_stop_tiled_never_keeps_is_an_error_not_a_success(store, monkeypatch):
    start, stop = _docs()
    store.raw.create_container(key=start["uid"], metadata={"start": start})
    node_type = type(store.raw[start["uid"]])
    monkeypatch.setattr(node_type, "update_metadata", lambda self, **kw: None)
    with pytest.raises(StopNotRecordedError, match="did not keep the stop"):
        confirm_stop_recorded(store.raw, start["uid"], stop, attempts=2)


def test_the_journaled_writer_repairs_a_lost_stop_and_marks_the_run_synced(store, tmp_path):
    journal = DocumentJournal(tmp_path / "journal")
    writer = JournaledWriter(store.raw, journal, writer_factory=WriterThatLosesTheStop)
    start, stop = _docs()
    writer("start", start)
    writer("stop", stop)
    assert store.raw[start["uid"]].metadata["stop"]["uid"] == stop["uid"]
    assert journal.pending() == []
    assert writer.failures == []
