"""Simulated tomography: projector, frame model, rotation axis, camera, fly-scan angles."""

from __future__ import annotations

import time
from urllib.parse import urlparse

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import h5py
import numpy as np
import pytest
from ophyd_async.plan_stubs import ensure_connected

from ssb_beamline.analysis.fly_angles import angles_from_monitor
from ssb_beamline.sim_devices.image_model import DetectorNoiseConfig
from ssb_beamline.sim_devices.optics import HC_EV_NM
from ssb_beamline.sim_devices.projection_model import (
    HoloGeometry,
    ProjectionImageModel,
    Projector,
    Sphere,
    SphereProjector,
    default_spheres,
)
from ssb_beamline.sim_devices.tomo_detector import TIMESTAMP_PATH, TomoState
from ssb_beamline.sim_devices.tomo_factory import make_sim_tomo

PX = 0.13


def one_sphere(x_um: float = 1.0, **kw) -> SphereProjector:
    return SphereProjector([Sphere(x_um, 0.0, 0.0, 1.5, **kw)], shape=(48, 64), pixel_size_um=PX)


def state(**kw) -> TomoState:
    values = dict(energy_ev=8333.0, zp_z_mm=0.0, det_z_mm=0.0, sample_x_um=0.0,
                  sample_y_um=0.0, shutter_open=True, flux=1.0)  # fmt: skip
    values.update(kw)
    return TomoState(**values)


def in_focus_state(model: ProjectionImageModel, **kw) -> TomoState:
    fp = model.optics.focus(kw.get("energy_ev", 8333.0))
    return state(zp_z_mm=fp.zp_z_mm, det_z_mm=fp.det_z_mm, **kw)


# --- projector -------------------------------------------------------------------


def test_sphere_projector_is_a_projector_with_exact_chords():
    p = one_sphere(x_um=1.3)
    assert isinstance(p, Projector)
    assert p.detector_shape == (48, 64)
    cx = p.rotation_center_px
    mu = p.mu_per_um(p.spheres[0], 8400.0)
    # through the centre the chord is the diameter
    img0 = p.intensity(0.0, 8400.0)
    col = round(cx + 1.3 / PX)
    assert img0.dtype == np.float32
    assert img0.min() == pytest.approx(np.exp(-mu * 3.0), rel=0.02)
    assert int(np.argmin(img0[23:25].mean(0))) in (col - 1, col, col + 1)
    # at 180 deg the sphere is mirrored about the rotation axis
    img180 = p.intensity(180.0, 8400.0)
    np.testing.assert_allclose(img180, img0[:, ::-1], atol=1e-6)
    mirrored = round(cx - 1.3 / PX)
    assert int(np.argmin(img180[23:25].mean(0))) in (mirrored - 1, mirrored, mirrored + 1)


def test_sphere_projector_edge_step_and_fresnel_fringes():
    p = one_sphere(x_um=0.0)
    below, above = p.intensity(0, 8300.0), p.intensity(0, 8400.0)
    assert above.min() < below.min() < 1.0
    holo = p.intensity(0, 8333.0, propagation_distance_m=0.01)
    absorption = p.intensity(0, 8333.0)
    # phase contrast: fringes above 1 near the edge, flux roughly conserved
    assert holo.max() > 1.02 and absorption.max() == pytest.approx(1.0)
    assert holo.mean() == pytest.approx(absorption.mean(), rel=0.01)
    fresnel_px = np.sqrt(HC_EV_NM / 8333.0 * 1e-9 * 0.01) / (PX * 1e-6)
    assert 3 < fresnel_px < 30  # the fringes are resolved


def test_default_spheres_do_not_overlap():
    spheres = default_spheres(seed=2, n=5, fov_um=8.0)
    for i, a in enumerate(spheres):
        for b in spheres[i + 1 :]:
            d = np.linalg.norm([a.x_um - b.x_um, a.y_um - b.y_um, a.z_um - b.z_um])
            assert d >= a.radius_um + b.radius_um


# --- frame model -----------------------------------------------------------------


