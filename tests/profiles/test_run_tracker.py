"""The worker notices a run whose documents did not all arrive (0MQ may drop some)."""

from __future__ import annotations

import pytest

from ssb_beamline.profiles.run_tracker import RunTracker

N = 3


def documents() -> list[tuple[str, dict]]:
    """One run: a primary stream of N events whose frames come by StreamDatum."""
    keys = {"det": {"external": "STREAM:", "shape": [1, 8, 8]}, "energy": {"shape": []}}
    docs = [
        ("start", {"uid": "run", "plan_name": "xanes_scan"}),
        ("descriptor", {"uid": "d", "run_start": "run", "name": "primary", "data_keys": keys}),
        ("stream_resource", {"uid": "r", "run_start": "run", "data_key": "det"}),
    ]
    for i in range(1, N + 1):
        docs.append(("stream_datum", {"descriptor": "d", "stream_resource": "r",
                                      "seq_nums": {"start": i, "stop": i + 1}}))  # fmt: skip
        docs.append(("event", {"descriptor": "d", "seq_num": i, "data": {"energy": 1.0}}))
    return docs


def missing(docs, stop=None) -> list[str]:
    tracker = RunTracker(docs[0][1])
    for name, doc in docs[1:]:
        assert tracker.owns(name, doc)
    return tracker.missing(stop or {"run_start": "run", "num_events": {"primary": N}})


def test_a_whole_run_is_whole():
    assert missing(documents()) == []


@pytest.mark.parametrize(
    ("dropped", "expected"),
    [
        ("event", "2 of 3 events"),
        ("stream_datum", "'det': 2 of 3 frames"),
        ("stream_resource", "StreamDatum(s) of unknown resources"),
    ],
)
def test_a_lost_document_is_named(dropped, expected):
    docs = documents()
    index = max(i for i, (name, _) in enumerate(docs) if name == dropped)
    del docs[index]
    if dropped == "stream_resource":  # its datums are then orphans
        tracker = RunTracker(docs[0][1])
        for name, doc in docs[1:]:
            tracker.owns(name, doc)
        problems = tracker.missing({"num_events": {"primary": N}})
    else:
        problems = missing(docs)
    assert any(expected in p for p in problems), problems


def test_a_lost_descriptor_is_named():
    docs = [d for d in documents() if d[0] not in ("descriptor",)]
    tracker = RunTracker(docs[0][1])
    owned = [tracker.owns(name, doc) for name, doc in docs[1:]]
    assert owned.count(True) == 1  # only the resource: events of an unknown stream are not its
    assert tracker.missing({"num_events": {"primary": N}}) == [
        "stream 'primary': no descriptor (3 events)"
    ]


def test_documents_of_another_run_are_not_counted():
    tracker = RunTracker({"uid": "run"})
    assert not tracker.owns("descriptor", {"uid": "x", "run_start": "other", "name": "primary",
                                           "data_keys": {}})  # fmt: skip
    assert not tracker.owns("event", {"descriptor": "x", "seq_num": 1})
    assert not tracker.owns("stop", {"run_start": "other"})
