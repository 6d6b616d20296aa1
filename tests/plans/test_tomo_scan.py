"""tomo_scan (step and fly) and xanes_tomo_scan with a real RunEngine on the simulated TXM."""

from __future__ import annotations

import threading
from collections import Counter

import bluesky.plan_stubs as bps
import numpy as np
import pytest
from bluesky.run_engine import call_in_bluesky_event_loop
from bluesky.utils import RunEngineInterrupted
from ophyd.sim import SynAxis
from ophyd_async.plan_stubs import ensure_connected

from ssb_beamline.analysis.fly_angles import angles_from_monitor
from ssb_beamline.plans.tomo import AngleRange, tomo_scan, validate_angles
from ssb_beamline.plans.xanes_tomo import xanes_tomo_scan
from ssb_beamline.sim_devices.projection_model import Sphere, SphereProjector
from ssb_beamline.sim_devices.tomo_factory import make_sim_tomo

SPHERES = [
    Sphere(1.2, 0.4, 0.5, 1.4, mu_pre_per_um=0.15, mu_post_per_um=0.4),
    Sphere(-1.5, -0.8, -1.0, 1.0, mu_pre_per_um=0.1, mu_post_per_um=0.5),
]
STEP_ANGLES = (0.0, 180.0, 13)


def projector(center_offset_px: float = 0.0) -> SphereProjector:
    return SphereProjector(SPHERES, shape=(40, 64), center_offset_px=center_offset_px)


@pytest.fixture
def make_tomo(RE, tmp_path):
    def make(phantom3d_config=None, **options):
        options.setdefault("projector", projector())
        options.setdefault("rotation_velocity_deg_s", 360.0)
        options.setdefault("rotation_max_velocity_deg_s", 720.0)
        tomo = make_sim_tomo(phantom3d_config, directory=tmp_path / "detector", **options)
        RE(ensure_connected(*tomo.devices))
        return tomo

    return make


def scan(tomo, angles=STEP_ANGLES, **kwargs):
    kwargs.setdefault("n_dark", 2)
    kwargs.setdefault("n_flat", 3)
    kwargs.setdefault("exposure_time", 0.01)
    return tomo_scan(
        tomo.detector, tomo.sample.rotation, tomo.sample.x, tomo.shutter, tomo.i0, angles,
        sample_out=tomo.sample_out_x_um, pixel_size_um=tomo.pixel_size_um,
        rotation_center_px=tomo.rotation_center_guess_px, energy=tomo.energy, **kwargs,
    )  # fmt: skip


def value(signal):
    """Current value of an ophyd-async signal (read in the RunEngine's loop)."""
    return call_in_bluesky_event_loop(signal.get_value())


def transmission(stream_data, stream: str = "primary") -> np.ndarray:
    dark = stream_data("dark", "detector").mean(0)
    flat = stream_data("flat", "detector").mean(0)
    return (stream_data(stream, "detector") - dark) / (flat - dark)


def chi2(measured: np.ndarray, expected: np.ndarray, tomo, exposure: float) -> float:
    """Mean squared residual in units of the shot + read noise of each pixel."""
    counts = tomo.model.noise.counts_per_s * exposure * tomo.model.beam_profile
    sigma = np.sqrt(expected * counts + tomo.model.noise.read_noise**2) / counts
    return float(np.mean(((measured - expected) / sigma) ** 2))


@pytest.mark.parametrize("sample", ["spheres", "phantom"])
def test_step_scan_streams_documents_and_frames(RE, docs, make_tomo, sample, stream_data):
    if sample == "phantom":
        phantom3d = pytest.importorskip("ssb_beamline.sim_devices.phantom3d")
        config = phantom3d.Phantom3DConfig(shape=(40, 48, 64), n_particles=8, seed=3)
        tomo = make_tomo(projector=None, phantom3d_config=config)
        assert type(tomo.projector).__name__ == "PhantomProjector"
    else:
        tomo = make_tomo()
    RE(scan(tomo, md={"operator": "test"}))
    (start,) = docs.of("start")
    angles = np.linspace(*STEP_ANGLES[:2], STEP_ANGLES[2])
    assert start["plan_name"] == "tomo_scan" and start["mode"] == "step"
    assert start["angles_deg"] == pytest.approx(angles.tolist())
    assert start["plan_args"]["angles"] == start["angles_deg"]
    assert start["pixel_size_um"] == tomo.pixel_size_um
    assert start["rotation_center_guess_px"] == 31.5
    assert start["energy_ev"] == pytest.approx(8333.0) and start["operator"] == "test"
    assert start["hints"] == {"dimensions": [(["sample_rotation"], "primary")]}
    counts = Counter(d["name"] for d in docs.of("descriptor"))
    assert counts == {"dark": 1, "flat": 1, "primary": 1, "baseline": 1}
    assert (len(docs.events("dark")), len(docs.events("flat"))) == (2, 3)
    primary = docs.events("primary")
    np.testing.assert_allclose([e["data"]["sample_rotation"] for e in primary], angles)
    # one file (frames + time stamps: two StreamResources) per stream
    assert len(docs.of("stream_resource")) == 6
    indices = [d["indices"]["stop"] - d["indices"]["start"] for d in docs.of("stream_datum")]
    assert sum(indices) == 2 * (2 + 3 + 13)
    # flat-normalised frames match the projector within the noise
    measured = transmission(stream_data)
    expected = np.stack([tomo.projector.intensity(a, 8333.0) for a in angles])
    assert expected.min() < (0.75 if sample == "spheres" else 0.95)  # the sample is there
    assert chi2(measured, expected, tomo, 0.01) < 2.0
    assert abs(np.mean(measured - expected)) < 0.005
    assert value(tomo.sample.x.user_readback) == 0.0  # the sample is back in
    assert docs.of("stop")[0]["exit_status"] == "success"