def test_model_dark_flat_sample_and_saturation():
    noise = DetectorNoiseConfig(counts_per_s=1e6, dark_offset=100.0, read_noise=3.0, seed=1)
    model = ProjectionImageModel(one_sphere(), noise=noise)
    s = in_focus_state(model)
    dark = model.render(state(shutter_open=False), 0.01).astype(float)
    assert dark.mean() == pytest.approx(100.0, abs=1.0)
    assert dark.std() == pytest.approx(3.0, rel=0.2)
    out = in_focus_state(model, sample_x_um=64 * PX * 1.5)
    flat = model.render(out, 0.01).astype(float) - 100.0
    np.testing.assert_allclose(flat / (1e4 * model.beam_profile), 1.0, atol=0.08)
    image = model.render(s, 0.01).astype(float) - 100.0
    transmission = image / flat
    expected = model.projector.intensity(0.0, 8333.0)
    assert np.mean(transmission - expected) == pytest.approx(0.0, abs=0.005)
    assert np.std(transmission - expected) < 0.03
    # flux scales the counts; a long exposure saturates
    half = model.expected_counts(in_focus_state(model, flux=0.5), 0.01)
    np.testing.assert_allclose(half, 0.5 * model.expected_counts(s, 0.01), rtol=1e-5)
    assert model.render(out, 0.2).max() == 65535


def test_txm_defocus_blurs_and_holo_propagates():
    txm = ProjectionImageModel(one_sphere(x_um=0.0), mode="txm")
    sharp = txm.expected_intensity(in_focus_state(txm))
    fp = txm.optics.focus(8333.0)
    blurred = txm.expected_intensity(state(zp_z_mm=fp.zp_z_mm + 0.2, det_z_mm=fp.det_z_mm))
    assert txm.blur_sigma_px(state(zp_z_mm=fp.zp_z_mm + 0.2, det_z_mm=fp.det_z_mm)) > 1
    assert np.abs(np.diff(blurred, axis=1)).max() < 0.7 * np.abs(np.diff(sharp, axis=1)).max()
    holo = ProjectionImageModel(one_sphere(x_um=0.0), mode="holo", holo=HoloGeometry(1.0))
    z_eff = holo.holo.effective_distance_m(20.0)
    assert z_eff == pytest.approx(0.02 * 0.98 / 1.0)
    np.testing.assert_allclose(
        holo.expected_intensity(state(holo_z_mm=20.0)),
        holo.projector.intensity(0.0, 8333.0, z_eff),
        rtol=1e-6,
    )
    assert holo.blur_sigma_px(state(holo_z_mm=20.0)) == 0.0
    with pytest.raises(ValueError, match="between the focus and the detector"):
        HoloGeometry(0.5).effective_distance_m(600.0)
    with pytest.raises(ValueError, match="mode"):
        ProjectionImageModel(one_sphere(), mode="cone")  # type: ignore[arg-type]


# --- devices -----------------------------------------------------------------------


@pytest.fixture
def tomo(RE, tmp_path):
    t = make_sim_tomo(directory=tmp_path, projector=one_sphere(), rotation_velocity_deg_s=90.0)
    RE(ensure_connected(*t.devices))
    return t


def test_factory_modes_names_and_truth(RE, tmp_path, tomo):
    assert tomo.mode == "txm" and tomo.holo_z is None
    assert tomo.sample.rotation.name == "sample_rotation"
    assert tomo.detector_shape == (48, 64) and tomo.pixel_size_um == PX
    assert tomo.truth_rotation_center_px() == pytest.approx(31.5)
    assert tomo.sample_out_x_um > 64 * PX
    holo = make_sim_tomo(directory=tmp_path, projector=one_sphere(), mode="holo", holo_z_mm=12.0)
    RE(ensure_connected(*holo.devices))
    assert holo.holo_z is not None and holo.holo_z in holo.devices
    with pytest.raises(ValueError, match="mode"):
        make_sim_tomo(directory=tmp_path, mode="laminography")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="directory"):
        make_sim_tomo(projector=one_sphere())


def test_rotation_axis_is_exact_between_readback_updates(RE, tomo):
    rotation = tomo.sample.rotation
    seen: list[tuple[float, float, float]] = []  # (time, readback, exact)

    def watch():
        status = yield from bps.abs_set(rotation, 45.0, group="r")
        while not status.done:
            value = yield from bps.rd(rotation.user_readback)
            seen.append((time.monotonic(), value, rotation.position_now()))
            yield from bps.sleep(0.02)
        yield from bps.wait(group="r")

    start = time.monotonic()
    RE(watch())
    elapsed = time.monotonic() - start
    assert 0.5 * 0.9 < elapsed < 2.0  # 45 deg at 90 deg/s
    assert rotation.position_now() == 45.0
    exact = np.array([s[2] for s in seen])
    assert np.all(np.diff(exact) >= 0) and len(seen) > 5
    # the readback (updated every 10 ms) lags the exact angle a little, never leads it
    lag = exact - np.array([s[1] for s in seen])
    assert np.all(lag >= -1e-9) and np.median(lag) < 90.0 * 0.05


