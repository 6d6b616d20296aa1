"""Fixtures for the simulated TXM tests."""

from __future__ import annotations

from urllib.parse import urlparse

import bluesky.plans as bp
import h5py
import pytest
from bluesky.run_engine import RunEngine, call_in_bluesky_event_loop
from ophyd_async.plan_stubs import ensure_connected

from ssb_beamline.sim_devices import PhantomConfig, SimTXM, make_sim_txm

SMALL = PhantomConfig(shape=(128, 128), n_particles=6, radius_range_um=(1.0, 3.0), seed=3)


@pytest.fixture
def RE():  # noqa: N802 (bluesky convention)
    """A RunEngine (its event loop also runs direct device coroutines)."""
    re = RunEngine(call_returns_result=True)
    yield re
    if re.state != "idle":
        re.halt()


@pytest.fixture
def run(RE):
    """Run a coroutine in the RunEngine's event loop and return its result."""

    def _run(coro_or_fn, *args, timeout: float = 30.0):
        """``run(coro)``, or ``run(fn, *args)`` to call ``fn`` inside the loop.

        The second form is needed for ``AsyncStatus``-returning methods such as
        ``device.set``/``stage``, which must be created in a running loop.
        """
        if callable(coro_or_fn):

            async def _call():
                return await coro_or_fn(*args)

            return call_in_bluesky_event_loop(_call(), timeout=timeout)
        return call_in_bluesky_event_loop(coro_or_fn, timeout=timeout)

    return _run


@pytest.fixture
def small_txm(RE, tmp_path) -> SimTXM:
    """A connected 128x128 TXM writing into ``tmp_path``."""
    txm = make_sim_txm(SMALL, directory=tmp_path)
    RE(ensure_connected(*txm.devices))
    return txm


@pytest.fixture
def small_config() -> PhantomConfig:
    """A 128x128 phantom with 6 particles."""
    return SMALL


@pytest.fixture
def acquire(RE):
    """``acquire(detector, n=1, extra=())`` -> (frames, documents) of a count."""
    return lambda detector, n=1, extra=(): _acquire(RE, detector, n, extra)


def _acquire(RE, detector, n: int = 1, extra=()):
    docs: list[tuple[str, dict]] = []
    token = RE.subscribe(lambda name, doc: docs.append((name, doc)))
    try:
        RE(bp.count([detector, *extra], n))
    finally:
        RE.unsubscribe(token)
    (resource,) = [d for name, d in docs if name == "stream_resource"]
    path = urlparse(resource["uri"]).path
    with h5py.File(path, "r") as f:
        frames = f[resource["parameters"]["dataset"]][()]
    return frames, docs
