"""Replace a library function, once per process, by a wrapper around it.

The tiled server needs two of its libraries' module-level functions changed (see
:mod:`.dependency_cache` and :mod:`.idempotent_delete`); both are looked up by name
at call time, so replacing the module attribute changes every caller. This module
holds the one way to do it: thread-safe, idempotent, the original kept as the
wrapper's ``__wrapped__``, and a missing function (another library version) logged
and left alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["is_patched", "patch_function"]

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_MARK = "__ssb_beamline_patch__"


def is_patched(module: ModuleType, name: str) -> bool:
    """Whether :func:`patch_function` has replaced ``module.name``.

    Parameters
    ----------
    module : module
        The module holding the function.
    name : str
        The function's name in it.
    """
    return getattr(getattr(module, name, None), _MARK, False)


def patch_function(
    module: ModuleType, name: str, make_wrapper: Callable[[Callable], Callable[..., Any]]
) -> bool:
    """Replace ``module.name`` by ``make_wrapper(original)``, unless done before.

    Parameters
    ----------
    module : module
        The module holding the function.
    name : str
        The function's name in it.
    make_wrapper : callable
        Given the original function, returns its replacement.

    Returns
    -------
    bool
        True when the wrapper is in place (now or before), False when ``module`` has
        no such function (nothing changed; logged).

    Examples
    --------
    >>> import types
    >>> lib = types.SimpleNamespace(double=lambda x: 2 * x)
    >>> patch_function(lib, "double", lambda f: lambda x: f(x) + 1)
    True
    >>> lib.double(3), patch_function(lib, "double", lambda f: f), lib.double(3)
    (7, True, 7)
    """
    with _lock:
        if is_patched(module, name):
            return True
        original = getattr(module, name, None)
        if original is None:
            logger.warning("%s has no %s; left as it is", getattr(module, "__name__", module), name)
            return False
        wrapper = make_wrapper(original)
        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(wrapper, _MARK, True)
        setattr(module, name, wrapper)
    return True
