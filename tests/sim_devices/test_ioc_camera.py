"""The simulated IOC's camera + HDF5 plugin, driven by the stock ophyd-async adcore classes.

One IOC subprocess (64 x 64 phantom) for the module; its files go to the session
tiled server's readable detector folder, so the frames are read back through tiled.
"""

from __future__ import annotations

import uuid

import bluesky.plans as bp
import h5py
import numpy as np
import pytest
from aioca import caput
from bluesky.callbacks.tiled_writer import TiledWriter
from bluesky.run_engine import RunEngine, call_in_bluesky_event_loop
from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider
from ophyd_async.epics.adcore import ADWriterFactory
from ophyd_async.epics.adsimdetector import SimDetector
from ophyd_async.epics.core import epics_signal_r

from ssb_beamline.sim_devices.image_model import DetectorNoiseConfig, TXMImageModel
from ssb_beamline.sim_devices.ioc import running_sim_ioc
from ssb_beamline.sim_devices.ioc.frames import I0_COUNTS_PER_S, txm_phantom_config
from ssb_beamline.sim_devices.phantom import make_phantom
from ssb_beamline.sim_devices.state import BeamlineState
from ssb_beamline.storage import open_store

pytestmark = pytest.mark.timeout(240)
SIZE = 64
DARK = DetectorNoiseConfig().dark_offset


@pytest.fixture(scope="module")
def ioc(tiled_server):
    folder = tiled_server.layout.detector / f"ioc-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    with running_sim_ioc(data_dir=folder, args=["--size", str(SIZE)]) as handle:
        yield handle


@pytest.fixture(scope="module")
def RE():  # noqa: N802 (bluesky convention)
    return RunEngine({}, call_returns_result=False)


@pytest.fixture(scope="module")
def run(RE):
    return lambda coro: call_in_bluesky_event_loop(coro, timeout=60)


@pytest.fixture(scope="module")
def camera(ioc, run):
    """Stock ophyd-async SimDetector + HDF writer on the IOC's cam1:/HDF1:."""
    provider = StaticPathProvider(UUIDFilenameProvider(), ioc.data_dir)
    det = SimDetector(ioc.prefix, ADWriterFactory.hdf(provider), name="cam")
    i0 = epics_signal_r(float, ioc.pv("I0:Counts"), name="i0")

    async def connect():
        await det.connect(timeout=10)
        await i0.connect(timeout=10)
        await det.driver.acquire_time.set(0.02)

    run(connect())
    return det, i0


def _exposure(run, camera, seconds: float) -> None:
    async def go():
        await camera[0].driver.acquire_time.set(seconds)

    run(go())


def _put(run, ioc, suffix: str, value) -> None:
    run(caput(ioc.pv(suffix), value, wait=True, timeout=30))


def _frames(run, ioc, RE, camera, num: int = 1) -> tuple[np.ndarray, list[float]]:
    """Take ``num`` frames with ``bp.count``; return them (from the file) and I0 of each."""
    i0: list[float] = []
    resources: list[dict] = []

    def note(name: str, doc: dict) -> None:
        if name == "event":
            i0.append(doc["data"]["i0"])
        if name == "stream_resource":
            resources.append(doc)

    RE(bp.count(list(camera), num=num), note)
    path = resources[0]["uri"].removeprefix("file://localhost")
    with h5py.File(path, "r") as f:
        return f["/entry/data/data"][:], i0


def test_count_writes_frames_that_tiled_reads_back(ioc, run, RE, camera, tiled_server, tmp_path):
    store = open_store(tiled_server.url, api_key=tiled_server.api_key, data_dir=tmp_path)
    writer = TiledWriter(store.raw)
    (uid,) = RE(bp.count([camera[0]], num=3), writer)
    frames = store.raw[uid]["primary"]["cam"].read()
    assert frames.shape == (3, SIZE, SIZE)
    assert frames.dtype == np.uint16
    assert frames.mean() > 10 * DARK  # open beam: counts well above the dark level
    path = next(ioc.data_dir.glob("*.h5"))
    with h5py.File(path, "r") as f:
        data = f["/entry/data/data"]
        assert data.fletcher32 and data.chunks == (1, SIZE, SIZE)
        assert list(f["/entry/instrument/NDAttributes/NDArrayUniqueId"][:]) == sorted(
            f["/entry/instrument/NDAttributes/NDArrayUniqueId"][:]
        )
    assert (path.stat().st_mode & 0o777) == 0o600


