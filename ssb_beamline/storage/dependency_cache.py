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

from typing import Any

from .function_patch import is_patched, patch_function

__all__ = ["MAX_ENTRIES", "install", "installed"]

#: Dependency trees kept at most; a full memo starts again from empty (tiled has
#: a few hundred distinct ones).
MAX_ENTRIES = 4096


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
    from fastapi.dependencies import utils

    return is_patched(utils, "get_dependant")


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
    return patch_function(utils, "get_dependant", _memoised)


def _memoised(original):
    """``get_dependant`` memoised (module docstring)."""
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

    return get_dependant
