"""`ConcurrentReads`: the plain readables of an event are read at once, same documents.

Two devices whose reads each wait for the other's read to have started can only both
be read concurrently: serial reads would time out (bounded, nothing hangs). The
documents are compared with the stock ``bps.trigger_and_read`` of the same devices.
"""

from __future__ import annotations

import asyncio

import bluesky.plan_stubs as bps
import pytest
from bluesky import RunEngine
from ophyd.sim import det

from ssb_beamline.plans.concurrent_read import ConcurrentReads


class _Meeting:
    """A readable whose read waits (bounded) until its partner's read has started."""

    parent = None

    def __init__(self, name: str, value: float) -> None:
        self.name, self.value, self.hints = name, value, {"fields": [name]}
        self.partner: _Meeting | None = None
        self.started: asyncio.Event | None = None
        self.reads = 0

    async def read(self) -> dict:
        self.reads += 1
        self.started.set()
        if self.partner is not None:  # None: the stock, serial reference run
            await asyncio.wait_for(self.partner.started.wait(), 5.0)
        return {self.name: {"value": self.value + self.reads, "timestamp": 1.0}}

    async def describe(self) -> dict:
        return {self.name: {"source": f"SIM:{self.name}", "dtype": "number", "shape": []}}

    def read_configuration(self) -> dict:
        return {f"{self.name}_gain": {"value": 2.0, "timestamp": 1.0}}

    def describe_configuration(self) -> dict:
        return {f"{self.name}_gain": {"source": "SIM:gain", "dtype": "number", "shape": []}}


def _run(concurrent: bool) -> tuple[list, list]:
    i0, energy = _Meeting("i0", 10.0), _Meeting("energy", 8333.0)
    RE, docs = RunEngine({}, call_returns_result=True), []
    i0.started, energy.started = asyncio.Event(), asyncio.Event()  # bound on first use
    if concurrent:
        i0.partner, energy.partner = energy, i0
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    reads = ConcurrentReads()

    def plan():
        yield from bps.open_run()
        for _ in range(2):
            if concurrent:
                yield from reads.trigger_and_read([det, i0, energy], "primary")
            else:
                yield from bps.trigger_and_read([det, i0, energy], name="primary")
            i0.started.clear()
            energy.started.clear()
        yield from bps.close_run()

    RE(plan())
    descriptors = [d for n, d in docs if n == "descriptor"]
    events = [d for n, d in docs if n == "event"]
    return descriptors, events


@pytest.fixture(scope="module")
def runs() -> dict[bool, tuple[list, list]]:
    return {concurrent: _run(concurrent) for concurrent in (True, False)}


def test_plain_readables_are_read_concurrently_with_the_stock_documents(runs):
    (desc, events), (stock_desc, stock_events) = runs[True], runs[False]
    assert len(desc) == len(stock_desc) == 1  # one descriptor for both events
    for key in ("data_keys", "object_keys", "configuration", "hints", "name"):
        assert desc[0][key] == stock_desc[0][key], key
    assert [e["data"] for e in events] == [e["data"] for e in stock_events]
    assert [e["data"]["energy"] for e in events] == [8334.0, 8335.0]  # read afresh each event


def test_a_failing_read_fails_the_event_and_drops_the_batch():
    class Broken(_Meeting):
        async def read(self) -> dict:
            raise OSError("CA get timed out: SIM:broken")

    good, broken = _Meeting("good", 1.0), Broken("broken", 0.0)
    reads, RE = ConcurrentReads(), RunEngine({})
    good.started = asyncio.Event()

    def plan():
        yield from bps.open_run()
        yield from reads.trigger_and_read([good, broken], "primary")

    with pytest.raises(OSError, match="SIM:broken"):
        RE(plan())
    assert reads._batch is None and reads._batch_devices == []


def test_wrapped_and_plain_reads_of_the_same_devices_share_one_stream():
    i0, energy = _Meeting("i0", 10.0), _Meeting("energy", 8333.0)
    i0.started, energy.started = asyncio.Event(), asyncio.Event()
    reads, RE, names = ConcurrentReads(), RunEngine({}), []
    RE.subscribe(lambda name, doc: names.append(name))

    def plan():
        yield from bps.open_run()
        yield from reads.trigger_and_read([det, i0, energy], "primary")
        yield from bps.trigger_and_read([det, i0, energy], name="primary")
        yield from bps.close_run()

    RE(plan())
    assert names.count("descriptor") == 1 and names.count("event") == 2