def test_frames_follow_the_axes_with_the_in_process_physics(ioc, run, RE, camera):
    """Frames equal the in-process TXM image model at the IOC's axis positions (to noise)."""
    model = TXMImageModel(make_phantom(txm_phantom_config(SIZE, seed=0)),
                          noise=DetectorNoiseConfig(seed=0), beam_seed=0)  # fmt: skip
    focus = model.optics.focus(8400.0)

    def state(energy: float, det_z: float, x: float = 0.0) -> BeamlineState:
        return BeamlineState(energy, focus.zp_z_mm, det_z, x, 0.0, True, 1.0)

    cases = {
        "in_focus": (8400.0, focus.det_z_mm, 0.0),
        "defocused": (8400.0, focus.det_z_mm + 600.0, 0.0),
        "sample_out": (8400.0, focus.det_z_mm, 100.0),
        "below_edge": (8300.0, focus.det_z_mm, 0.0),
    }
    measured = {}
    for name, (energy, det_z, x) in cases.items():
        _put(run, ioc, "Mono:Energy.VAL", energy)
        _put(run, ioc, "ZP:Z.VAL", focus.zp_z_mm)
        _put(run, ioc, "Det:Z.VAL", det_z)
        _put(run, ioc, "Smpl:X.VAL", x)
        frames, _ = _frames(run, ioc, RE, camera)
        measured[name] = frames[0].astype(np.float32) - DARK
    _put(run, ioc, "Smpl:X.VAL", 0.0)
    for name, (energy, det_z, x) in cases.items():
        expected = model.expected_counts(state(energy, det_z, x), 0.02)
        scale = float(np.sum(measured[name] * expected) / np.sum(expected * expected))
        residual = (measured[name] - scale * expected) / np.sqrt(scale * expected + 9.0)
        assert abs(scale - 1.0) < 0.05, name  # flux drift of the ring is below 5 %
        assert abs(float(residual.mean())) < 0.1 and 0.8 < float(residual.std()) < 1.3, name
    # each axis changes the frame the way the model predicts (not noise, not a fixed frame)
    base = model.expected_counts(state(*cases["in_focus"]), 0.02)
    for other in ("defocused", "sample_out", "below_edge"):
        predicted = model.expected_counts(state(*cases[other]), 0.02) - base
        observed = measured[other] - measured["in_focus"]
        assert np.corrcoef(predicted.ravel(), observed.ravel())[0, 1] > 0.5, other


def test_shutters_and_i0(ioc, run, RE, camera):
    """Dark frames with a shutter closed; I0 is the flux over each exposure (0 with FE closed)."""
    open_frames, open_i0 = _frames(run, ioc, RE, camera, num=2)
    _put(run, ioc, "Shtr:Ph:Cmd", "Closed")
    dark_frames, ph_i0 = _frames(run, ioc, RE, camera)
    _put(run, ioc, "Shtr:Ph:Cmd", "Open")
    _put(run, ioc, "Shtr:FE:Cmd", "Closed")
    fe_frames, fe_i0 = _frames(run, ioc, RE, camera)
    _put(run, ioc, "Shtr:FE:Cmd", "Open")
    _exposure(run, camera, 0.04)
    long_frames, long_i0 = _frames(run, ioc, RE, camera)
    _exposure(run, camera, 0.02)
    expected_i0 = 0.02 * I0_COUNTS_PER_S
    assert all(abs(v / expected_i0 - 1) < 0.05 for v in open_i0 + ph_i0), (open_i0, ph_i0)
    assert fe_i0 == [0.0]
    for dark in (dark_frames, fe_frames):
        assert abs(float(dark.mean()) - DARK) < 1.0
    signal = float(open_frames.mean()) - DARK
    ratio = (float(long_frames.mean()) - DARK) / signal
    assert ratio == pytest.approx(long_i0[0] / np.mean(open_i0), rel=0.02)
