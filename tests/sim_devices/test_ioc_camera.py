"""The simulated IOC's camera + HDF5 plugin, driven by the stock ophyd-async adcore classes.

One IOC subprocess (64 x 64 phantom) for the module; its files go to the session
tiled server's readable detector folder, so the frames are read back through tiled.
"""

from __future__ import annotations

import asyncio
import uuid

import bluesky.plans as bp
import h5py
import numpy as np
import pytest
from aioca import DBR_CHAR_STR, CANothing, caget, caput
from bluesky.callbacks.tiled_writer import TiledWriter
from bluesky.run_engine import RunEngine, call_in_bluesky_event_loop
from ophyd_async.core import FlyMotorInfo, StaticPathProvider, TriggerInfo, UUIDFilenameProvider
from ophyd_async.epics.adcore import (
    ADWriterFactory,
    NDAttributePv,
    NDAttributePvDbrType,
    ndattributes_to_xml,
)
from ophyd_async.epics.adsimdetector import SimDetector
from ophyd_async.epics.core import epics_signal_r
from ophyd_async.epics.motor import Motor

from ssb_beamline.sim_devices.image_model import DetectorNoiseConfig, TXMImageModel
from ssb_beamline.sim_devices.ioc import running_sim_ioc
from ssb_beamline.sim_devices.ioc.frames import I0_COUNTS_PER_S, txm_phantom_config
from ssb_beamline.sim_devices.phantom import make_phantom
from ssb_beamline.sim_devices.phantom3d import Phantom3DConfig, make_phantom3d
from ssb_beamline.sim_devices.projection import PhantomProjector
from ssb_beamline.sim_devices.projection_model import ProjectionImageModel
from ssb_beamline.sim_devices.state import BeamlineState
from ssb_beamline.sim_devices.tomo_detector import TomoState
from ssb_beamline.storage import open_store

pytestmark = pytest.mark.timeout(240)
SIZE = 64
DARK = DetectorNoiseConfig().dark_offset
TOMO_SHAPE = (16, 48, 48)


@pytest.fixture(scope="module")
def ioc(tiled_server):
    folder = tiled_server.layout.detector / f"ioc-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    args = ["--size", str(SIZE), "--tomo-shape", ",".join(map(str, TOMO_SHAPE))]
    with running_sim_ioc(data_dir=folder, args=args) as handle:
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
        for axis in ("Mono:Energy", "ZP:Z", "Det:Z"):  # fast moves keep the tests short
            await caput(ioc.pv(f"{axis}.VELO"), await caget(ioc.pv(f"{axis}.VMAX")), wait=True)

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


def test_continuous_mode_runs_until_stopped(ioc, run):
    """ImageMode Continuous free-runs at AcquirePeriod until Acquire = 0."""

    async def go():
        await caput(ioc.pv("cam1:ImageMode"), "Continuous", wait=True)
        await caput(ioc.pv("cam1:AcquirePeriod"), 0.03, wait=True)
        await caput(ioc.pv("cam1:Acquire"), 1)  # no wait: the put completes at the end
        counter = 0
        for _ in range(200):
            counter = await caget(ioc.pv("cam1:NumImagesCounter_RBV"))
            if counter >= 4:
                break
            await asyncio.sleep(0.05)
        await caput(ioc.pv("cam1:Acquire"), 0, wait=True, timeout=10)
        state = await caget(ioc.pv("cam1:DetectorState_RBV"), datatype=str)
        acquiring = await caget(ioc.pv("cam1:Acquire_RBV"))
        stopped_at = await caget(ioc.pv("cam1:NumImagesCounter_RBV"))
        await asyncio.sleep(0.2)
        later = await caget(ioc.pv("cam1:NumImagesCounter_RBV"))
        await caput(ioc.pv("cam1:ImageMode"), "Multiple", wait=True)
        await caput(ioc.pv("cam1:AcquirePeriod"), 0.0, wait=True)
        return counter, state, acquiring, stopped_at, later

    counter, state, acquiring, stopped_at, later = run(go())
    assert counter >= 4
    assert (state, acquiring) == ("Idle", 0)
    assert later == stopped_at


def _projector() -> PhantomProjector:
    """The IOC's 3-D sample, built the same way in this process."""
    return PhantomProjector(make_phantom3d(Phantom3DConfig(shape=TOMO_SHAPE, seed=0)))


async def _set_model(ioc, name: str) -> None:
    await caput(ioc.pv("Sim:Model"), name, wait=True, timeout=60)


