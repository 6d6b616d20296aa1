"""TXM detector: documents, HDF5 files and frame content."""

from __future__ import annotations

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import h5py
import numpy as np
import pytest
from bluesky.utils import FailedStatus
from ophyd.sim import SynAxis
from ophyd_async.core import TriggerInfo
from ophyd_async.plan_stubs import ensure_connected
from scipy import ndimage

from ssb_beamline.sim_devices import (
    DATA_PATH,
    DriftConfig,
    TXMDetector,
    make_sim_txm,
)
from ssb_beamline.sim_devices.state import BeamlineState


def _sharpness(frame: np.ndarray) -> float:
    """Gradient energy of the lightly smoothed frame (robust to Poisson noise)."""
    f = ndimage.gaussian_filter(frame.astype(float), 1.0)
    gy, gx = np.gradient(f)
    return float(np.mean(gy**2 + gx**2) / np.mean(f) ** 2)


def test_count_emits_stream_documents_and_hdf5(RE, tmp_path, acquire):
    txm = make_sim_txm(directory=tmp_path)  # default 512x512 phantom
    RE(ensure_connected(*txm.devices))
    frames, docs = acquire(txm.detector, 3, extra=[txm.i0])
    names = [n for n, _ in docs]
    assert names.count("stream_resource") == 1
    assert names.count("stream_datum") == 3
    assert names.count("event") == 3
    (resource,) = [d for n, d in docs if n == "stream_resource"]
    assert resource["data_key"] == "detector"
    assert resource["mimetype"] == "application/x-hdf5"
    assert resource["parameters"]["dataset"] == DATA_PATH
    datums = [d for n, d in docs if n == "stream_datum"]
    assert [(d["indices"]["start"], d["indices"]["stop"]) for d in datums] == [
        (0, 1),
        (1, 2),
        (2, 3),
    ]
    (descriptor,) = [d for n, d in docs if n == "descriptor"]
    key = descriptor["data_keys"]["detector"]
    assert key["shape"] == [1, 512, 512] and key["dtype_numpy"] == "<u2"
    assert key["external"] == "STREAM:"
    assert "i0_flux" in descriptor["data_keys"]
    assert "detector_exposure_time" in descriptor["configuration"]["detector"]["data"]
    assert frames.shape == (3, 512, 512) and frames.dtype == np.uint16
    assert len(list(tmp_path.glob("*.h5"))) == 1
    # Independent frames (noise), same sample.
    assert not np.array_equal(frames[0], frames[1])
    assert np.corrcoef(frames[0].ravel(), frames[1].ravel())[0, 1] > 0.9


def test_exposure_validation(RE, run, small_txm, tmp_path, acquire):
    det = small_txm.detector
    with pytest.raises(FailedStatus) as info:
        RE(bps.mv(det.exposure_time, -0.1))
    assert isinstance(info.value.__cause__, ValueError)
    assert "Exposure time must be > 0" in str(info.value.__cause__)
    with pytest.raises(ValueError, match="Exposure time must be > 0"):
        run(det.exposure_time.set, 0.0)
    assert run(det.exposure_time.get_value()) == pytest.approx(0.02)
    with pytest.raises(ValueError, match="Exposure time"):
        TXMDetector(None, small_txm.model, det.sources, exposure_time=0.0)
    RE(bps.mv(det.exposure_time, 0.04))
    long, _ = acquire(det)
    RE(bps.mv(det.exposure_time, 0.02))
    short, _ = acquire(det)
    dark = small_txm.model.noise.dark_offset
    ratio = (long.mean() - dark) / (short.mean() - dark)
    assert ratio == pytest.approx(2.0, rel=0.02)


def test_shutter_closed_gives_dark_frames(RE, small_txm, acquire):
    RE(bps.mv(small_txm.shutter, "Closed"))
    frames, _ = acquire(small_txm.detector, 2)
    noise = small_txm.model.noise
    assert frames.mean() == pytest.approx(noise.dark_offset, abs=0.5)
    assert frames.std() == pytest.approx(noise.read_noise, rel=0.15)
    RE(bps.mv(small_txm.shutter, "Open"))
    frames, _ = acquire(small_txm.detector)
    assert frames.mean() > 50 * noise.dark_offset


def test_sample_out_gives_flat_frames(RE, small_txm, acquire):
    RE(bps.mv(small_txm.sample.x, small_txm.sample_out_x_um))
    flat, _ = acquire(small_txm.detector)
    RE(bps.mv(small_txm.sample.x, 0.0))
    image, _ = acquire(small_txm.detector)
    dark = small_txm.model.noise.dark_offset
    beam = small_txm.model.beam_profile
    ratio = (flat[0] - dark) / beam
    assert ratio.std() / ratio.mean() < 0.02  # only Poisson noise left
    assert np.corrcoef((flat[0] - dark).ravel(), beam.ravel())[0, 1] > 0.98
    transmission = (image[0] - dark) / (flat[0] - dark)
    nmc = small_txm.phantom.thickness_nmc_um > 2.0
    assert transmission[nmc].mean() < 0.97
    assert transmission[small_txm.phantom.phase == 0].mean() == pytest.approx(1.0, abs=0.01)


