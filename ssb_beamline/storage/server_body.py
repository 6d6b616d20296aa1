"""A request's body handed to tiled as one ASGI message instead of hundreds.

uvicorn delivers a request body in pieces of at most a few hundred kB: a 43 MB
array PUT (the normalised stack of a 41-energy 512^2 scan) arrives in about 170
``http.request`` messages. tiled 0.2.20 wraps its application in six
``@app.middleware("http")`` functions (Starlette's ``BaseHTTPMiddleware``), and
each of them passes every message through ``receive_or_disconnect``, which starts
an anyio task group per message. Profiled on the project's server, that bookkeeping
took more event-loop time than the rest of the PUT together (the zarr write
included), and the event loop is the one thread every other request waits for.

:class:`WholeBody` reads the body of a request that has one (PUT, POST, PATCH)
before tiled sees it and hands it on as a single message, so those wrappers run
once. It holds no more memory than tiled already does: tiled's handlers read the
whole body (``await request.body()``) before using it, and with
:mod:`.lone_body` installed Starlette hands that one message on without copying
it again, so a body is copied once on its way to the deserialiser (the join here).
After the body, ``receive`` is the server's own again (it reports the client's
disconnect). A client that disconnects before its body is complete gets no answer,
as from tiled.

A body longer or shorter than its ``Content-Length`` header is answered 400
(``{"detail": ...}`` as tiled's errors) and reaches no handler, so nothing is
written; reading stops at the first byte beyond the declared length, so a client
cannot make the server hold more than it announced. uvicorn frames bodies by
``Content-Length`` itself, so over HTTP the check is a second line of defence
(other ASGI servers, a uvicorn change). A chunked body (no ``Content-Length``)
is joined unchecked, as before.

Measured and left out (issue 14): reading the body into one buffer preallocated
from ``Content-Length`` instead of joining the pieces costs the same server CPU
per 43 MB PUT (one copy either way, into fresh pages; ``bytearray(n)`` adds a
``memset``) and would hand tiled a mutable ``bytearray``.

Hand-written because neither tiled nor Starlette has an option for it (the
wrappers are tiled's own).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["WholeBody"]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class WholeBody:
    """ASGI middleware: a request's body reaches ``app`` as one ``http.request`` message.

    Parameters
    ----------
    app : ASGI application
        The tiled server application.

    Examples
    --------
    >>> import asyncio
    >>> seen = []
    >>> async def app(scope, receive, send):
    ...     seen.append(await receive())
    >>> parts = iter([{"type": "http.request", "body": b"ab", "more_body": True},
    ...               {"type": "http.request", "body": b"c", "more_body": False}])
    >>> async def receive():
    ...     return next(parts)
    >>> asyncio.run(WholeBody(app)({"type": "http", "method": "PUT"}, receive, None))
    >>> seen
    [{'type': 'http.request', 'body': b'abc', 'more_body': False}]
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        try:
            body = await _read_body(receive, declared)
        except _LengthMismatchError as exc:
            await _refuse(send, str(exc))
            return
        if body is None:  # the client left mid-body
            return
        whole: list[dict] = [{"type": "http.request", "body": body, "more_body": False}]
        del body

        async def replay() -> dict:
            if whole:
                return whole.pop()
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)


class _LengthMismatchError(Exception):
    """A body longer or shorter than its ``Content-Length``."""


def _header(scope: dict, name: bytes) -> bytes | None:
    """The value of header ``name`` (lower case) in ``scope``, or None."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value
    return None


def _declared_length(scope: dict) -> int | None:
    """The request's ``Content-Length``, or None (absent, chunked or not a number)."""
    value = _header(scope, b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def _read_body(receive: Any, declared: int | None) -> bytes | None:
    """The whole body (None: the client left), checked against ``declared``."""
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        received += len(chunks[-1])
        if declared is not None and received > declared:
            raise _LengthMismatchError(
                f"request body longer than its Content-Length ({declared} bytes); "
                "send exactly Content-Length bytes"
            )
        if not message.get("more_body", False):
            break
    if declared is not None and received != declared:
        raise _LengthMismatchError(
            f"request body of {received} bytes, shorter than its Content-Length "
            f"({declared}); send exactly Content-Length bytes"
        )
    return b"".join(chunks)


async def _refuse(send: Any, detail: str) -> None:
    """Answer 400 with tiled's error body (``{"detail": ...}``)."""
    content = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(content))]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": content})
