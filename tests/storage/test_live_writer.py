"""The live writer sends a finished stream's rows and frames before the stop document.

bluesky's ``TiledWriter`` kept the darks' table and detector, and the last rows and
frames of every stream, for the stop document: a dozen requests competing with the
results upload on the one tiled server. ``LiveTiledWriter`` writes them while the
scan runs, and the run must read exactly as bluesky's writer leaves it.
"""

from __future__ import annotations

import uuid

import pytest
from bluesky.callbacks.tiled_writer import TiledWriter
from tiled.client import from_uri

from ssb_beamline.storage.journal import LIVE_BATCH_SIZE, DocumentJournal, JournaledWriter
from ssb_beamline.storage.replay import run_documents
from ssb_beamline.storage.synthetic import xanes_run

ENERGIES = [8300.0 + 5 * i for i in range(13)]  # 13 flats, 13 images: a batch of 8 and a rest


def _documents(server, files_per_stream: int):
    folder = server.layout.detector / f"live-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    return xanes_run(str(uuid.uuid4()), folder, ENERGIES, n_dark=3,
                     files_per_stream=files_per_stream)  # fmt: skip


def _containers(server):
    client = from_uri(server.url, api_key=server.api_key).include_data_sources()
    tag = uuid.uuid4().hex[:8]
    return client.create_container(f"raw-bluesky-{tag}"), client.create_container(f"raw-live-{tag}")


def _write_as_before(raw, docs) -> None:
    """bluesky's writer in batches of ``LIVE_BATCH_SIZE``: the live writer until now."""
    writer = TiledWriter(raw, batch_size=LIVE_BATCH_SIZE)
    for name, doc in docs:
        writer(name, doc)


def _data_sources(node) -> list:
    return [(ds.structure_family, ds.mimetype, ds.structure, ds.parameters.get("dataset"),
             [(a.data_uri, a.parameter, a.num) for a in ds.assets])
            for ds in node.data_sources()]  # fmt: skip


def _contents(run) -> dict:
    """What a reader finds in a raw run: keys in order, metadata, data sources, values."""
    found = {"keys": list(run), "metadata": dict(run.metadata)}
    for stream in run:
        node = run[stream].base
        found[stream] = {"keys": list(node), "metadata": dict(node.metadata)}
        for key in node:
            child = node[key]
            structure = _data_sources(child)
            if key == "internal":
                structure = [s[:2] + s[3:] for s in structure]  # the schema's bytes vary
                found[stream]["internal_table"] = child.read().to_dict("list")
            else:
                found[stream][f"{key}_frames"] = child.read().tolist()
            found[stream][key] = structure
    return found


def _stream(run, stream: str) -> dict:
    node = run[stream].base
    return {key: len(node[key].read()) for key in node}


@pytest.mark.parametrize("files_per_stream", [1, 4])
def test_a_finished_stream_reaches_tiled_before_the_stop(catalog_server, tmp_path,
                                                         files_per_stream):  # fmt: skip
    docs = _documents(catalog_server, files_per_stream)
    uid = docs[0][1]["uid"]
    bluesky_raw, live_raw = _containers(catalog_server)
    writer = JournaledWriter(live_raw, DocumentJournal(tmp_path))
    for name, doc in docs[:-1]:
        writer(name, doc)

    # before the stop: the darks and flats are complete (their streams went idle)
    assert _stream(live_raw[uid], "dark") == {"internal": 3, "det": 3}
    assert _stream(live_raw[uid], "flat") == {"internal": 13, "det": 13}
    # the images: batches of 8 rows and frames; of 4 files (4, 3, 3, 3 frames): the
    # first 3 files, the table made with the first file's 4 rows, then a batch of 8
    expected = {"internal": 8, "det": 8} if files_per_stream == 1 else {"internal": 12, "det": 10}
    assert _stream(live_raw[uid], "primary") == expected

    writer(*docs[-1])
    assert writer.failures == []
    _write_as_before(bluesky_raw, docs)
    live, bluesky = _contents(live_raw[uid]), _contents(bluesky_raw[uid])
    assert live.keys() == bluesky.keys()
    for key in bluesky:
        assert live[key] == bluesky[key], key
    assert _replayed(live_raw[uid]) == _replayed(bluesky_raw[uid])


def _replayed(run) -> list:
    docs = []
    for name, document in run_documents(run, fill="never"):
        doc = dict(document)
        if name == "stream_resource":  # the detector files are the same; their node ids not
            doc.pop("uid", None)
        if name == "stream_datum":
            doc.pop("stream_resource", None)
            doc.pop("uid", None)
        docs.append((name, doc))
    return docs


def test_interleaved_streams_write_each_file_when_the_next_begins(catalog_server, tmp_path):
    """Flats taken between images: a file per frame; each is written when the next starts."""
    docs = _documents(catalog_server, files_per_stream=len(ENERGIES))
    uid = docs[0][1]["uid"]
    head = [(n, d) for n, d in docs if n in ("start", "descriptor")]
    per_frame: dict[str, list] = {}
    stream_of = {d["uid"]: d["name"] for n, d in head if n == "descriptor"}
    for name, doc in docs:
        if name in ("stream_resource", "stream_datum", "event"):
            per_frame.setdefault("pending", []).append((name, doc))
        if name == "event":
            per_frame.setdefault(stream_of[doc["descriptor"]], []).append(per_frame.pop("pending"))
    pairs = zip(per_frame["flat"], per_frame["primary"], strict=True)
    order = per_frame["dark"] + [frame for pair in pairs for frame in pair]
    interleaved = head + [doc for frame in order for doc in frame] + [docs[-1]]
    bluesky_raw, live_raw = _containers(catalog_server)
    writer = JournaledWriter(live_raw, DocumentJournal(tmp_path))
    for name, doc in interleaved[:-1]:
        writer(name, doc)
    # frames: all but each stream's last file; rows: the first (the table is made before
    # the first file's frames), then batches of 8 (both streams are busy, never idle)
    for stream in ("flat", "primary"):
        assert _stream(live_raw[uid], stream) == {"internal": 1 + LIVE_BATCH_SIZE, "det": 12}
    writer(*interleaved[-1])
    _write_as_before(bluesky_raw, interleaved)
    live, bluesky = _contents(live_raw[uid]), _contents(bluesky_raw[uid])
    for key in bluesky:
        assert live[key] == bluesky[key], key
