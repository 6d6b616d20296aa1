"""Checks on a results version left half-written, shared by the storage tests."""

from __future__ import annotations

from ssb_beamline.storage import read_results
from ssb_beamline.storage.result_layout import IN_PROGRESS, complete_versions, result_versions
from ssb_beamline.storage.results import TiledResultSink


def assert_v1_in_progress(results, uid: str) -> None:
    """``results/<uid>`` holds only ``v1``, still marked as being written."""
    assert result_versions(results, uid) == ["v1"]
    assert IN_PROGRESS in results[uid]["v1"].metadata["contents"]
    assert complete_versions(results, uid) == []


def synced_results(results, uid: str, journal_dir):
    """Upload the one journaled version of ``uid``; check it is complete; read it back."""
    sink = TiledResultSink(results, journal_dir)
    (path,) = sink.upload_journaled(sink.journal)
    assert complete_versions(results, uid) == [path.rsplit("/", 1)[1]]
    return read_results(results, uid)