def test_fly_scan_frames_carry_their_exact_angle(ioc, run, camera):
    """Rotation flies at VELO while the camera free-runs; each frame stores its angle."""
    det = camera[0]
    rot = Motor(ioc.pv("Smpl:Rot"), name="rot")
    monitored: list[tuple[float, float]] = []

    def note(reading: dict) -> None:
        monitored.extend((r["timestamp"], r["value"]) for r in reading.values())

    async def go():
        await _set_model(ioc, "Tomo")
        await rot.connect(timeout=10)
        xml = ndattributes_to_xml(
            [NDAttributePv("rotation", rot.user_readback, NDAttributePvDbrType.DBR_DOUBLE)]
        )
        await det.driver.nd_attributes_file.set(xml)
        await rot.set(0.0)
        await rot.prepare(FlyMotorInfo(start_position=0.0, end_position=60.0, time_for_move=1.0))
        rot.user_readback.subscribe_reading(note)
        await det.stage()
        await det.prepare(TriggerInfo(number_of_events=15, livetime=0.04, deadtime=0.01))
        await rot.kickoff()
        await det.kickoff()
        await rot.complete()
        await det.complete()
        await det.unstage()
        rot.user_readback.clear_sub(note)
        await det.driver.nd_attributes_file.set("")
        await rot.velocity.set(30.0)
        await rot.set(0.0)
        return [await caget(ioc.pv(f"{axis}.RBV")) for axis in ("Mono:Energy", "ZP:Z", "Det:Z")]

    energy, zp_z, det_z = run(go())
    path = max(ioc.data_dir.glob("*.h5"), key=lambda p: p.stat().st_mtime)
    with h5py.File(path, "r") as f:
        frames = f["/entry/data/data"][:]
        angles = f["/entry/instrument/NDAttributes/rotation"][:]
        stamps = f["/entry/instrument/NDAttributes/NDArrayTimeStamp"][:]
    assert frames.shape == (15, 16, 48)  # 0.75 s of frames inside the 1 s move
    slope, _ = np.polyfit(stamps - stamps[0], angles, 1)
    assert slope == pytest.approx(60.0, rel=0.01)  # VELO = (end - start) / time_for_move
    assert np.all(np.diff(angles) > 0) and angles[0] >= 0.0 and angles[-1] <= 60.0
    # the angle of each frame recovered from the monitored readback and the frame time stamp
    t, value = np.array(monitored).T
    recovered = np.interp(stamps, t, value)
    assert np.max(np.abs(recovered - angles)) < 0.05
    # the projections change with the angle as the in-process model predicts
    model = ProjectionImageModel(_projector(), mode="txm", noise=DetectorNoiseConfig(seed=0))
    first, last = (
        model.expected_counts(TomoState(energy, zp_z, det_z, 0.0, 0.0, True, 1.0,
                                        rotation_deg=float(a)), 0.04)
        for a in (angles[0], angles[-1])
    )  # fmt: skip
    observed = frames[-1].astype(np.float32) - frames[0]
    assert np.corrcoef((last - first).ravel(), observed.ravel())[0, 1] > 0.5


def test_holo_frames_follow_the_propagation_distance(ioc, run, RE, camera):
    """Holo frames equal the in-process ProjectionImageModel at the served Holo:Dist."""
    model = ProjectionImageModel(_projector(), mode="holo", noise=DetectorNoiseConfig(seed=0))
    run(_set_model(ioc, "Holo"))
    _exposure(run, camera, 0.02)
    _put(run, ioc, "Mono:Energy.VAL", 8000.0)
    measured, expected = {}, {}
    for dist in (0.15, 0.6):
        _put(run, ioc, "Holo:Dist.VAL", dist)
        frames, _ = _frames(run, ioc, RE, camera)
        measured[dist] = frames[0].astype(np.float32) - DARK
        state = TomoState(8000.0, 0.0, 0.0, 0.0, 0.0, True, 1.0, rotation_deg=0.0, holo_z_mm=dist)
        expected[dist] = model.expected_counts(state, 0.02)
    run(_set_model(ioc, "TXM"))
    for dist, frame in measured.items():
        scale = float(np.sum(frame * expected[dist]) / np.sum(expected[dist] ** 2))
        residual = (frame - scale * expected[dist]) / np.sqrt(scale * expected[dist] + 9)
        assert abs(scale - 1.0) < 0.05
        assert abs(float(residual.mean())) < 0.15 and 0.8 < float(residual.std()) < 1.3
    predicted = (expected[0.6] - expected[0.15]).ravel()
    observed = (measured[0.6] - measured[0.15]).ravel()
    assert np.corrcoef(predicted, observed)[0, 1] > 0.5


def test_bad_puts_are_refused(ioc, run):
    """Out-of-range exposure, unknown stall axis, a file path outside the data directory."""

    async def go():
        refused = []
        for pv, value in (("cam1:AcquireTime", 0.0), ("Sim:StallAxis", "Nope:Axis")):
            try:
                await caput(ioc.pv(pv), value, wait=True, timeout=5)
            except CANothing:
                refused.append(pv)
        await caput(ioc.pv("HDF1:FilePath"), "/etc", datatype=DBR_CHAR_STR, wait=True)
        exists = await caget(ioc.pv("HDF1:FilePathExists_RBV"))
        try:
            await caput(ioc.pv("HDF1:Capture"), 1, wait=True, timeout=5)
        except CANothing:
            refused.append("HDF1:Capture")
        await caput(ioc.pv("HDF1:FilePath"), str(ioc.data_dir), datatype=DBR_CHAR_STR, wait=True)
        return refused, exists, await caget(ioc.pv("HDF1:FilePathExists_RBV"))

    refused, outside, restored = run(go())
    assert refused == ["cam1:AcquireTime", "Sim:StallAxis", "HDF1:Capture"]
    assert (outside, restored) == (0, 1)
