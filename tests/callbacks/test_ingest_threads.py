"""The live ingest's thread helpers: spent flats freed off the thread, reads ahead on demand."""

import os
import threading
import weakref

import h5py
import numpy as np

from ssb_beamline.callbacks._ingest_threads import Releaser, ingest_workers
from ssb_beamline.callbacks.frames import HDF5_MIMETYPE, HDF5FrameResolver

FREED_ON: list[str] = []


class _Spent:
    """Records the thread it is freed on."""

    def __del__(self) -> None:
        FREED_ON.append(threading.current_thread().name)


def test_released_objects_die_on_the_helper_thread_before_close_returns():
    FREED_ON.clear()
    r = Releaser()
    spent = [_Spent() for _ in range(3)]
    alive = [weakref.ref(x) for x in spent]
    r.release(spent)
    del spent
    r.close()
    assert all(ref() is None for ref in alive)
    assert len(FREED_ON) == 3
    assert all(name.startswith("ingest-release") for name in FREED_ON)
    r.release([_Spent()])  # usable again after close (a new thread)
    r.close()
    assert len(FREED_ON) == 4


def test_ingest_workers_leave_one_core_for_the_read_ahead():
    cores = len(os.sched_getaffinity(0))
    assert ingest_workers() == max(1, min(8, cores) - 1)  # the analysis' cap of 8


def _datum(res: str, i: int) -> dict:
    return {"uid": f"{res}/{i}", "stream_resource": res, "indices": {"start": i, "stop": i + 1}}


def test_a_deferred_read_ahead_starts_only_when_asked_and_reads_the_same_frames(tmp_path):
    data = np.arange(4 * 8 * 8, dtype=np.uint16).reshape(4, 8, 8)
    path = tmp_path / "det.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("/entry/data/data", data=data, chunks=(1, 8, 8))
    resolver = HDF5FrameResolver(defer_read_ahead=True)
    resolver.stream_resource({"uid": "r", "data_key": "det", "mimetype": HDF5_MIMETYPE,
                              "uri": f"file://localhost{path}",
                              "parameters": {"dataset": "/entry/data/data"}})  # fmt: skip
    try:
        np.testing.assert_array_equal(resolver.frames(_datum("r", 0)), data[0:1])
        assert resolver._ahead == {}  # held back
        resolver.start_read_ahead()
        assert resolver._ahead["r"][:2] == (1, 2)
        np.testing.assert_array_equal(resolver.frames(_datum("r", 1)), data[1:2])
        # never started: frame 2 is read when asked for, and is the same
        np.testing.assert_array_equal(resolver.frames(_datum("r", 2)), data[2:3])
        assert resolver._ahead == {}
    finally:
        resolver.close()
