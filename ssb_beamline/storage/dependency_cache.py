"""Build each FastAPI dependency tree of the tiled server once, not on every request.

tiled 0.2.20 overrides two of its dependencies (``get_settings``,
``get_root_tree``) in ``app.dependency_overrides``. With any override present,
FastAPI (0.165) rebuilds, in ``solve_dependencies``, the dependency tree of every
sub-dependency of every request from the callables' signatures (``get_dependant``:
``inspect.signature``, type hints, pydantic fields), recursively at every level.
tiled's trees are deep (entry, access policy, principal, settings, session...):
profiled on the embedded server, that rebuilding was the largest single share of
the ~25-50 ms of server CPU that even a tiny request (a metadata update, an empty
container) costs, on either catalog.

The tree depends only on the arguments given to ``get_dependant`` (the callable,
its path, name, scopes, cache and concurrency flags), and FastAPI never changes a
``Dependant`` after building it, so the same arguments can share one: this module
wraps ``fastapi.dependencies.utils.get_dependant`` with a bounded memo keyed by
the identity of the callable and the other arguments. Route construction
(``fastapi.routing`` imported its own reference) is left as it was. Hand-written
because FastAPI has no switch for it; :func:`install` is idempotent and a no-op on
a FastAPI without that function.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

__all__ = ["MAX_ENTRIES", "install", "installed"]

logger = logging.getLogger(__name__)

#: Dependency trees kept at most; a full memo starts again from empty (tiled has
#: a few hundred distinct ones).
MAX_ENTRIES = 4096

_lock = threading.Lock()
_state: dict[str, Any] = {"original": None}


def _key(kwargs: dict[str, Any]) -> tuple:
    """Hashable key: the callable by identity (some are unhashable instances)."""
    items = []
    for name in sorted(kwargs):
        value = kwargs[name]
        if name == "call":
            value = ("id", id(value))
        elif isinstance(value, list):
            value = tuple(value)
        items.append((name, value))
    return tuple(items)


def installed() -> bool:
    """Whether :func:`install` has wrapped FastAPI's ``get_dependant``."""
    return _state["original"] is not None


def install() -> bool:
    """Memoise FastAPI's per-request ``get_dependant`` (see the module docstring).

    Returns
    -------
    bool
        True when installed (now or before), False when this FastAPI has no
        ``get_dependant`` to wrap (then nothing changed).

    Examples
    --------
    >>> install()
    True
    >>> installed()
    True
    """
    try:
        from fastapi.dependencies import utils
    except ImportError:  # pragma: no cover - fastapi is a tiled server dependency
        return False
    with _lock:
        if _state["original"] is not None:
            return True
        original = getattr(utils, "get_dependant", None)
        if original is None:
            logger.warning("fastapi has no get_dependant: dependency trees not cached")
            return False
        memo: dict[tuple, tuple[Any, Any]] = {}

        def get_dependant(**kwargs: Any) -> Any:
            try:
                key = _key(kwargs)
                hit = memo.get(key)
            except TypeError:  # an unhashable argument: build it as FastAPI does
                return original(**kwargs)
            if hit is not None and hit[0] is kwargs.get("call"):
                return hit[1]
            dependant = original(**kwargs)
            if len(memo) >= MAX_ENTRIES:
                memo.clear()
            memo[key] = (kwargs.get("call"), dependant)  # holds the callable: id stays valid
            return dependant

        get_dependant.__wrapped__ = original  # type: ignore[attr-defined]
        utils.get_dependant = get_dependant
        _state["original"] = original
        _state["memo"] = memo
    return True