def test_camera_writes_frames_and_time_stamps(RE, tomo):
    docs: list[tuple[str, dict]] = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    RE(bps.mv(tomo.sample.rotation, 30.0))
    t0 = time.time()
    RE(bp.count([tomo.detector, tomo.sample.rotation], 3))
    resources = {d["data_key"]: d for n, d in docs if n == "stream_resource"}
    assert set(resources) == {"detector", "detector-timestamp"}
    assert resources["detector-timestamp"]["parameters"]["dataset"] == TIMESTAMP_PATH
    (descriptor,) = [d for n, d in docs if n == "descriptor"]
    assert descriptor["data_keys"]["detector"]["shape"] == [1, 48, 64]
    path = urlparse(resources["detector"]["uri"]).path
    with h5py.File(path, "r") as f:
        frames = f[resources["detector"]["parameters"]["dataset"]][()]
        stamps = f[TIMESTAMP_PATH][()]
    assert frames.shape == (3, 48, 64) and frames.dtype == np.uint16
    assert stamps.shape == (3,) and np.all(np.diff(stamps) > 0) and stamps[0] > t0
    np.testing.assert_allclose(tomo.truth_frame_times(), stamps)
    np.testing.assert_allclose(tomo.truth_frame_angles(), 30.0)
    # the frame shows the sphere where the projector puts it
    cx = tomo.truth_rotation_center_px()
    col = round(cx + np.cos(np.deg2rad(30.0)) * 1.0 / PX)
    profile = frames.mean(0)[22:26].mean(0) / tomo.model.beam_profile[22:26].mean(0)
    assert abs(int(np.argmin(profile)) - col) <= 1


def test_phantom_projector_plugs_in_when_available(RE, tmp_path):
    physics = pytest.importorskip("ssb_beamline.sim_devices.tomo_physics")
    phantom3d = pytest.importorskip("ssb_beamline.sim_devices.phantom3d")
    config = phantom3d.Phantom3DConfig(shape=(24, 48, 48), n_particles=6, seed=1)
    tomo = make_sim_tomo(config, directory=tmp_path)
    assert isinstance(tomo.projector, physics.PhantomProjector)
    RE(ensure_connected(*tomo.devices))
    model = tomo.model
    s = in_focus_state(model, rotation_deg=20.0)
    np.testing.assert_allclose(
        model.expected_intensity(s), tomo.projector.intensity(20.0, 8333.0), atol=0.05
    )


# --- fly-scan angles (pure) --------------------------------------------------------


def test_angles_from_monitor_recovers_a_constant_velocity_move():
    rng = np.random.default_rng(0)
    t_mon = np.concatenate([[0.0], np.arange(1.0, 4.0, 0.05) + rng.uniform(0, 0.01, 60)])
    true = lambda t: np.clip(30.0 * (t - 1.0), 0.0, None)  # noqa: E731  starts at t=1 s
    a_mon = true(t_mon)
    frames = np.sort(rng.uniform(1.05, 3.9, 40))
    recovered = angles_from_monitor(frames, t_mon[::-1], a_mon[::-1])  # order does not matter
    np.testing.assert_allclose(recovered, true(frames), atol=1e-9)
    # a readback quantised to 0.01 deg is recovered to that precision
    coarse = angles_from_monitor(frames, t_mon, np.round(a_mon, 2))
    assert np.max(np.abs(coarse - true(frames))) <= 0.006
    # repeated time stamps keep the last value
    assert angles_from_monitor([1.0], [0.0, 1.0, 1.0, 2.0], [0, 5, 10, 20])[0] == 10.0


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (([1.0], [], []), {}, "at least one"),
        (([1.0], [0.0, 1.0], [0.0]), {}, "as many"),
        (([np.nan], [0.0], [0.0]), {}, "finite"),
        (([10.0], [0.0, 1.0], [0.0, 1.0]), {"max_extrapolation_s": 1.0}, "outside the monitored"),
    ],
)
def test_angles_from_monitor_rejects_bad_input(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        angles_from_monitor(*args, **kwargs)