def test_fly_scan_recovers_the_angles_from_the_monitored_rotation(
    RE, docs, make_tomo, stream_data, assert_follows_commanded
):
    tomo = make_tomo(rotation_velocity_deg_s=90.0)
    angles = AngleRange(0.0, 180.0, 41)
    RE(scan(tomo, angles, mode="fly", exposure_time=0.03, deadtime=0.01))
    (start,) = docs.of("start")
    assert start["mode"] == "fly" and start["monitor_stream"] == "rotation_monitor"
    assert start["rotation_velocity_deg_s"] == pytest.approx(4.5 / 0.04)
    assert {d["name"] for d in docs.of("descriptor")} >= {"primary", "rotation_monitor"}
    assert docs.events("primary") == []  # frames arrive as StreamDatum only
    stamps = stream_data("primary", start["timestamp_key"])
    assert stamps.shape == (41,)
    monitor = docs.events("rotation_monitor")
    assert len(monitor) > 41
    key = start["monitor_key"]
    recovered = angles_from_monitor(
        stamps, [e["timestamps"][key] for e in monitor], [e["data"][key] for e in monitor]
    )
    truth = tomo.truth_frame_angles()[-41:]
    assert np.max(np.abs(recovered - truth)) < 0.1  # deg
    assert_follows_commanded(recovered, np.linspace(0.0, 180.0, 41), start["rotation_travel_deg"])
    # the frames show the sample at the recovered angles; the speed is restored
    measured = transmission(stream_data)
    expected = np.stack([tomo.projector.intensity(a, 8333.0) for a in recovered])
    assert chi2(measured, expected, tomo, 0.03) < 2.5
    assert value(tomo.sample.rotation.velocity) == 90.0
    assert docs.of("stop")[0]["exit_status"] == "success"


def test_step_scan_with_a_classic_ophyd_rotation(RE, docs, make_tomo):
    tomo = make_tomo()
    rot = SynAxis(name="rot")
    tomo.detector.sources.rotation = rot  # the camera now sees the classic axis
    plan = tomo_scan(tomo.detector, rot, tomo.sample.x, tomo.shutter, tomo.i0, [0, 60, 120, 180],
                     sample_out=tomo.sample_out_x_um, n_dark=1, n_flat=1)  # fmt: skip
    RE(plan)
    primary = docs.events("primary")
    np.testing.assert_allclose([e["data"]["rot"] for e in primary], [0, 60, 120, 180])
    np.testing.assert_allclose(tomo.truth_frame_angles()[-4:], [0, 60, 120, 180])


def test_deferred_pause_and_resume_do_not_duplicate_points(RE, docs, make_tomo):
    tomo = make_tomo()
    requested = threading.Event()

    def pause_after_third(name, doc):
        if name == "event" and doc["seq_num"] == 3 and not requested.is_set():
            requested.set()
            threading.Thread(target=RE.request_pause, kwargs={"defer": True}).start()

    RE.subscribe(pause_after_third)
    with pytest.raises(RunEngineInterrupted):
        RE(scan(tomo, n_flat=1, n_dark=1))
    assert RE.state == "paused"
    RE.resume()
    primary = docs.events("primary")
    rotations = [e["data"]["sample_rotation"] for e in primary]
    np.testing.assert_allclose(rotations, np.linspace(0, 180, 13))
    assert [e["seq_num"] for e in primary] == list(range(1, 14))
    assert docs.of("stop")[0]["exit_status"] == "success"


@pytest.mark.parametrize(
    ("angles", "kwargs", "message"),
    [
        ((0.0, 90.0, 31), {}, "needs at least 180 deg"),
        ([0.0, 90.0, 90.0, 180.0], {}, "listed twice"),
        ([0.0], {}, "at least 2 angles"),
        (STEP_ANGLES, {"exposure_time": 0.0}, "exposure_time must be a positive"),
        (STEP_ANGLES, {"exposure_time": -0.1}, "exposure_time must be a positive"),
        (STEP_ANGLES, {"n_dark": 0}, "n_dark must be an integer >= 1"),
        (STEP_ANGLES, {"n_flat": 0}, "n_flat must be an integer >= 1"),
        (STEP_ANGLES, {"mode": "spiral"}, "mode must be"),
        ([0.0, 10.0, 100.0, 180.0], {"mode": "fly"}, "evenly spaced"),
        (STEP_ANGLES, {"mode": "fly", "exposure_time": None}, "need an exposure_time"),
        (STEP_ANGLES, {"mode": "fly", "deadtime": -1.0}, "deadtime >= 0"),
    ],
)
def test_bad_arguments_fail_when_the_plan_is_built(make_tomo, angles, kwargs, message):
    tomo = make_tomo()
    with pytest.raises(ValueError, match=message):
        scan(tomo, angles, **kwargs)


