"""The server hands tiled a request body as one message (server_body.WholeBody)."""

from __future__ import annotations

import asyncio
import json

from ssb_beamline.storage.server_body import WholeBody


def _run(method: str, messages: list[dict]) -> tuple[list[dict], bool]:
    """Messages ``app`` received (two receives), and whether it was called."""
    seen: list[dict] = []
    called = []
    incoming = iter(messages)

    async def receive() -> dict:
        return next(incoming)

    async def app(scope, receive, send):
        called.append(True)
        seen.append(await receive())
        seen.append(await receive())

    asyncio.run(WholeBody(app)({"type": "http", "method": method}, receive, None))
    return seen, bool(called)


def test_a_body_in_pieces_arrives_whole_then_the_disconnect():
    pieces = [{"type": "http.request", "body": bytes([i]) * 3, "more_body": True} for i in range(5)]
    pieces.append({"type": "http.request", "body": b"end", "more_body": False})
    seen, called = _run("PUT", [*pieces, {"type": "http.disconnect"}])
    assert called
    assert seen[0] == {
        "type": "http.request",
        "body": b"".join(p["body"] for p in pieces),
        "more_body": False,
    }
    assert seen[1] == {"type": "http.disconnect"}  # the server's own receive afterwards


def test_a_client_gone_mid_body_reaches_no_handler():
    seen, called = _run(
        "POST",
        [{"type": "http.request", "body": b"x", "more_body": True}, {"type": "http.disconnect"}],
    )
    assert not called and not seen


def test_requests_without_a_body_pass_untouched():
    message = {"type": "http.request", "body": b"", "more_body": False}
    seen, called = _run("GET", [message, {"type": "http.disconnect"}])
    assert called and seen == [message, {"type": "http.disconnect"}]


def _declared(length: int, pieces: list[bytes]) -> tuple[list[dict], bool]:
    """What ``WholeBody`` answered, and whether the app was called, for a PUT of ``length``."""
    sent: list[dict] = []
    called = []
    incoming = iter(
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    )

    async def receive() -> dict:
        return next(incoming)

    async def send(message: dict) -> None:
        sent.append(message)

    async def app(scope, receive, send):
        called.append(await receive())

    scope = {"type": "http", "method": "PUT", "headers": [(b"content-length", b"%d" % length)]}
    asyncio.run(WholeBody(app)(scope, receive, send))
    return sent, bool(called)


def test_a_body_of_its_declared_length_passes():
    sent, called = _declared(6, [b"abc", b"def"])
    assert called and not sent


def test_a_body_longer_or_shorter_than_declared_is_a_400_and_reaches_no_handler():
    for length, word in ((5, "longer"), (7, "shorter")):
        sent, called = _declared(length, [b"abc", b"def"])
        assert not called
        assert sent[0]["status"] == 400
        detail = json.loads(sent[1]["body"])["detail"]
        assert word in detail and "Content-Length" in detail
