"""Starlette's ``Request.body()`` hands on a body that arrived in one piece without copying it.

:class:`~.server_body.WholeBody` gives tiled a request's body as one ASGI message.
Starlette 0.4x-1.x ``Request.body()`` (which tiled's handlers call, e.g.
``put_array_full``) collects the pieces of ``Request.stream()``, which yields the
body and then an empty ``b""``, and joins them: ``b"".join([body, b""])`` copies
the whole body once more into fresh pages. For the 43 MB normalised stack of a
41-energy 512^2 scan that was ~30 ms of the server's CPU on the path to "results
stored" (issue 14).

:func:`install` replaces ``Request.body`` by the same loop that leaves out empty
pieces and returns a lone piece as it is (``bytes`` joined from one ``bytes`` is
that object in CPython anyway). A body in several pieces is joined as before; the
result is cached in ``request._body`` as Starlette does, so ``stream()``,
``json()`` and ``form()`` behave as before. Behind
:class:`~.server_body.WholeBody` (and uvicorn) the body is always ``bytes``.

Risk: the replacement re-implements Starlette's eight-line method; a Starlette
upgrade must re-check ``Request.body`` and ``Request.stream``
(``tests/storage/test_lone_body.py`` checks the replacement is in place, that a
lone piece is not copied and that pieces are joined). Hand-written because
Starlette has no option for it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import aclosing
from typing import Any

from .function_patch import is_patched, patch_function

__all__ = ["install", "installed"]


def _uncopied(original: Callable[..., Any]) -> Callable[..., Any]:
    """``Request.body`` returning a body that came in one piece as that piece."""

    async def body(self: Any) -> Any:
        if not hasattr(self, "_body"):
            chunks = []
            async with aclosing(self.stream()) as stream:
                async for chunk in stream:
                    if chunk:
                        chunks.append(chunk)
            self._body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return self._body

    return body


def installed() -> bool:
    """Whether :func:`install` has replaced Starlette's ``Request.body``."""
    from starlette.requests import Request

    return is_patched(Request, "body")  # type: ignore[arg-type]


def install() -> bool:
    """Let ``Request.body()`` return a one-piece body uncopied (see module docstring).

    Returns
    -------
    bool
        True when in place (now or before).

    Examples
    --------
    >>> install(), installed()
    (True, True)
    """
    from starlette.requests import Request

    return patch_function(Request, "body", _uncopied)  # type: ignore[arg-type]
