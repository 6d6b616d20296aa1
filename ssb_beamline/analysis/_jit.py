"""Compiled (numba) kernels for the per-frame hot paths of the live analysis.

Each kernel does in one sweep over memory what a chain of numpy ufuncs does in
several: at 2048 x 2048 the chains are memory bound, so fusing them is what
brings a frame under 10 ms on two cores.  The kernels are ``nogil`` and serial:
:func:`~ssb_beamline.analysis._parallel.run_chunks` runs them on its thread
pool over row/pixel chunks, which avoids numba's threading layers (not all of
them tolerate calls from several threads).  ``cache=True`` keeps the compiled
code in a user cache directory (:mod:`._jit_cache`: ``$SSB_BEAMLINE_NUMBA_CACHE``,
else ``$XDG_CACHE_HOME/ssb_beamline/numba`` or ``~/.cache/ssb_beamline/numba``),
so only the first process on a machine compiles (a few seconds); the others load.
``make install`` compiles them ahead (:mod:`._jit_ahead`), so that first
process is the installation, not a user's first scan or a test worker.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
from numba import njit

from ._jit_cache import compile_lock, install_locator
from ._jit_store import store_nt
from ._kernels_window import edge_window_uniform

log = logging.getLogger(__name__)

install_locator()  # before the decorators below: they pick their cache directory

__all__ = [
    "absorbance_table_rows",
    "edge_window_uniform",
    "load_joint_pass",
    "open_counts",
    "warm_up",
]


@njit(nogil=True, cache=True, boundscheck=False)
def open_counts(flat, dark_plus1, flat_w):
    """``flat_w = flat - dark_plus1`` (uint16, wrapping); returns the pixels above the dark.

    A flat pixel is valid when ``flat_w < top - dark_plus1``: above the dark and
    below the saturation ``top`` (see :class:`~ssb_beamline.analysis.CountTable`);
    :func:`absorbance_table_rows` tests that itself, so no mask is written here.
    """
    h, w = flat.shape
    n_above = 0
    for i in range(h):
        f, d1, fw_row = flat[i], dark_plus1[i], flat_w[i]
        for j in range(w):
            fw_row[j] = np.uint16(f[j] - d1[j])
            n_above += np.int32(f[j]) >= np.int32(d1[j])
    return n_above


@njit(nogil=True, cache=True, boundscheck=False)
def absorbance_table_rows(frame, dark_plus1, top, table, flat_w, shift, out, valid, and_valid):
    """``out = table[flat_w] - table[frame - dark_plus1] + shift`` where valid, else 0.

    The logarithm-table path of
    :func:`~ssb_beamline.analysis.absorbance_with_open_beam` for (rows, W) blocks:
    ``w = frame - dark_plus1`` wraps in uint16 arithmetic, and a pixel is valid
    when ``w`` and the flat's index ``flat_w`` (from :func:`open_counts`) are both
    below ``top - dark_plus1`` (above the dark, below saturation); see
    :class:`~ssb_beamline.analysis.CountTable`. ``valid`` receives the validity, or
    is ANDed with it when ``and_valid`` (a mask accumulated over frames).
    ``out`` is written with streaming stores (:func:`~._jit_store.store_nt`): the
    frame is read again only by later passes, so the stores skip the cache.
    """
    h, w = frame.shape
    top32 = np.int32(top)
    for i in range(h):
        f, d1, fw_row, o, v = frame[i], dark_plus1[i], flat_w[i], out[i], valid[i]
        for j in range(w):
            k = np.uint16(f[j] - d1[j])
            fw = fw_row[j]
            lim = top32 - np.int32(d1[j])
            # (a branch, not a select: nearly every pixel is valid, and a select makes
            # LLVM vectorise the table look-ups with slow gathers)
            if np.int32(k) < lim and np.int32(fw) < lim:
                store_nt(o, j, table[fw] - table[k] + shift)
                if not and_valid:
                    v[j] = True
            else:
                store_nt(o, j, np.float32(0.0))
                v[j] = False


_WARM_LOCK = threading.Lock()
_STARTED: dict[str, threading.Thread] = {}  # name -> the thread started under that name


def _start_once(name: str, target) -> threading.Thread:
    """Start ``target`` in a daemon thread called ``name``, once per process.

    Later calls with the same ``name`` return that thread (running or finished).
    """
    with _WARM_LOCK:
        thread = _STARTED.get(name)
        if thread is None:
            thread = threading.Thread(target=target, name=name, daemon=True)
            _STARTED[name] = thread
            thread.start()
        return thread


def _warm_up_now() -> None:
    # another process compiling them: wait (a compile takes 10-30 s), then load its
    # result; a live scan joining this warm-up never waits longer than that
    with compile_lock(timeout_s=60.0):
        _warm_up_kernels()
    _JOINT_LOADED.set()
    from ._parallel import prepare_pool

    try:
        prepare_pool()
    except RuntimeError as exc:  # the interpreter exits (a short script): no pool needed
        log.debug("analysis thread pool not prepared: %s", exc)


def _warm_up_kernels() -> None:
    for group in WARM_UP_GROUPS:  # the parts first: the joint pass then loads them
        group()
    _warm_up_joint_pass()


def _warm_up_frames_and_window() -> None:
    """Frame correction kernels and the edge-window kernel."""
    f32, u16 = np.float32, np.uint16
    frame, ones = np.zeros((2, 4), u16), np.ones((2, 4), u16)
    out, valid = np.empty((2, 4), f32), np.empty((2, 4), np.bool_)
    table = np.zeros(65536, f32)
    absorbance_table_rows(frame, ones, 65535, table, ones, f32(0.0), out, valid, False)
    open_counts(frame, ones, frame.copy())
    window, px = np.zeros((8, 4), f32), np.zeros(4, f32)
    edge_window_uniform(window, px, px, px, px, 0.0, 0.01, 8330.0, 0.5, True, px, px.copy())


def _warm_up_joint_parts_and_edt() -> None:
    """The joint pass's block kernels (types of its calls) and the diffusion maps' EDT."""
    from ._kernels_edt import particle_edt_2d
    from ._kernels_joint import _finish_block, _normalise_block, _project_block

    f32, n, m = np.float32, 12, 4
    mu2, jw, acc, px = (
        np.zeros((n, m), f32),
        np.zeros((4, n), f32),
        np.zeros((6, m), f32),
        np.zeros((4, m), f32),
    )
    vec = [np.zeros(m, f32) for _ in range(4)]
    _project_block(mu2, 0, m, jw, np.zeros(n, f32), 2, 10, acc, np.zeros((8, m), f32))
    _finish_block(
        acc,
        np.eye(4, dtype=f32),
        0.1,
        0,
        m,
        px,
        np.zeros((2, m), f32),
        *vec[:3],
        np.zeros(m, np.bool_),
    )
    _normalise_block(mu2, 0, m, acc[5], px, vec[3], np.zeros((n, m), f32))
    valid, out = np.ones((2, 4), np.bool_), np.empty((2, 4), f32)
    lab, box = np.ones((2, 4), np.int32), np.array([[1, 0, 2, 0, 4]], np.int64)
    particle_edt_2d(lab, valid, box, 0, 1, 1.0, out, np.zeros(2))  # diffusion maps


#: Kernel groups that compile independently (``_jit_ahead`` runs them in parallel
#: processes); :func:`_warm_up_joint_pass` then loads its parts from the cache.
WARM_UP_GROUPS = (_warm_up_frames_and_window, _warm_up_joint_parts_and_edt)


def _warm_up_joint_pass() -> None:
    """The fused joint-fit pass (:mod:`._kernels_joint`) with the types of a real call."""
    from ._kernels_joint import joint_pass, joint_scratch

    f32 = np.float32
    n, p = 12, 4
    mu2 = np.zeros((n, p), f32)
    pre_edge, maps = np.zeros((2, p), f32), [np.zeros(p, f32) for _ in range(5)]
    outputs = (pre_edge, maps[0], maps[1], maps[2], np.zeros(p, np.bool_), maps[3], maps[4])
    fit, grid = (np.ones(n, f32), 1.0 / n), (8330.0, 0.5, 0.0, 0.01, np.zeros(n, f32))
    jw, jg = np.zeros((4, n), f32), np.eye(4, dtype=f32)
    scratch = joint_scratch(0, p, (2, 10))
    joint_pass(mu2, 0, p, jw, jg, fit, (2, 10), grid, True, np.zeros((0, 0), f32), outputs, scratch)


_JOINT_LOADED = threading.Event()  # set once the joint pass is loaded in this process


def _load_joint_pass_logged() -> None:
    try:
        load_joint_pass()
        from ._parallel import prepare_pool

        prepare_pool(blas_controller=False)  # the joint pass does no matrix products
    except RuntimeError as exc:  # the interpreter exits (a short script): no pool needed
        log.debug("analysis thread pool not prepared: %s", exc)
    except Exception:  # pragma: no cover - the call itself reports the problem
        log.exception("loading the joint pass in the background failed")


def load_joint_pass(*, background: bool = False) -> threading.Thread | None:
    """Load the fused joint pass (from the disk cache, or compile it) once per process.

    :func:`~.pipeline.analyse_xanes_stack` calls this on its own thread after
    starting the mapping of its outputs' pages (kernel work in background threads,
    which do not hold the GIL): in a new process numba's runtime set-up and the
    load of the pass (about 0.06 s of CPU, most of it Python) then run with the GIL
    to themselves, instead of trading it every few ms with the call's own Python
    (a thread doing both measured 2-4 times slower). Once loaded this returns at
    once. A second thread calling it while one loads waits for numba's compiler
    lock, never for a second load.

    Parameters
    ----------
    background : bool, default False
        True: load in a daemon thread (once per process; also starts the thread
        pool) and return that thread at once.

    Returns
    -------
    threading.Thread or None
        The loading thread with ``background=True``; None otherwise.

    Examples
    --------
    >>> load_joint_pass()
    >>> load_joint_pass(background=True).join()
    """
    if background:
        return _start_once("ssb-joint-pass-load", _load_joint_pass_logged)
    if not _JOINT_LOADED.is_set():
        _warm_up_joint_pass()
        _JOINT_LOADED.set()
    return None


def _warm_up_logged() -> None:
    try:
        _warm_up_now()
    except Exception:  # pragma: no cover - the first real call reports the problem
        log.exception("background warm-up of the analysis kernels failed")


def warm_up(*, background: bool = False) -> threading.Thread | None:
    """Load (or compile) every kernel for the array types the live analysis uses.

    A new process pays numba's runtime set-up and a few ms per kernel loaded
    from the disk cache (about 0.1 s of CPU for all of them with
    :mod:`._jit_cache`'s short load), or about 0.5 s per kernel compiled into
    it.  With ``background=True`` this runs once per process in a daemon thread
    and returns at once (the thread):
    start it as soon as a process knows it will analyse (a live callback is
    built at the run's start, a replay before it fetches the documents), so the
    work overlaps the I/O that comes first.  A kernel called while the thread
    still runs waits for numba's compiler lock, never for a second compilation.
    Without ``background`` it waits for a running warm-up and returns None.

    Parameters
    ----------
    background : bool, default False
        True: start the warm-up in a daemon thread (once per process) and return
        at once; False: wait until every kernel is loaded.

    Returns
    -------
    threading.Thread or None
        The warm-up thread with ``background=True``; None otherwise.

    Examples
    --------
    >>> thread = warm_up(background=True)
    >>> warm_up()  # waits for the thread, then loads what is left (nothing)
    >>> thread.is_alive()
    False
    """
    if background:
        return _start_once("ssb-kernel-warm-up", _warm_up_logged)
    with _WARM_LOCK:
        thread = _STARTED.get("ssb-kernel-warm-up")
    if thread is not None:
        thread.join()
    _warm_up_now()
    return None
