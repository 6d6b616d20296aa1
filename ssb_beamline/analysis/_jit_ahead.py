"""Compile the analysis kernels ahead into the disk cache (the ``make install`` step).

``python -m ssb_beamline.analysis._jit_ahead`` compiles (or, when the cache is
already filled, only loads) every kernel the live path uses, for the array
types it uses (:func:`~._jit.warm_up`), into the cache directory the package
reads (:func:`~._jit_cache.kernel_cache_dir`, for the user who runs it:
``/root/.cache/...`` in CI, ``~/.cache/...`` for a user).  Every later process
then loads them (milliseconds per kernel) instead of compiling (seconds): a new
user's first ``make demo``, and each pytest-xdist worker of ``make test``.
The independent kernel groups (:data:`~._jit.WARM_UP_GROUPS`) compile in
parallel (numba compiles on one core): the first here, the others in child
processes; then the joint pass, which loads them from the cache.  Several of
these steps may start at once: they take turns on the cache's compile lock
(:func:`~._jit_cache.compile_lock`), so one compiles and the others load.  A
failure is reported and exits 0: the kernels then compile at
first use, as without this step.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

__all__ = ["main"]

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """Compile (or load) every kernel into the disk cache; log where and how long.

    Parameters
    ----------
    argv : list of str, optional
        Empty; ``["--group", "i"]`` in the child that compiles group ``i``.

    Returns
    -------
    int
        0, also when compiling fails (the kernels then compile at first use).

    Examples
    --------
    >>> main([])  # doctest: +SKIP
    0
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from ._jit import WARM_UP_GROUPS, _warm_up_kernels
    from ._jit_cache import compile_lock, kernel_cache_dir

    if argv and argv[0] == "--group":  # a child: one group
        WARM_UP_GROUPS[int(argv[1])]()
        return 0
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        with compile_lock():
            children = _start_group_children()  # groups 1.. in children, 0 here
            WARM_UP_GROUPS[0]()
            _wait(children)
            _warm_up_kernels()  # loads the groups, compiles the joint pass
    except Exception:  # an install step never fails on this: first use compiles
        log.exception("compiling the analysis kernels ahead failed; they compile at first use")
        return 0
    log.info(
        "analysis kernels ready in %s (%.1f s, %.1f s CPU here)",
        kernel_cache_dir(),
        time.perf_counter() - t0,
        time.process_time() - c0,
    )
    return 0


def _start_group_children() -> list[subprocess.Popen]:
    """A child process per kernel group but the first (none on one core)."""
    from ._jit import WARM_UP_GROUPS

    if (os.cpu_count() or 1) < 2:
        return []
    cmd = [sys.executable, "-m", f"{__package__}._jit_ahead", "--group"]  # also under -m
    return [subprocess.Popen([*cmd, str(i)]) for i in range(1, len(WARM_UP_GROUPS))]


def _wait(children: list[subprocess.Popen], timeout_s: float = 600.0) -> None:
    """Wait for the children; what a failed or stuck one missed compiles here."""
    for child in children:
        try:
            child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:  # what is missing compiles in this process
            child.kill()
            child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
