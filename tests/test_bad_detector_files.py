"""Damaged detector files are refused, never analysed as zeros (issue 11, finding 4).

The simulated detectors store one Fletcher-32 checksum per frame; a closed file is
opened without SWMR, so HDF5 refuses a file cut short instead of returning the
missing frames as zeros. A replay of a run whose file was truncated or whose bytes
were overwritten fails with a message naming the file and the frame, and stores no
new results version.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import bluesky.plans as bp
import h5py
import numpy as np
import pytest
import stamina
from bluesky.run_engine import RunEngine
from ophyd_async.plan_stubs import ensure_connected

from ssb_beamline.callbacks.frames import FrameResolverError, HDF5FrameResolver, uri_to_path
from ssb_beamline.profiles.replay import replay_runs
from ssb_beamline.profiles.simulated import simulated_beamline
from ssb_beamline.sim_devices.detector import DATA_PATH
from ssb_beamline.sim_devices.phantom import PhantomConfig
from ssb_beamline.sim_devices.projection_model import Sphere, SphereProjector
from ssb_beamline.sim_devices.tomo_detector import TIMESTAMP_PATH
from ssb_beamline.sim_devices.tomo_factory import make_sim_tomo
from ssb_beamline.storage import result_versions
from ssb_beamline.storage.replay import ReplayError
from ssb_beamline.storage.server_config import TILED_API_KEY_ENV

pytestmark = pytest.mark.slow

PHANTOM = PhantomConfig(shape=(64, 64), n_particles=4, radius_range_um=(0.8, 1.6), min_gap_um=0.3)
#: Frame of the primary stream that the tests damage.
BAD_FRAME = 7


@pytest.fixture(scope="module")
def archived(tiled_server, tmp_path_factory):
    """One quick XANES run (64 x 64 px) in the session's tiled server, and its primary file."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(TILED_API_KEY_ENV, tiled_server.api_key)
        beamline = simulated_beamline(
            tiled_uri=tiled_server.url,
            data_dir=tmp_path_factory.mktemp("damaged"),
            detector_dir=tiled_server.layout.detector / f"damaged-{uuid.uuid4().hex[:8]}",
            phantom=PHANTOM,
        )
    (uid,) = beamline.run(beamline.xanes("quick"))
    assert beamline.outcomes[-1].ok, beamline.outcomes[-1].errors
    docs = list(beamline.store.raw[uid].documents())
    primary = {d["uid"] for n, d in docs if n == "descriptor" and d["name"] == "primary"}
    resources = {d["uid"]: d for n, d in docs if n == "stream_resource"}
    (uri,) = {
        resources[d["stream_resource"]]["uri"]
        for n, d in docs
        if n == "stream_datum" and d["descriptor"] in primary
    }
    yield beamline, uid, uri_to_path(uri)
    beamline.close()


class Damaged:
    """Damage a file for the length of a ``with`` block, then put the original back."""

    def __init__(self, path: Path, damage) -> None:
        self.path, self.damage = path, damage
        self.backup = path.with_name(path.name + ".orig")

    def __enter__(self) -> Path:
        shutil.copy2(self.path, self.backup)
        self.damage(self.path)
        return self.path

    def __exit__(self, *exc) -> None:
        self.backup.replace(self.path)


def truncate_to_half(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)


