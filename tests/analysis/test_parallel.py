"""run_chunks: every chunk once, on the caller and the pool, and worker errors reach the caller."""

from __future__ import annotations

import threading
import time

import pytest

from ssb_beamline.analysis._parallel import run_chunks


def test_every_chunk_runs_once_across_threads():
    seen, lock = [], threading.Lock()

    def work(s: slice) -> None:
        with lock:
            seen.append((s.start, s.stop))

    run_chunks(work, 1000, 7, workers=3, limit_blas=False)
    assert sorted(seen) == [(a, min(a + 7, 1000)) for a in range(0, 1000, 7)]


def test_an_error_in_a_chunk_stops_the_others_and_reaches_the_caller():
    done, lock = [], threading.Lock()

    def work(s: slice) -> None:
        if s.start == 30:
            raise ValueError("chunk 30 is bad")
        time.sleep(0.001)  # the 1000 chunks would take a second per thread
        with lock:
            done.append(s.start)

    with pytest.raises(ValueError, match="chunk 30 is bad"):
        run_chunks(work, 10_000, 10, workers=2, limit_blas=False)
    assert len(done) < 500  # the threads stopped taking chunks after the error
