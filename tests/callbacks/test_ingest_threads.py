"""The live ingest's thread helpers: spent objects die on the helper thread, all by close."""

import os
import threading
import weakref

from ssb_beamline.callbacks._ingest_threads import Releaser, ingest_workers

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
    assert ingest_workers() == max(1, cores - 1)