@pytest.mark.parametrize(
    ("angles", "kwargs", "message"),
    [
        ((0.0, 400.0, 21), {}, "outside its limits"),
        ((-360.0, -180.0, 21), {"mode": "fly", "exposure_time": 0.05}, "fly run-up"),
        ((0.0, 180.0, 21), {"mode": "fly", "exposure_time": 0.001}, "above the maximum"),
    ],
)
def test_bad_positions_fail_before_anything_moves(RE, docs, make_tomo, angles, kwargs, message):
    tomo = make_tomo()
    RE(bps.mv(tomo.sample.rotation, 12.0))
    kwargs.setdefault("exposure_time", 0.01)
    with pytest.raises(ValueError, match=message):
        RE(scan(tomo, angles, **kwargs))
    assert docs.of("start") == []
    assert tomo.sample.rotation.position_now() == 12.0
    assert validate_angles((0, 180, 3)).tolist() == [0.0, 90.0, 180.0]


def xanes_tomo(tomo, energies, angles, **kwargs):
    def focus(e):
        fp = tomo.focus_positions(e)
        return fp.zp_z_mm, fp.det_z_mm

    return xanes_tomo_scan(
        tomo.detector, tomo.energy, tomo.zp_z, tomo.det_z, tomo.sample.rotation, tomo.sample.x,
        tomo.shutter, tomo.i0, energies, angles, sample_out=tomo.sample_out_x_um, focus=focus,
        n_dark=1, n_flat=2, **kwargs,
    )  # fmt: skip


def test_xanes_tomo_step_tells_energies_apart_and_tracks_focus(RE, docs, make_tomo, stream_data):
    tomo = make_tomo()
    RE(bps.mv(tomo.energy.velocity, 1000.0, tomo.zp_z.velocity, 50.0))
    energies = [8300.0, 8345.0, 8400.0]
    angles = (0.0, 180.0, 5)
    RE(xanes_tomo(tomo, energies, angles, exposure_time=0.01))
    (start,) = docs.of("start")
    assert start["plan_name"] == "xanes_tomo_scan" and start["energies_ev"] == energies
    assert [t["energy_ev"] for t in start["tomograms"]] == energies
    primary, flat = docs.events("primary"), docs.events("flat")
    assert len(primary) == 15 and len(flat) == 6
    np.testing.assert_allclose([e["data"]["energy"] for e in primary], np.repeat(energies, 5))
    np.testing.assert_allclose([e["data"]["energy"] for e in flat], np.repeat(energies, 2))
    zigzag = [e["data"]["sample_rotation"] for e in primary[5:10]]
    np.testing.assert_allclose(zigzag, [180, 135, 90, 45, 0])
    # the edge: the frames absorb more above it; focus followed the energy
    dark = stream_data("dark", "detector").mean(0)
    flats = stream_data("flat", "detector").reshape(3, 2, 40, 64).mean(1)
    frames = stream_data("primary", "detector").reshape(3, 5, 40, 64)
    t = (frames[:, 0] - dark) / (flats - dark)
    assert t[2].min() < t[0].min() - 0.1
    assert value(tomo.zp_z.user_readback) == pytest.approx(tomo.focus_positions(8400.0).zp_z_mm)
    assert docs.of("stop")[0]["exit_status"] == "success"


def test_xanes_tomo_fly_collects_one_stream_per_energy(
    RE, docs, make_tomo, stream_data, assert_follows_commanded
):
    tomo = make_tomo(rotation_velocity_deg_s=120.0)
    RE(
        xanes_tomo(
            tomo, [8300.0, 8400.0], (0.0, 180.0, 19), mode="fly", exposure_time=0.03, deadtime=0.01
        )
    )
    (start,) = docs.of("start")
    streams = [t["stream"] for t in start["tomograms"]]
    assert streams == ["primary_000", "primary_001"]
    for tomogram in start["tomograms"]:
        stamps = stream_data(tomogram["stream"], start["timestamp_key"])
        monitor = docs.events(tomogram["monitor_stream"])
        key = start["monitor_key"]
        recovered = angles_from_monitor(
            stamps, [e["timestamps"][key] for e in monitor], [e["data"][key] for e in monitor]
        )
        assert_follows_commanded(recovered, tomogram["angles_deg"], tomogram["rotation_travel_deg"])
    # the second tomogram ran backwards (zigzag)
    assert start["tomograms"][1]["angles_deg"][0] == 180.0
    assert value(tomo.sample.rotation.velocity) == 120.0
