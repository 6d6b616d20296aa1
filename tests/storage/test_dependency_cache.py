"""The tiled server's FastAPI dependency trees are built once, and still honour overrides."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.dependencies import utils
from fastapi.testclient import TestClient

from ssb_beamline.storage.dependency_cache import install, installed


def settings() -> str:
    return "original"


def principal(value: str = Depends(settings)) -> str:
    return f"principal of {value}"


def test_trees_are_shared_and_overrides_still_apply() -> None:
    assert install() and installed()
    assert install()  # idempotent: wrapped once
    original = utils.get_dependant.__wrapped__
    assert getattr(original, "__wrapped__", None) is None
    built = utils.get_dependant(path="/x", call=principal, name="p")
    assert utils.get_dependant(path="/x", call=principal, name="p") is built
    assert utils.get_dependant(path="/y", call=principal, name="p") is not built

    app = FastAPI()

    @app.get("/x")
    def endpoint(who: str = Depends(principal)) -> str:
        return who

    app.dependency_overrides[settings] = lambda: "overridden"  # as tiled does
    client = TestClient(app)
    assert client.get("/x").json() == "principal of overridden"
    # FastAPI rebuilds sub-trees per request when overrides exist; each build reads
    # the callables' signatures: after the first request, none are read again
    signatures: list[object] = []
    typed_signature = utils.get_typed_signature

    def counting(call):
        signatures.append(call)
        return typed_signature(call)

    utils.get_typed_signature = counting
    try:
        for _ in range(3):
            assert client.get("/x").json() == "principal of overridden"
    finally:
        utils.get_typed_signature = typed_signature
    assert signatures == []
    app.dependency_overrides[settings] = lambda: "changed"  # a new override callable
    assert client.get("/x").json() == "principal of changed"
