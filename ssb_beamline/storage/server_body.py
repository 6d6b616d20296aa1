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
whole body (``await request.body()``) before using it, and joining one message
there costs no copy. After the body, ``receive`` is the server's own again (it
reports the client's disconnect). A client that disconnects before its body is
complete gets no answer, as from tiled.

Hand-written because neither tiled nor Starlette has an option for it (the
wrappers are tiled's own).
"""

from __future__ import annotations

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
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left mid-body
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        whole: list[dict] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
        del chunks

        async def replay() -> dict:
            if whole:
                return whole.pop()
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)
