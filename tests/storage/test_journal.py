"""Nothing is lost when tiled fails: the journal keeps the documents until it is back."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from ssb_beamline.storage.journal import (
    DocumentJournal,
    JournalCorruptError,
    JournaledWriter,
    sync_pending,
)


class FlakyWriter:
    """A document callback that fails from its n-th document on (like a dead server)."""

    def __init__(self, fail_from: int) -> None:
        self.fail_from = fail_from
        self.seen: list[str] = []

    def __call__(self, name, doc):
        if len(self.seen) >= self.fail_from:
            raise ConnectionError("tiled server went away")
        self.seen.append(name)


def documents():
    """The documents of a real 3-point count (start, descriptor, 3 events, stop)."""
    import bluesky.plans as bp
    from bluesky.run_engine import RunEngine
    from ophyd.sim import SynGauss, motor

    det = SynGauss("det", motor, "motor", center=0, Imax=1, sigma=1)
    collected = []
    engine = RunEngine({}, call_returns_result=False)
    engine.subscribe(lambda n, d: collected.append((n, d)))
    engine(bp.count([det], 3))
    return collected


def test_a_failing_writer_is_logged_and_the_run_kept(tmp_path, caplog):
    journal = DocumentJournal(tmp_path)
    writers = []

    def factory(raw):
        writers.append(FlakyWriter(fail_from=3))
        return writers[-1]

    writer = JournaledWriter(raw=None, journal=journal, writer_factory=factory)
    docs = documents()
    uid = docs[0][1]["uid"]
    with caplog.at_level(logging.ERROR):
        for name, doc in docs:
            writer(name, doc)
    assert "writing event to tiled failed" in caplog.text
    assert "stays pending" in caplog.text
    assert journal.pending() == [uid]
    assert [n for n, _ in journal.read(uid)] == [n for n, _ in docs]
    assert writer.failures and "ConnectionError" in writer.failures[0]


def test_a_run_that_reaches_tiled_is_marked_synced(tmp_path):
    journal = DocumentJournal(tmp_path)
    writer = JournaledWriter(None, journal, writer_factory=lambda raw: FlakyWriter(99))
    docs = documents()
    for name, doc in docs:
        writer(name, doc)
    assert journal.pending() == []
    assert (tmp_path / f"{docs[0][1]['uid']}.synced.jsonl").exists()


def test_sync_writes_pending_runs_into_a_real_tiled_server(tmp_path, catalog_server):
    tiled_server = catalog_server
    journal = DocumentJournal(tmp_path)
    writer = JournaledWriter(None, journal, writer_factory=lambda raw: FlakyWriter(2))
    docs = documents()
    uid = docs[0][1]["uid"]
    for name, doc in docs:
        writer(name, doc)
    raw = tiled_server.client().create_container("raw-sync")
    assert sync_pending(raw, journal) == [uid]
    assert journal.pending() == []
    expected = [d["data"]["det"] for n, d in docs if n == "event"]
    np.testing.assert_allclose(raw[uid]["primary"]["det"].read(), expected)
    assert raw[uid].metadata["stop"]["exit_status"] == "success"


def test_a_corrupt_journal_is_named_with_its_line(tmp_path):
    journal = DocumentJournal(tmp_path)
    journal.append("bad", "start", {"uid": "bad", "time": 0})
    with journal.path("bad").open("a") as f:
        f.write('{"name": "event", "doc": {truncated\n')
    with pytest.raises(JournalCorruptError, match=r"bad\.jsonl, line 2, is not a journaled"):
        list(journal.read("bad"))
    with pytest.raises(JournalCorruptError, match="No journal for run nope"):
        list(journal.read("nope"))


def test_numpy_values_are_journaled_as_plain_json(tmp_path):
    journal = DocumentJournal(tmp_path)
    journal.append("r", "event", {"data": {"a": np.float32(1.5), "b": np.arange(3)}})
    record = json.loads(journal.path("r").read_text())
    assert record["doc"]["data"] == {"a": 1.5, "b": [0, 1, 2]}