def overwrite_inside_frame(path: Path) -> None:
    """Change 3 bytes in the middle of frame ``BAD_FRAME`` (the file stays a valid HDF5)."""
    with h5py.File(path, "r") as f:
        chunk = f[DATA_PATH].id.get_chunk_info_by_coord((BAD_FRAME, 0, 0))
    with path.open("r+b") as f:
        f.seek(chunk.byte_offset + chunk.size // 2)
        old = f.read(3)
        f.seek(chunk.byte_offset + chunk.size // 2)
        f.write(bytes(b ^ 0x5A for b in old))


def test_the_txm_detector_stores_one_checksummed_chunk_per_frame(archived):
    _, _, primary = archived
    files = sorted(primary.parent.glob("*.h5"))
    assert len(files) >= 3  # dark, flat, primary
    for path in files:
        with h5py.File(path, "r") as f:
            data = f[DATA_PATH]
            assert data.fletcher32, path
            assert data.chunks == (1, *data.shape[1:]), path


def test_the_tomography_detector_checksums_frames_and_time_stamps(tmp_path):
    RE = RunEngine({}, call_returns_result=False)
    sphere = SphereProjector([Sphere(1.0, 0.0, 0.0, 1.5)], shape=(24, 32), pixel_size_um=0.13)
    tomo = make_sim_tomo(directory=tmp_path, projector=sphere)
    RE(ensure_connected(*tomo.devices))
    RE(bp.count([tomo.detector], 3))
    (path,) = tmp_path.glob("*.h5")
    with h5py.File(path, "r") as f:
        frames, stamps = f[DATA_PATH], f[TIMESTAMP_PATH]
        assert frames.shape == (3, 24, 32) and frames.chunks == (1, 24, 32)
        assert frames.fletcher32 and stamps.fletcher32 and stamps.chunks == (1,)


def datum(resource_uid: str, start: int, stop: int) -> dict:
    return {"uid": "d", "stream_resource": resource_uid, "indices": {"start": start, "stop": stop}}


def resolver_for(path: Path) -> HDF5FrameResolver:
    resolver = HDF5FrameResolver()
    resolver.stream_resource(
        {
            "uid": "r",
            "data_key": "detector",
            "uri": f"file://localhost{path}",
            "mimetype": "application/x-hdf5",
            "parameters": {"dataset": DATA_PATH},
        }
    )
    return resolver


def test_a_closed_file_is_read_without_swmr(archived):
    resolver = resolver_for(archived[2])
    try:
        assert resolver.frames(datum("r", 0, 2)).shape == (2, 64, 64)
        assert not resolver._files["r"].swmr_mode
    finally:
        resolver.close()


_WRITER = """
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "w", libver="latest")
d = f.create_dataset("/entry/data/data", shape=(0, 4, 4), dtype=np.uint16,
                     maxshape=(None, 4, 4), chunks=(1, 4, 4), fletcher32=True)
f.swmr_mode = True
for i in range(2):
    d.resize(i + 1, axis=0); d[i] = i + 1; d.flush()
print("written", flush=True)
sys.stdin.read()  # hold the file open for writing until the test closes stdin
f.close()
"""


def test_a_file_another_process_is_writing_is_read_with_swmr(tmp_path):
    path = tmp_path / "live.h5"
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "written"
        resolver = resolver_for(path)
        try:
            frames = resolver.frames(datum("r", 0, 2))
            assert resolver._files["r"].swmr_mode
            np.testing.assert_array_equal(frames[:, 0, 0], [1, 2])
        finally:
            resolver.close()
    finally:
        writer.stdin.close()
        writer.wait(timeout=30)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (truncate_to_half, r"truncated file.*so frames 0-\d+ of 'detector' cannot be read"),
        (overwrite_inside_frame, rf"Frame {BAD_FRAME} of 'detector' .*checksum does not match"),
    ],
    ids=["truncated", "overwritten"],
)
def test_a_damaged_file_fails_the_replay_and_stores_nothing(archived, damage, message):
    beamline, uid, primary = archived
    versions = result_versions(beamline.store.results, uid)
    with Damaged(primary, damage):
        (outcome,) = replay_runs(beamline.store, [uid], fill="never")
        assert not outcome.ok and outcome.stored_at is None
        (error,) = outcome.errors
        assert "FrameResolverError" in error and str(primary) in error, error
        assert "Restore" in error

        assert re.search(message, error), error
        assert result_versions(beamline.store.results, uid) == versions  # nothing half-stored


def test_damaged_frames_are_refused_live(archived):
    _, _, primary = archived
    with Damaged(primary, overwrite_inside_frame):
        resolver = resolver_for(primary)
        try:
            assert resolver.frames(datum("r", 0, BAD_FRAME)).shape[0] == BAD_FRAME
            with pytest.raises(FrameResolverError, match=rf"Frame {BAD_FRAME} of 'detector'"):
                resolver.frames(datum("r", BAD_FRAME - 1, BAD_FRAME + 2))
        finally:
            resolver.close()


def test_the_restored_file_replays_as_the_live_run(archived):
    beamline, uid, _ = archived
    (outcome,) = replay_runs(beamline.store, [uid], fill="never", store_results=False)
    assert outcome.ok, outcome.errors
    live = beamline.outcomes[-1].maps
    for key in ("soc", "edge_energy"):
        np.testing.assert_array_equal(outcome.maps[key], live[key], err_msg=key)


@pytest.mark.parametrize(
    ("damage", "frame", "why"),
    [(truncate_to_half, 0, "truncated file"), (overwrite_inside_frame, BAD_FRAME, "")],
    ids=["truncated", "overwritten"],
)
def test_a_damaged_frame_served_by_tiled_fails_the_replay(archived, damage, frame, why):
    """``--fill always``: the frames come over HTTP; the server refuses the file (422)."""
    beamline, uid, primary = archived
    versions = result_versions(beamline.store.results, uid)
    with (
        Damaged(primary, damage),
        stamina.set_testing(True, attempts=1),
        pytest.raises(ReplayError, match=rf"tiled could not serve frame {frame} of run") as err,
    ):
        replay_runs(beamline.store, [uid], fill="always")
    message = str(err.value)
    assert f"422: The detector file {primary} cannot be read" in message, message
    assert why in message and "Restore" in message
    assert result_versions(beamline.store.results, uid) == versions


@pytest.mark.parametrize(
    ("damage", "what"),
    [(truncate_to_half, "truncated file"), (overwrite_inside_frame, f"frame {BAD_FRAME} ")],
    ids=["truncated", "overwritten"],
)
def test_a_tiled_client_reading_a_damaged_file_gets_its_name_and_frame(archived, damage, what):
    """Any client over HTTP (not only replay): a 422 naming the file, never zeros."""
    from tiled.client.utils import ClientError

    beamline, uid, primary = archived
    frames = beamline.store.raw[uid]["primary"]["detector"]
    with Damaged(primary, damage), stamina.set_testing(True, attempts=1):
        with pytest.raises(ClientError, match=r"^422: ") as err:
            frames[BAD_FRAME - 1 : BAD_FRAME + 1]
        assert str(primary) in str(err.value) and what in str(err.value), err.value
    assert frames[BAD_FRAME].shape == (64, 64)  # restored: served again
