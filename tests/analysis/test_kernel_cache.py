"""Compiled kernels are cached in the user cache directory, shared safely by processes."""

from __future__ import annotations

import json
import logging
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
_jit.open_counts(frame, ones, frame.copy())
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


def test_the_warm_up_covers_every_kernel_signature_of_the_live_path():
    """After warm_up_kernels, the live path (absorbance + maps) compiles nothing new."""
    np = pytest.importorskip("numpy")
    from ssb_beamline.analysis import (
        _jit,
        absorbance_with_open_beam,
        analyse_xanes_stack,
        open_beam,
        warm_up_kernels,
    )
    from ssb_beamline.reference_data import ni_k_edge_references

    thread = warm_up_kernels(background=True)
    assert warm_up_kernels(background=True) is thread  # once per process
    warm_up_kernels()  # joins it
    assert not thread.is_alive()
    from ssb_beamline.analysis._kernels_edt import particle_edt_2d
    from ssb_beamline.analysis._kernels_joint import joint_pass
    from ssb_beamline.analysis.diffusion import diffusion_distance_maps

    kernels = (
        _jit.absorbance_table_rows,
        _jit.open_counts,
        _jit.edge_window_uniform,
        particle_edt_2d,
        joint_pass,
    )
    before = [len(k.signatures) for k in kernels]
    assert min(before) >= 1
    refs = ni_k_edge_references()
    e = np.arange(8300.0, 8450.0, 1.5)
    mix = (0.3 + 0.5 * (0.6 * refs[0].at(e) + 0.4 * refs[1].at(e))).astype(np.float32)
    dark = np.full((8, 8), 100, np.uint16)
    beam = open_beam(np.full((8, 8), 30000, np.uint16), dark)
    stack = np.empty((e.size, 8, 8), np.float32)
    for i, m in enumerate(mix):
        frame = (100 + 29900 * np.exp(-m) * np.ones((8, 8))).astype(np.uint16)
        absorbance_with_open_beam(frame, dark, beam, out=stack[i])
    maps = analyse_xanes_stack(stack, e, refs, mask=np.ones((8, 8), bool))
    assert np.isfinite(maps.edge_energy).all()
    phases = np.ones((6, 9), np.uint8)
    phases[:, 0], phases[:, -1] = 2, 3
    assert diffusion_distance_maps(phases, pixel_size_um=1.0).combined is not None
    assert [len(k.signatures) for k in kernels] == before


def test_compile_lock_makes_concurrent_warm_ups_take_turns(monkeypatch, tmp_path):
    """A second holder (another open file: as another process) waits, here until its timeout."""
    from ssb_beamline.analysis._jit_cache import compile_lock

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    with compile_lock() as held:
        assert held
        with compile_lock(timeout_s=0.2) as second:
            assert not second  # busy: gave up after its timeout, runs unlocked
    with compile_lock(timeout_s=0.2) as again:
        assert again  # released
    assert stat.S_IMODE((tmp_path / "c" / ".compile.lock").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "c").stat().st_mode) == 0o700


# the live path in a new process: which top-level kernels compiled, which loaded, and
# how often numba refreshed its whole compiler context (cached kernels do not need it)
LIVE_CHILD = """
import json, numpy as np
from numba.core import base, entrypoints
refreshes = []
_refresh = base.BaseContext.refresh
def counted_refresh(self):
    refreshes.append(type(self).__name__)
    return _refresh(self)
base.BaseContext.refresh = counted_refresh
from ssb_beamline.analysis import _jit, absorbance_with_open_beam, analyse_xanes_stack, open_beam
from ssb_beamline.analysis._kernels_joint import joint_pass
from ssb_beamline.reference_data import ni_k_edge_references
refs = ni_k_edge_references()
e = np.arange(8300.0, 8450.0, 1.5)
mu = (0.3 + 0.5 * (0.6 * refs[0].at(e) + 0.4 * refs[1].at(e))).astype(np.float32)
dark = np.full((8, 8), 100, np.uint16)
beam = open_beam(np.full((8, 8), 30000, np.uint16), dark)
stack = np.empty((e.size, 8, 8), np.float32)
for i, m in enumerate(mu):
    frame = (100 + 29900 * np.exp(-m) * np.ones((8, 8))).astype(np.uint16)
    absorbance_with_open_beam(frame, dark, beam, out=stack[i])
maps = analyse_xanes_stack(stack, e, refs)
ks = (_jit.absorbance_table_rows, _jit.open_counts, joint_pass)
print(json.dumps({"hits": [sum(k.stats.cache_hits.values()) for k in ks],
                  "misses": [sum(k.stats.cache_misses.values()) for k in ks],
                  "refreshes": refreshes, "extensions": entrypoints._already_initialized,
                  "edge": maps.edge_energy.astype(float).tolist(),
                  "stack": stack.astype(float).tolist()}))
"""


