"""Starlette's Request.body() hands on a one-piece body without copying it (lone_body)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from ssb_beamline.storage import lone_body, tiled_patches


def _body(pieces: list[bytes]) -> bytes:
    messages = iter(
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    )

    async def receive() -> dict:
        return next(messages)

    request = Request({"type": "http", "method": "PUT", "headers": []}, receive)

    async def read() -> tuple[bytes, bytes]:
        return await request.body(), await request.body()

    first, again = asyncio.run(read())
    assert first is again  # cached, as Starlette does
    return first


def test_the_server_patches_install_it():
    tiled_patches.install()
    assert lone_body.installed()


def test_a_body_in_one_piece_is_that_piece():
    lone_body.install()
    piece = bytes(range(256)) * 1000
    assert _body([piece]) is piece


def test_a_body_in_pieces_is_joined_and_an_empty_body_is_empty():
    lone_body.install()
    assert _body([b"ab", b"", b"cd"]) == b"abcd"
    assert _body([b""]) == b""
