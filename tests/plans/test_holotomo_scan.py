"""holotomo_scan with a real RunEngine on the simulated holotomography microscope."""

from __future__ import annotations

import numpy as np
import pytest
from bluesky.run_engine import call_in_bluesky_event_loop
from ophyd_async.plan_stubs import ensure_connected

from ssb_beamline.analysis.fly_angles import angles_from_monitor
from ssb_beamline.plans.holotomo import holotomo_scan, validate_distances
from ssb_beamline.sim_devices.projection_model import HoloGeometry, Sphere, SphereProjector
from ssb_beamline.sim_devices.tomo_factory import make_sim_tomo

DISTANCES = [2.0, 2.6, 3.5]  # focus-to-sample, mm
ANGLES = (0.0, 180.0, 5)
SPHERES = [Sphere(1.0, 0.5, 0.3, 1.3, mu_pre_per_um=0.1, phase_per_um=0.6),
           Sphere(-1.6, -0.6, -0.8, 0.9, mu_pre_per_um=0.05, phase_per_um=0.4)]  # fmt: skip


@pytest.fixture
def make_holo(RE, tmp_path):
    def make(projector=None, phantom3d_config=None, **options):
        if projector is None and phantom3d_config is None:
            projector = SphereProjector(SPHERES, shape=(40, 64))
        options.setdefault("rotation_velocity_deg_s", 360.0)
        options.setdefault("rotation_max_velocity_deg_s", 720.0)
        tomo = make_sim_tomo(
            phantom3d_config, directory=tmp_path / "detector", projector=projector, mode="holo",
            holo=HoloGeometry(1.2), **options,
        )  # fmt: skip
        RE(ensure_connected(*tomo.devices))
        return tomo

    return make


def scan(tomo, distances=DISTANCES, angles=ANGLES, **kwargs):
    kwargs.setdefault("n_dark", 2)
    kwargs.setdefault("n_flat", 2)
    kwargs.setdefault("exposure_time", 0.01)
    valid = all(np.isfinite(distances)) if len(distances) else False
    z_eff = [tomo.model.holo.effective_distance_m(d) for d in distances] if valid else None
    return holotomo_scan(
        tomo.detector, tomo.sample.rotation, tomo.holo_z, tomo.sample.x, tomo.shutter, tomo.i0,
        angles, distances, sample_out=tomo.sample_out_x_um, energy=tomo.energy,
        propagation_distances_m=z_eff, pixel_size_um=tomo.pixel_size_um,
        rotation_center_px=tomo.rotation_center_guess_px, **kwargs,
    )  # fmt: skip


def normalised(stream_data, n_dist: int, n_flat: int, n_angles: int) -> np.ndarray:
    """Flat-field-corrected frames ``(distance, angle, Z, X)``, flats of their distance."""
    dark = stream_data("dark", "detector").mean(0)
    flats = stream_data("flat", "detector")
    flats = flats.reshape(n_dist, n_flat, *flats.shape[1:]).mean(1)
    frames = stream_data("primary", "detector")
    frames = frames.reshape(n_dist, n_angles, *frames.shape[1:])
    return (frames - dark) / (flats - dark)[:, None]


def test_streams_fields_and_start_document(RE, docs, make_holo):
    tomo = make_holo()
    RE(scan(tomo))
    (start,) = docs.of("start")
    assert start["plan_name"] == "holotomo_scan" and start["distances_mm"] == DISTANCES
    assert start["num_distances"] == 3 and start["num_angles"] == 5
    assert start["propagation_distances_m"] == pytest.approx(
        [d * 1e-3 * (1.2 - d * 1e-3) / 1.2 for d in DISTANCES]
    )
    assert start["hints"]["dimensions"] == [
        (["holo_z"], "primary"),
        (["sample_rotation"], "primary"),
    ]
    assert start["energy_ev"] == pytest.approx(8333.0)
    assert [t["holo_z"] for t in start["tomograms"]] == DISTANCES
    assert len(docs.events("dark")) == 2
    flat, primary = docs.events("flat"), docs.events("primary")
    assert len(flat) == 6 and len(primary) == 15
    np.testing.assert_allclose([e["data"]["holo_z"] for e in flat], np.repeat(DISTANCES, 2))
    np.testing.assert_allclose([e["data"]["holo_z"] for e in primary], np.repeat(DISTANCES, 5))
    rotations = [e["data"]["sample_rotation"] for e in primary]
    np.testing.assert_allclose(rotations[5:10], [180, 135, 90, 45, 0])  # zigzag
    assert call_in_bluesky_event_loop(tomo.sample.x.user_readback.get_value()) == 0.0
    assert docs.of("stop")[0]["exit_status"] == "success"