def test_sample_shift_moves_image(small_txm):
    model = small_txm.model
    fp = small_txm.focus_positions(8333.0)
    base = BeamlineState(8333.0, fp.zp_z_mm, fp.det_z_mm, 0.0, 0.0, True, 1.0)
    shifted = BeamlineState(8333.0, fp.zp_z_mm, fp.det_z_mm, 10 * 0.13, 0.0, True, 1.0)
    t0 = model.sample_transmission(base)
    t1 = model.sample_transmission(shifted)
    np.testing.assert_allclose(t1[:, 10:], t0[:, :-10], atol=1e-5)


def test_flux_scales_counts(RE, small_txm, acquire):
    det = small_txm.detector
    det.sources.i0 = 0.5
    half, _ = acquire(det)
    det.sources.i0 = 1.0
    full, _ = acquire(det)
    dark = small_txm.model.noise.dark_offset
    assert (half.mean() - dark) / (full.mean() - dark) == pytest.approx(0.5, rel=0.02)


def test_focus_tracking_sharp_untracked_blurred(RE, small_txm, acquire):
    e_end = 8483.0
    RE(bps.mv(small_txm.energy.velocity, 1000.0))
    RE(bps.mv(small_txm.energy, e_end))  # optics left at the 8333 eV focus
    blurred, _ = acquire(small_txm.detector)
    fp = small_txm.focus_positions(e_end)
    RE(bps.mv(small_txm.zp_z, fp.zp_z_mm, small_txm.det_z, fp.det_z_mm))
    sharp, _ = acquire(small_txm.detector)
    ratio = _sharpness(sharp[0]) / _sharpness(blurred[0])
    assert ratio > 3


def test_focus_axis_swapped_for_ophyd_v1(RE, small_txm, acquire):
    e = 8333.0
    syn = SynAxis(name="zp_syn")
    small_txm.detector.sources.zp_z = syn
    fp = small_txm.focus_positions(e)
    syn.set(fp.zp_z_mm).wait()
    sharp, _ = acquire(small_txm.detector)
    syn.set(fp.zp_z_mm + 2.0).wait()
    blurred, _ = acquire(small_txm.detector)
    ratio = _sharpness(sharp[0]) / _sharpness(blurred[0])
    assert ratio > 3


def test_saturation_and_dtype(small_txm):
    model = small_txm.model
    fp = small_txm.focus_positions(8333.0)
    state = BeamlineState(8333.0, fp.zp_z_mm, fp.det_z_mm, 0.0, 0.0, True, 1.0)
    frame = model.render(state, exposure_s=1.0)
    assert frame.dtype == np.uint16 and frame.max() == 65535


def test_drift_per_energy(RE, tmp_path, small_config):
    txm = make_sim_txm(
        small_config, directory=tmp_path, drift=DriftConfig(max_drift_px=4.0, seed=2)
    )
    model = txm.model
    dy, dx = model.drift.offset_px(8350.0)
    assert model.drift.offset_px(8350.0) == (dy, dx)
    assert max(abs(dy), abs(dx)) > 0.1
    assert model.drift.offset_px(8360.0) != (dy, dx)
    assert DriftConfig().offset_px(8350.0) == (0.0, 0.0)


def test_frames_readable_while_staged(RE, small_txm):
    """SWMR: another reader sees frames as they are written."""
    det = small_txm.detector
    seen = []

    def plan():
        yield from bps.stage(det)
        yield from bps.open_run()
        for _ in range(2):
            yield from bps.trigger_and_read([det])
            path = det.writer._file.path
            with h5py.File(path, "r", swmr=True) as f:
                seen.append(f[DATA_PATH].shape[0])
        yield from bps.close_run()
        yield from bps.unstage(det)

    RE(plan())
    assert seen == [1, 2]
    RE(bp.count([det], 1))


def test_prepare_livetime_sets_exposure(RE, run, small_txm, acquire):
    det = small_txm.detector
    RE(bps.stage(det))
    RE(bps.prepare(det, TriggerInfo(livetime=0.05), wait=True))
    assert run(det.exposure_time.get_value()) == pytest.approx(0.05)
    RE(bps.unstage(det))
    frames, _ = acquire(det)
    assert frames.shape == (1, 128, 128)
