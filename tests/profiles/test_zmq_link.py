"""The first document published over 0MQ reaches the worker (a PUB socket drops
whatever it sends before the proxy's subscription arrived; measured 20 of 20)."""

from __future__ import annotations

import pickle

import pytest
import zmq
from bluesky import RunEngine
from served import zmq_proxy

from ssb_beamline.profiles.zmq_link import attach_publisher, check_zmq_address


@pytest.fixture(scope="module")
def proxy_and_listener():
    context = zmq.Context()
    listener = context.socket(zmq.SUB)
    with zmq_proxy() as (pin, pout):
        try:
            check_zmq_address(f"127.0.0.1:{pout}", timeout_s=30.0)
            listener.setsockopt(zmq.SUBSCRIBE, b"")
            listener.connect(f"tcp://127.0.0.1:{pout}")
            yield f"127.0.0.1:{pin}", listener
        finally:
            listener.close(linger=0)
            context.term()


def _wait_for_listener(address: str, listener) -> None:
    """Publish probes until the listener's own subscription reached the proxy."""
    publisher = attach_publisher(RunEngine({}, call_returns_result=True), address)
    try:
        for _ in range(600):
            publisher("probe", {})
            if listener.poll(50):
                break
        while listener.poll(200):  # drain the probes
            listener.recv()
    finally:
        publisher.close()


def test_the_first_document_after_attaching_reaches_the_proxys_listeners(proxy_and_listener):
    address, listener = proxy_and_listener
    _wait_for_listener(address, listener)
    received = []
    for attempt in range(5):  # each a fresh publisher, publishing at once
        publisher = attach_publisher(RunEngine({}, call_returns_result=True), address)
        try:
            publisher("start", {"uid": f"run-{attempt}"})
            if listener.poll(10_000):
                name, body = listener.recv().split(b" ", 2)[1:]
                received.append((name, pickle.loads(body)["uid"]))
        finally:
            publisher.close()
    assert received == [(b"start", f"run-{i}") for i in range(5)]