def test_frames_are_the_holograms_of_each_distance(RE, docs, make_holo, stream_data):
    tomo = make_holo()
    RE(scan(tomo, exposure_time=0.02))
    measured = normalised(stream_data, 3, 2, 5)
    angles = np.linspace(0, 180, 5)
    counts = tomo.model.noise.counts_per_s * 0.02 * tomo.model.beam_profile
    for k, d in enumerate(DISTANCES):
        z_eff = tomo.model.holo.effective_distance_m(d)
        for j in (0, 2):
            angle = angles[j] if k % 2 == 0 else angles[::-1][j]
            expected = tomo.projector.intensity(angle, 8333.0, z_eff)
            sigma = np.sqrt(expected * counts + 9.0) / counts
            chi2 = np.mean(((measured[k, j] - expected) / sigma) ** 2)
            assert chi2 < 2.5, (d, angle, chi2)
    # Fresnel fringes: above 1 near the edges, and they change with the distance
    assert measured[0, 0].max() > 1.05
    noise = np.std(measured[0, 0][:, :4])
    assert np.std(measured[2, -1] - measured[0, 0]) > 3 * noise  # same angle (0 deg)


def test_with_the_phantom_projector(RE, docs, make_holo, stream_data):
    phantom3d = pytest.importorskip("ssb_beamline.sim_devices.phantom3d")
    config = phantom3d.Phantom3DConfig(shape=(24, 48, 48), n_particles=6, seed=2)
    tomo = make_holo(phantom3d_config=config)
    assert type(tomo.projector).__name__ == "PhantomProjector"
    RE(scan(tomo, distances=[2.0, 3.0], angles=(0.0, 180.0, 4), exposure_time=0.02))
    measured = normalised(stream_data, 2, 2, 4)
    counts = tomo.model.noise.counts_per_s * 0.02 * tomo.model.beam_profile
    z_eff = tomo.model.holo.effective_distance_m(3.0)
    expected = tomo.projector.intensity(180.0, 8333.0, z_eff)  # second distance runs backwards
    sigma = np.sqrt(expected * counts + 9.0) / counts
    assert np.mean(((measured[1, 0] - expected) / sigma) ** 2) < 2.5
    assert np.ptp(expected) > 0.1  # the phantom shows phase contrast


def test_fly_holotomography_collects_one_stream_per_distance(
    RE, docs, make_holo, stream_data, assert_follows_commanded
):
    tomo = make_holo(rotation_velocity_deg_s=180.0)
    RE(scan(tomo, distances=[2.0, 3.0], angles=(0.0, 180.0, 19), mode="fly", exposure_time=0.03,
            deadtime=0.01))  # fmt: skip
    (start,) = docs.of("start")
    key = start["monitor_key"]
    for tomogram in start["tomograms"]:
        stamps = stream_data(tomogram["stream"], start["timestamp_key"])
        assert stamps.shape == (19,)
        monitor = docs.events(tomogram["monitor_stream"])
        recovered = angles_from_monitor(
            stamps, [e["timestamps"][key] for e in monitor], [e["data"][key] for e in monitor]
        )
        assert_follows_commanded(recovered, tomogram["angles_deg"], tomogram["rotation_travel_deg"])
        truth = tomo.truth_frame_angles()
        assert np.min(np.abs(truth[:, None] - recovered[None, :]), axis=0).max() < 0.1
    assert len(docs.events("flat")) == 4
    assert docs.of("stop")[0]["exit_status"] == "success"


@pytest.mark.parametrize(
    ("distances", "kwargs", "message"),
    [
        ([], {}, "1 to 4 propagation distances, got 0"),
        ([2.0, 3.0, 4.0, 5.0, 6.0], {}, "1 to 4 propagation distances, got 5"),
        ([2.0, 2.0], {}, "distinct"),
        ([2.0, np.nan], {}, "finite"),
        (DISTANCES, {"angles": (0.0, 120.0, 9)}, "needs at least 180 deg"),
        (DISTANCES, {"exposure_time": 0.0}, "exposure_time must be a positive"),
        (DISTANCES, {"n_flat": 0}, "n_flat must be"),
    ],
)
def test_bad_arguments_fail_when_the_plan_is_built(make_holo, distances, kwargs, message):
    tomo = make_holo()
    with pytest.raises(ValueError, match=message):
        scan(tomo, distances, **kwargs)


def test_distances_outside_the_limits_fail_before_anything_moves(RE, docs, make_holo):
    tomo = make_holo(holo_z_mm=2.0)
    with pytest.raises(ValueError, match="holo_z would move to 150"):
        RE(holotomo_scan(tomo.detector, tomo.sample.rotation, tomo.holo_z, tomo.sample.x,
                         tomo.shutter, tomo.i0, ANGLES, [2.0, 150.0],
                         sample_out=tomo.sample_out_x_um))  # fmt: skip
    assert docs.of("start") == []
    assert call_in_bluesky_event_loop(tomo.holo_z.user_readback.get_value()) == 2.0
    assert validate_distances(np.array([3, 4])) == [3.0, 4.0]
