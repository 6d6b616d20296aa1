"""Compiled kernels are cached in the user cache directory, shared safely by processes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from ssb_beamline.analysis._jit_cache import CACHE_ENV, kernel_cache_dir

# compile (or load) the smallest kernel and report where it went and whether it loaded
CHILD = """
import json, numpy as np
from ssb_beamline.analysis import _jit
u16 = np.uint16
frame, ones = np.zeros((2, 4), u16), np.ones((2, 4), u16)
_jit.open_counts(frame, ones, 65535, frame.copy(), np.empty((2, 4), np.bool_))
st = _jit.open_counts.stats
print(json.dumps({"path": st.cache_path, "hits": sum(st.cache_hits.values()),
                  "misses": sum(st.cache_misses.values())}))
"""


def run_children(cache: str, n: int) -> list[dict]:
    env = {**os.environ, CACHE_ENV: cache}
    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(n)
    ]
    out = []
    for p in procs:
        stdout, _ = p.communicate(timeout=300)
        assert p.returncode == 0
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


@pytest.mark.slow
def test_processes_share_the_disk_cache(tmp_path):
    cache = tmp_path / "nested" / "numba"
    # two processes compile at once into an empty cache ...
    first = run_children(str(cache), 2)
    for r in first:
        assert r["path"].startswith(str(cache)), r
    # ... and a later process loads instead of compiling
    (later,) = run_children(str(cache), 1)
    assert later["hits"] == 1 and later["misses"] == 0, later
    assert any(f.suffix == ".nbi" for f in cache.rglob("*"))
    for d in (tmp_path / "nested", cache):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert kernel_cache_dir() == tmp_path / "ssb_beamline" / "numba"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert kernel_cache_dir() == tmp_path / "home" / ".cache" / "ssb_beamline" / "numba"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "x"))
    assert kernel_cache_dir() == tmp_path / "x"
