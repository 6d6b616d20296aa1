"""Catalog writes reach a SQLite-backed server one at a time, in arrival order."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ssb_beamline.storage.write_funnel import WriteFunnel, is_catalog_write


def _scope(method: str, path: str) -> dict:
    return {"type": "http", "method": method, "path": path, "headers": []}


class _Recorder:
    """An ASGI app that notes which requests run at once; writes wait for a gate."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.overlaps: list[set[str]] = []
        self.started: list[str] = []
        self.gate = asyncio.Event()

    async def __call__(self, scope, receive, send) -> None:
        name = f"{scope['method']} {scope['path']}"
        self.started.append(name)
        self.running.add(name)
        self.overlaps.append(set(self.running))
        if scope["method"] != "GET":
            await self.gate.wait()
        await asyncio.sleep(0)
        self.running.discard(name)


def test_writes_one_at_a_time_in_order_reads_and_array_bytes_pass() -> None:
    async def main() -> _Recorder:
        app = _Recorder()
        funnel = WriteFunnel(app)
        writes = [_scope("POST", f"/api/v1/metadata/results/u/v1/a{i}") for i in range(5)]
        tasks = [asyncio.create_task(funnel(s, None, None)) for s in writes]
        data = asyncio.create_task(funnel(_scope("PUT", "/api/v1/array/full/r/x"), None, None))
        await asyncio.sleep(0.01)
        assert funnel.waiting == 4  # one write runs, four queue; the data PUT does not
        await funnel(_scope("GET", "/api/v1/metadata/results"), None, None)
        app.gate.set()
        await asyncio.gather(*tasks, data)
        return app

    app = asyncio.run(main())
    posts = [name for name in app.started if name.startswith("POST")]
    assert posts == [f"POST /api/v1/metadata/results/u/v1/a{i}" for i in range(5)]  # FIFO
    for running in app.overlaps:
        assert sum(name.startswith("POST") for name in running) <= 1
    assert any(len(running) >= 3 for running in app.overlaps)  # GET + PUT bytes overlapped


def test_a_write_that_never_ends_does_not_stop_the_others(caplog) -> None:
    async def main() -> list[str]:
        done: list[str] = []

        async def app(scope, receive, send) -> None:
            if scope["path"].endswith("hung"):
                await asyncio.Event().wait()
            done.append(scope["path"])

        funnel = WriteFunnel(app, max_wait_s=0.2)
        hung = asyncio.create_task(funnel(_scope("PUT", "/api/v1/metadata/hung"), None, None))
        await asyncio.sleep(0)
        await funnel(_scope("PATCH", "/api/v1/metadata/next"), None, None)
        hung.cancel()
        return done

    with caplog.at_level(logging.WARNING, logger="ssb_beamline.storage.write_funnel"):
        assert asyncio.run(main()) == ["/api/v1/metadata/next"]
    assert "going ahead unqueued" in caplog.text


@pytest.mark.parametrize(
    ("method", "path", "funneled"),
    [
        ("PUT", "/api/v1/data_source/raw/u/primary/det", True),
        ("DELETE", "/api/v1/metadata/results/u/v2", True),
        ("PATCH", "/api/v1/table/partition/raw/u/primary/internal", True),
        ("PUT", "/api/v1/array/block/results/u/v1/normalized", False),
        ("HEAD", "/api/v1/metadata/results", False),
    ],
)
def test_which_requests_are_catalog_writes(method: str, path: str, funneled: bool) -> None:
    assert is_catalog_write(method, path) is funneled


def test_results_writes_start_with_the_longest_chains() -> None:
    """The 43 MB stack first, then items still to be created, then prepared data."""
    from ssb_beamline.storage.result_upload import _cost

    stack, new_map, prepared_map = _cost(43_000_000, 1), _cost(1 << 20, 2), _cost(1 << 20, 1)
    assert stack > new_map > prepared_map
    assert _cost(0, 2) > prepared_map  # a table: created, then written
