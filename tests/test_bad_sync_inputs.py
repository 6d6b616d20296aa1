"""Bad-input catalogue of ``ssb-beamline sync``: damaged journal entries between good ones.

Each damaged entry is reported with its file (and line, for JSON content), never as
a traceback; every other entry is still written to tiled; the exit code is
non-zero only once all were tried.
"""

from __future__ import annotations

import json
import os
import uuid

import numpy as np
import pytest

from ssb_beamline.cli import main
from ssb_beamline.storage import open_store, read_results
from ssb_beamline.storage.journal import DocumentJournal, JournalCorruptError
from ssb_beamline.storage.result_journal import ResultEntryError, ResultJournal
from ssb_beamline.storage.server_config import TILED_API_KEY_ENV
from ssb_beamline.storage.sync import SyncIncompleteError, sync_pending
from ssb_beamline.storage.synthetic import count_run


def _journal_run(journal: DocumentJournal, uid: str) -> None:
    for name, doc in count_run(uid):
        journal.append(uid, name, doc)


def _lines(docs) -> list[str]:
    return [json.dumps({"name": n, "doc": d}) + "\n" for n, d in docs]


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """A journal with good and damaged runs and results, interleaved (oldest first)."""
    data_dir = tmp_path_factory.mktemp("bad-sync")
    journal = DocumentJournal(data_dir / "journal")
    results = ResultJournal(journal.directory / "results")
    tag = uuid.uuid4().hex[:8]
    uid = {k: f"{k}-{tag}" for k in ("good1", "cut", "good2", "nostart", "good3")}
    _journal_run(journal, uid["good1"])
    lines = _lines(count_run(uid["cut"]))  # line 4 cut short by a crash, then more lines
    journal.path(uid["cut"]).write_text("".join(lines[:3]) + lines[3][:25] + "\n" + lines[4])
    _journal_run(journal, uid["good2"])
    journal.path(uid["nostart"]).write_text("".join(_lines(count_run(uid["nostart"])[1:])))
    _journal_run(journal, uid["good3"])
    for age, name in enumerate(reversed(list(uid.values()))):  # pending: oldest first
        t = 1_700_000_000 - 10 * age
        os.utime(journal.path(name), (t, t))

    soc = np.arange(6, dtype=np.float32).reshape(2, 3)
    entries = {}
    for key in ("r-good1", "r-noarrays", "r-garbled", "r-good2", "r-badnpz"):
        entries[key] = results.write(
            uid["good1"], {"soc": soc}, units={"soc": "fraction"}, metadata={"entry": key}
        )
    (entries["r-noarrays"] / "arrays.npz").unlink()
    (entries["r-garbled"] / "metadata.json").write_text('{\n"run_uid": "a\x01b",\n"units": {}}')
    (entries["r-badnpz"] / "arrays.npz").write_bytes(b"PK\x03\x04 not a zip")
    return data_dir, journal, results, uid, entries


def test_sync_tries_every_entry_and_names_each_damaged_file(
    damaged, tiled_server, monkeypatch, capsys
):
    data_dir, journal, results, uid, entries = damaged
    monkeypatch.setenv(TILED_API_KEY_ENV, tiled_server.api_key)
    monkeypatch.setenv("COLUMNS", "2000")  # one line per message
    code = main(["sync", "--tiled", tiled_server.url, "--data-dir", str(data_dir)])
    out = capsys.readouterr().out
    print(out)  # the report a user sees (pytest -s)
    assert code == 1, out
    assert "Traceback" not in out
    failures = [line for line in out.splitlines() if line.startswith("not synced:")]
    assert len(failures) == 5, out
    cut, nostart = journal.path(uid["cut"]), journal.path(uid["nostart"])
    assert f"{cut}, line 4, is not a journaled document" in out
    assert f"{nostart}, line 1, is not the run's start document" in out
    assert f"{entries['r-noarrays'] / 'arrays.npz'}: is missing" in out
    assert f"{entries['r-garbled'] / 'metadata.json'}, line 2: is not valid JSON at column" in out
    assert "Invalid control character" in out
    assert f"{entries['r-badnpz'] / 'arrays.npz'}: is not a readable .npz file" in out
    assert "5 of 10 journal entries failed" in out
    # every good entry behind a bad one is in tiled
    for key in ("good1", "good2", "good3"):
        assert f"synced {uid[key]}" in out
    assert journal.pending() == sorted([uid["cut"], uid["nostart"]])
    assert {p.name for p in results.pending()} == {
        entries[k].name for k in ("r-noarrays", "r-garbled", "r-badnpz")
    }
    with open_store(tiled_server.url, api_key=tiled_server.api_key, data_dir=data_dir) as store:
        for key in ("good1", "good2", "good3"):
            assert store.raw[uid[key]].metadata["stop"]["exit_status"] == "success"
        assert uid["cut"] not in store.raw and uid["nostart"] not in store.raw
        versions = ("v1", "v2")
        stored = {read_results(store.results, uid["good1"], v).metadata["entry"] for v in versions}
        assert stored == {"r-good1", "r-good2"}
        # the damaged entries stay, so sync fails again, after trying all, with the same list
        with pytest.raises(SyncIncompleteError, match=r"5 journal entries could not") as err:
            sync_pending(store.raw, journal, results=store.results)
    where = sorted((f.path.name, f.line or 0) for f in err.value.report.failures)
    assert where == sorted(
        [
            (cut.name, 4),
            (nostart.name, 1),
            ("arrays.npz", 0),
            ("arrays.npz", 0),
            ("metadata.json", 2),
        ]
    )


def test_a_results_entry_without_metadata(tmp_path):
    journal = ResultJournal(tmp_path)
    entry = journal.write("run", {"a": np.zeros(2)}, units={}, metadata={})
    (entry / "metadata.json").unlink()
    with pytest.raises(ResultEntryError, match=r"metadata\.json: is missing.*move the entry"):
        journal.read(entry)


def test_a_results_entry_whose_metadata_lacks_keys(tmp_path):
    journal = ResultJournal(tmp_path)
    entry = journal.write("run", {"a": np.zeros(2)}, units={}, metadata={})
    (entry / "metadata.json").write_text(json.dumps({"run_uid": "run", "arrays": "a"}))
    with pytest.raises(ResultEntryError, match=r"lacks or has a wrong type for units, metadata"):
        journal.read(entry)


def test_a_results_entry_whose_npz_lacks_an_array(tmp_path):
    journal = ResultJournal(tmp_path)
    entry = journal.write("run", {"a": np.zeros(2)}, units={}, metadata={})
    np.savez(entry / "arrays.npz", b=np.zeros(2))
    with pytest.raises(ResultEntryError, match=r"arrays\.npz: has no array 'a'"):
        journal.read(entry)


def test_a_journal_line_that_is_json_but_not_a_document(tmp_path):
    journal = DocumentJournal(tmp_path)
    journal.path("odd").write_text('{"name": "start", "doc": 5}\n')
    with pytest.raises(JournalCorruptError, match=r"line 1, is not a journaled document") as err:
        list(journal.read("odd"))
    assert err.value.path == journal.path("odd") and err.value.line == 1
