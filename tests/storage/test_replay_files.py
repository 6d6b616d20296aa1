"""Replay from detector files: streams written to several files, frames in bounded blocks.

tiled's exporter names only a stream's first file; a run whose streams span several
files (one per energy, as a 3D XANES scan writes them) used to fail from local files
with "holds 1 frames; StreamDatum asks for frames 0-10" while replay from tiled worked.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from ssb_beamline.callbacks.xanes_live import XanesLiveAnalysis
from ssb_beamline.plans.energy_grids import NI_K_EDGE_REGIONS_EV, edge_grid
from ssb_beamline.reference_data import ni_k_edge_references
from ssb_beamline.storage import open_store, replay_files
from ssb_beamline.storage.replay import ReplayError, run_documents
from ssb_beamline.storage.replay_files import per_file_documents
from ssb_beamline.storage.synthetic import mixture_frames, write_run, xanes_run

ENERGIES = edge_grid(*NI_K_EDGE_REGIONS_EV, n_pre=2, n_edge=9, n_post=2)
SHAPE = (16, 16)


def documents(uid, folder, files_per_stream):
    frames = mixture_frames(ENERGIES, SHAPE)
    return xanes_run(uid, folder, ENERGIES, shape=SHAPE, frames=frames, n_dark=3,
                     files_per_stream=files_per_stream)  # fmt: skip


def analysed(docs) -> XanesLiveAnalysis:
    callback = XanesLiveAnalysis(ni_k_edge_references())
    for name, doc in docs:
        callback(name, doc)
    assert callback.outcome.ok, callback.outcome.errors
    return callback


@pytest.fixture(scope="module")
def multi_file_run(tiled_server, tmp_path_factory):
    """A run whose streams are spread over 4 files each, stored in tiled, and its live maps."""
    store = open_store(tiled_server.url, api_key=tiled_server.api_key,
                       data_dir=tmp_path_factory.mktemp("replay-files"))  # fmt: skip
    folder = tiled_server.layout.detector / f"multi-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    uid = str(uuid.uuid4())
    docs = documents(uid, folder, files_per_stream=4)
    write_run(store.raw, docs)
    yield store, uid, folder, analysed(docs).outcome.maps
    store.close()


@pytest.mark.parametrize("fill", ["auto", "never", "always"])
def test_a_stream_of_several_files_replays_to_the_live_maps(multi_file_run, fill):
    store, uid, _, live = multi_file_run
    replayed = analysed(run_documents(store.raw[uid], fill=fill)).outcome.maps
    assert replayed.keys() == live.keys()
    for key in live:  # bit-identical, NaN where live has NaN
        np.testing.assert_array_equal(replayed[key], live[key], err_msg=key)


def test_every_file_of_a_stream_is_named_once_in_order(multi_file_run):
    store, uid, folder, _ = multi_file_run
    docs = list(run_documents(store.raw[uid], fill="never"))
    uris = [doc["uri"] for name, doc in docs if name == "stream_resource"]
    assert uris == [f"file://localhost{folder}/{uid}-{stream}-{n}.h5"
                    for stream in ("dark", "flat", "primary") for n in range(4)
                    if stream != "dark" or n < 3]  # fmt: skip


def test_a_missing_file_of_a_stream_is_named_with_fill_never(multi_file_run):
    store, uid, folder, _ = multi_file_run
    path = folder / f"{uid}-primary-2.h5"
    moved = path.rename(path.with_suffix(".moved"))
    try:
        with pytest.raises(ReplayError, match=r"fill='never'.*cannot be read here.*--fill"):
            list(run_documents(store.raw[uid], fill="never"))
    finally:
        moved.rename(path)


def test_frames_are_read_in_blocks_of_bounded_size(tmp_path, monkeypatch):
    """One datum per stream (as tiled exports it) becomes datums of at most 2 frames."""
    monkeypatch.setattr(replay_files, "FILE_BLOCK_BYTES", 2 * SHAPE[0] * SHAPE[1] * 2 + 1)
    uid = str(uuid.uuid4())
    docs = documents(uid, tmp_path, files_per_stream=1)
    exported, datums = [], {}
    for name, doc in docs:  # one StreamDatum for all the frames of a stream
        if name == "stream_datum":
            first = datums.setdefault(doc["stream_resource"], dict(doc))
            first["indices"] = {"start": 0, "stop": doc["indices"]["stop"]}
            first["seq_nums"] = {"start": 1, "stop": doc["seq_nums"]["stop"]}
            continue
        exported.append((name, doc))
    exported[-1:-1] = [("stream_datum", doc) for doc in datums.values()]
    files = {uid: [doc["uri"]] for uid, doc in ((d["uid"], d) for n, d in exported
                                                 if n == "stream_resource")}  # fmt: skip
    split = [doc for name, doc in per_file_documents(exported, files) if name == "stream_datum"]
    sizes = [d["indices"]["stop"] - d["indices"]["start"] for d in split]
    assert max(sizes) == 2 and sum(sizes) == 3 + 2 * len(ENERGIES)
    np.testing.assert_array_equal(analysed(exported).outcome.maps["soc"],
                                  analysed(docs).outcome.maps["soc"])  # fmt: skip


def test_tiled_serves_frames_across_file_boundaries_as_the_files_hold_them(multi_file_run):
    """The server reads a block of whole frames straight from the files it spans."""
    import h5py

    from ssb_beamline.storage.synthetic import DATASET

    store, uid, folder, _ = multi_file_run
    files = [folder / f"{uid}-primary-{n}.h5" for n in range(4)]
    parts = []
    for path in files:
        with h5py.File(path, "r") as f:
            parts.append(f[DATASET][()])
    on_disk = np.concatenate(parts)
    node = store.raw[uid]["primary"]["det"]
    np.testing.assert_array_equal(node[2:11], on_disk[2:11])  # spans three files
    np.testing.assert_array_equal(node[5], on_disk[5])  # one frame: tiled's own read
    np.testing.assert_array_equal(node[:, 3:5], on_disk[:, 3:5])  # rows: tiled's own read


def test_frames_read_ahead_from_closed_files_are_the_frames_asked_for(tmp_path):
    """Blocks of two resources, interleaved and then out of order, read (ahead) exactly."""
    import h5py

    from ssb_beamline.callbacks.frames import HDF5FrameResolver
    from ssb_beamline.storage.synthetic import DATASET

    docs = documents(str(uuid.uuid4()), tmp_path, files_per_stream=1)
    resources = [doc for name, doc in docs if name == "stream_resource"][1:]  # flat, primary
    resolver = HDF5FrameResolver()
    try:
        on_disk = {}
        for doc in resources:
            resolver.stream_resource(doc)
            with h5py.File(doc["uri"].removeprefix("file://localhost"), "r") as f:
                on_disk[doc["uid"]] = f[DATASET][()]
        order = [(0, 3), (3, 6), (6, 9), (2, 4), (4, 6), (6, 13)]
        for start, stop in order:
            for uid, frames in on_disk.items():
                datum = {"stream_resource": uid, "indices": {"start": start, "stop": stop}}
                np.testing.assert_array_equal(resolver.frames(datum), frames[start:stop])
        assert resolver._pool is not None  # it did read ahead
    finally:
        resolver.close()


def test_a_frame_block_s_etag_follows_its_file(multi_file_run):
    """Served blocks keep one ETag until a file of theirs changes (not hashed per request)."""
    import os

    from ssb_beamline.storage.replay_fill import uncompressed_frames

    store, uid, folder, _ = multi_file_run
    node = store.raw[uid]["primary"]["det"]
    url = node.item["links"]["full"]

    def tag(start: int, stop: int) -> str:
        headers = {"Accept": "application/octet-stream", "Accept-Encoding": "identity"}
        response = node.context.http_client.get(url, headers=headers,
                                                params={"slice": f"{start}:{stop}"})  # fmt: skip
        response.raise_for_status()
        return response.headers["ETag"]

    first = tag(2, 11)
    assert tag(2, 11) == first and tag(3, 11) != first
    path = folder / f"{uid}-primary-1.h5"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    try:
        assert tag(2, 11) != first  # a file of the block changed
        assert tag(0, 2) == tag(0, 2)
        np.testing.assert_array_equal(uncompressed_frames(node, 2, 11), node[2:11])
    finally:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_replay_turns_numpy_s_huge_page_requests_off(multi_file_run):
    """Fresh arrays of a replay cost no huge-page compaction (see ssb_beamline._memory)."""
    from numpy._core.multiarray import _set_madvise_hugepage

    from ssb_beamline import _memory

    store, uid, _, _ = multi_file_run
    before = _set_madvise_hugepage(True)
    try:
        _memory.no_huge_page_requests.cache_clear()
        next(run_documents(store.raw[uid], fill="never"))
        assert not _set_madvise_hugepage(True)  # the replay had turned it off
    finally:
        _set_madvise_hugepage(before)
