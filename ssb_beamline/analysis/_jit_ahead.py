"""Compile the analysis kernels ahead into the disk cache (the ``make install`` step).

``python -m ssb_beamline.analysis._jit_ahead`` compiles (or, when the cache is
already filled, only loads) every kernel the live path uses, for the array
types it uses (:func:`~._jit.warm_up`), into the cache directory the package
reads (:func:`~._jit_cache.kernel_cache_dir`, for the user who runs it:
``/root/.cache/...`` in CI, ``~/.cache/...`` for a user).  Every later process
then loads them (milliseconds per kernel) instead of compiling (seconds): a new
user's first ``make demo``, and each pytest-xdist worker of ``make test``.
Several of these processes may start at once: they take turns on the cache's
compile lock (:func:`~._jit_cache.compile_lock`), so one compiles and the
others load.  A failure is reported and exits 0: the kernels then compile at
first use, as without this step.
"""

from __future__ import annotations

import logging
import sys
import time

__all__ = ["main"]

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """Compile (or load) every kernel into the disk cache; log where and how long.

    Parameters
    ----------
    argv : list of str, optional
        Unused (no options); accepted for a ``console_scripts``-style call.

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
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        from ._jit import warm_up
        from ._jit_cache import kernel_cache_dir

        warm_up()
    except Exception:  # an install step never fails on this: first use compiles
        log.exception("compiling the analysis kernels ahead failed; they compile at first use")
        return 0
    log.info(
        "analysis kernels ready in %s (%.1f s, %.1f s CPU)",
        kernel_cache_dir(),
        time.perf_counter() - t0,
        time.process_time() - c0,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
