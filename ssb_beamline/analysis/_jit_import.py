"""Start loading the kernels when the analysis package is imported in an interactive session.

A new process pays, at its first analysis call, for loading the compiled kernels
(about 0.5 s on the beamline node with :mod:`._jit_cache`'s short load).  A live
callback or a replay starts :func:`~._jit.warm_up` in the background when it is
built; a scientist in a notebook or a REPL has no such moment, so the import
starts it there: the session then reads its data (seconds) while a background
thread loads the kernels, and the first ``analyse_xanes_stack`` finds them ready.

Scripts, the CLI, servers and test workers are not interactive and start
nothing at import (no thread, no CPU spent for a process that may never
analyse); they call ``warm_up_kernels(background=True)`` where they know they
will analyse.  ``$SSB_BEAMLINE_WARM_UP`` overrides the choice: ``import``
(always at import), ``off`` (never at import).

A process that forks while the thread runs would hand its child numba's locks in
whatever state they were: a fork waits for the thread first
(``os.register_at_fork``), and interpreter exit waits for it a few seconds.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys

__all__ = ["WARM_UP_ENV", "wants_warm_up_at_import", "warm_up_at_import"]

log = logging.getLogger(__name__)

#: Environment variable: ``import`` (warm up at import), ``off`` (never at import).
WARM_UP_ENV = "SSB_BEAMLINE_WARM_UP"

_EXIT_WAIT_S = 5.0


def _interactive() -> bool:
    """A REPL (``python``, ``python -i``) or an IPython / Jupyter session."""
    if hasattr(sys, "ps1") or sys.flags.interactive:
        return True
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    try:
        return get is not None and get() is not None
    except Exception:  # pragma: no cover - a broken IPython install
        return False


def wants_warm_up_at_import() -> bool:
    """Whether importing the analysis package starts the background warm-up.

    Examples
    --------
    >>> import os
    >>> os.environ[WARM_UP_ENV] = "off"
    >>> wants_warm_up_at_import()
    False
    >>> del os.environ[WARM_UP_ENV]
    """
    choice = os.environ.get(WARM_UP_ENV, "").strip().lower()
    if choice in ("import", "1", "on"):
        return True
    if choice in ("off", "0", "no"):
        return False
    return _interactive()


def warm_up_at_import() -> bool:
    """Start :func:`~._jit.warm_up` in the background if :func:`wants_warm_up_at_import`.

    Returns whether it started (once per process; later calls find it running).
    """
    if not wants_warm_up_at_import():
        return False
    from ._jit import warm_up

    thread = warm_up(background=True)
    if thread is None:  # pragma: no cover - background=True returns the thread
        return False
    os.register_at_fork(before=thread.join)  # never fork with numba's locks held
    atexit.register(thread.join, _EXIT_WAIT_S)
    log.debug("analysis kernels loading in the background (interactive session)")
    return True