@pytest.mark.slow
def test_kernels_compiled_ahead_are_loaded_not_compiled_by_a_new_process(monkeypatch, caplog):
    """``make kernels`` (``python -m ...._jit_ahead``) fills the cache the package reads.

    Uses the default cache directory, as ``make test`` does after ``make kernels``
    (then this only loads); a new process's live path then compiles nothing.
    """
    np = pytest.importorskip("numpy")
    from ssb_beamline.analysis import _jit_ahead

    monkeypatch.delenv(CACHE_ENV, raising=False)
    with caplog.at_level(logging.INFO, logger=_jit_ahead.__name__):
        assert _jit_ahead.main([]) == 0
    assert f"analysis kernels ready in {kernel_cache_dir()}" in caplog.text
    env = {k: v for k, v in os.environ.items() if k != CACHE_ENV}
    cmd = [sys.executable, "-c", LIVE_CHILD]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["misses"] == [0, 0, 0] and min(r["hits"]) == 1, r
    # loaded without numba's full context refresh (_jit_cache's short load) ...
    assert not r["refreshes"], f"{len(r['refreshes'])} refreshes"
    assert r["extensions"] is False  # no scan of numba extension packages (awkward, sparse)
    # ... and computing what the kernels of this process compute
    from ssb_beamline.analysis import analyse_xanes_stack
    from ssb_beamline.reference_data import ni_k_edge_references

    stack = np.array(r["stack"], np.float32)
    e = np.arange(8300.0, 8450.0, 1.5)
    edge = analyse_xanes_stack(stack, e, ni_k_edge_references()).edge_energy
    np.testing.assert_array_equal(np.array(r["edge"]), edge.astype(float))


# numba's runtime started from the package's cache, then used by a kernel numba compiles
RUNTIME_CHILD = """
import json, numpy as np
from numba import njit
from numba.core.registry import cpu_target
from numba.core.runtime import nrt
from ssb_beamline.analysis._jit_cache import initialize_runtime
source = initialize_runtime(cpu_target.target_context)
again = initialize_runtime(cpu_target.target_context)

@njit
def rows(n):  # allocates (NRT) and drops arrays (the cached reference-count helpers)
    total = 0.0
    for i in range(n):
        total += np.ones(i + 1).sum()
    return total

print(json.dumps({"source": source, "again": again, "total": rows(50),
                  "linked": nrt.rtsys.library.get_pointer_to_function("NRT_decref") != 0}))
"""


@pytest.mark.slow
def test_the_runtime_helpers_are_compiled_once_then_read_from_the_cache(tmp_path):
    env = {**os.environ, CACHE_ENV: str(tmp_path / "c")}
    cmd = [sys.executable, "-c", RUNTIME_CHILD]
    results = []
    for _ in range(2):
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    first, second = results
    assert (first["source"], second["source"]) == ("compiled", "disk"), results
    assert first["again"] == second["again"] == "ready"
    assert first["total"] == second["total"] == sum(range(1, 51))
    assert first["linked"] and second["linked"]
    (cached,) = (tmp_path / "c").glob("nrt-*.pkl")
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    cached.write_bytes(b"not a pickle")  # damaged: compiled and written again
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=True)
    damaged = json.loads(out.stdout.strip().splitlines()[-1])
    assert damaged["source"] == "compiled" and damaged["total"] == first["total"]
    assert cached.read_bytes() != b"not a pickle"
