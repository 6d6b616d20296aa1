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


def same_versions(results, new_uid: str, old_uid: str):
    """``v1`` of two runs hold the same metadata and children; both read back.

    Metadata that names the run or its time are left out; each child's structure,
    specs and metadata must be equal. Returns ``(new, old)`` as read by
    :func:`read_results` and the two ``v1`` nodes.
    """
    new, old = read_results(results, new_uid), read_results(results, old_uid)
    drop = {"created", "run_uid", "attrs"}
    assert {k: v for k, v in new.metadata.items() if k not in drop} == {
        k: v for k, v in old.metadata.items() if k not in drop
    }
    a_node, b_node = results[new_uid]["v1"], results[old_uid]["v1"]
    assert sorted(a_node) == sorted(b_node)
    for key in a_node:
        a, b = a_node[key], b_node[key]
        assert (a.structure(), a.specs, a.metadata) == (b.structure(), b.specs, b.metadata), key
    return new, old, a_node, b_node


def synced_results(results, uid: str, journal_dir):
    """Upload the one journaled version of ``uid``; check it is complete; read it back."""
    sink = TiledResultSink(results, journal_dir)
    (path,) = sink.upload_journaled(sink.journal)
    assert complete_versions(results, uid) == [path.rsplit("/", 1)[1]]
    return read_results(results, uid)
