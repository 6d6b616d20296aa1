"""Live tomography callbacks on a real RunEngine with the simulated microscope (no tiled).

The end-to-end proof against the phantom truth, over the tiled server, is in
``tests/profiles/test_tomo_end_to_end.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from event_model import RunRouter
from ophyd_async.plan_stubs import ensure_connected

from ssb_beamline.callbacks.holo_live import HoloLiveAnalysis, tomo_live_factory
from ssb_beamline.callbacks.tomo_live import TomoLiveAnalysis, jsonable
from ssb_beamline.plans.holotomo import holotomo_scan
from ssb_beamline.plans.tomo import tomo_scan
from ssb_beamline.plans.xanes_tomo import xanes_tomo_scan
from ssb_beamline.sim_devices.factory import DEFAULT_ENERGY_EV
from ssb_beamline.sim_devices.phantom3d import Phantom3DConfig
from ssb_beamline.sim_devices.projection_model import Sphere, SphereProjector
from ssb_beamline.sim_devices.tomo_factory import make_sim_tomo
from ssb_beamline.storage.results import slice_chunks

PX = 0.13
#: Sphere 0 is centred on the rotation axis (at the reconstruction's centre column).
SPHERES = [
    Sphere(0.0, 0.0, 0.0, 0.9, mu_pre_per_um=0.1, mu_post_per_um=0.4),
    Sphere(1.4, -0.6, 0.4, 0.6, mu_pre_per_um=0.2, mu_post_per_um=0.6),
]
OFFSET_PX = 1.5


class RecordingSink:
    """A ResultSink that keeps what it is given."""

    slice_chunks = staticmethod(slice_chunks)  # the store's chunking hint

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def publish(self, run_uid, arrays, *, units, metadata, tables=None, chunks=None) -> str:
        self.calls.append(dict(arrays=arrays, units=units, metadata=metadata, tables=tables,
                               chunks=chunks))  # fmt: skip
        return f"results/{run_uid}/v{len(self.calls)}"


@pytest.fixture
def make_tomo(RE, tmp_path):
    def make(projector=None, **options):
        options.setdefault("rotation_velocity_deg_s", 360.0)
        options.setdefault("rotation_max_velocity_deg_s", 720.0)
        if projector is None and "phantom3d_config" not in options:
            projector = SphereProjector(SPHERES, shape=(24, 48), pixel_size_um=PX,
                                        center_offset_px=OFFSET_PX)  # fmt: skip
        config = options.pop("phantom3d_config", None)
        tomo = make_sim_tomo(config, directory=tmp_path / "detector", projector=projector,
                             **options)  # fmt: skip
        RE(ensure_connected(*tomo.devices))
        return tomo

    return make


def scan(tomo, angles=(0.0, 180.0, 41), **kwargs):
    kwargs.setdefault("exposure_time", 0.01)
    return tomo_scan(tomo.detector, tomo.sample.rotation, tomo.sample.x, tomo.shutter, tomo.i0,
                     angles, sample_out=tomo.sample_out_x_um, n_dark=2, n_flat=3,
                     energy=tomo.energy, pixel_size_um=tomo.pixel_size_um, **kwargs)  # fmt: skip


@pytest.mark.parametrize("mode", ["step", "fly"])
def test_a_tomogram_is_reconstructed_with_its_centre_and_angles(RE, make_tomo, mode):
    tomo = make_tomo()
    sink = RecordingSink()
    live = TomoLiveAnalysis(sink=sink)
    RE.subscribe(live)
    RE(scan(tomo, mode=mode))
    assert live.outcome.ok, live.outcome.errors
    (call,) = sink.calls
    volume = call["arrays"]["attenuation"]
    assert volume.shape == (1, 24, 48, 48)
    assert call["chunks"]["attenuation"] == slice_chunks(volume.shape) == (1, 1, 48, 48)
    assert call["units"]["attenuation"].startswith("1/um")
    assert call["arrays"]["energies"].tolist() == [DEFAULT_ENERGY_EV]
    md = call["metadata"]
    assert md["plan_name"] == "tomo_scan" and md["exit_status"] == "success"
    assert abs(md["rotation_center_px"] - tomo.truth_rotation_center_px()) <= 0.25
    # step: the readbacks; fly: the monitored rotation at each frame's time stamp
    truth = np.sort(tomo.truth_frame_angles()[-41:])
    assert np.allclose(np.sort(md["angles_deg"][0]), truth, atol=0.05)
    # sphere 0 sits on the axis: the middle of the volume holds its attenuation
    core = volume[0, 11:13, 23:25, 23:25]
    mu = SphereProjector(SPHERES).mu_per_um(SPHERES[0], DEFAULT_ENERGY_EV)
    assert abs(core.mean() / mu - 1) < 0.1


class OrderSpy(TomoLiveAnalysis):
    """Records how far the next energy was when an energy's tomogram was complete."""

    seen: list[tuple[int, list[int]]]

    def segment_complete(self, k, angles):
        self.seen = [*getattr(self, "seen", []), (k, list(self.count))]
        super().segment_complete(k, angles)


def test_each_energy_is_reconstructed_before_the_next_one_is_acquired(RE, make_tomo):
    tomo = make_tomo()
    sink = RecordingSink()
    live = OrderSpy(sink=sink)
    RE.subscribe(live)
    energies = [8300.0, 8400.0]
    RE(xanes_tomo_scan(tomo.detector, tomo.energy, tomo.zp_z, tomo.det_z, tomo.sample.rotation,
                       tomo.sample.x, tomo.shutter, tomo.i0, energies, (0.0, 180.0, 37),
                       sample_out=tomo.sample_out_x_um, focus=None, mode="fly", n_dark=2,
                       n_flat=2, exposure_time=0.01, pixel_size_um=PX))  # fmt: skip
    # (two energies are too few for the XANES maps: that error is reported, not raised)
    assert not [e for e in live.outcome.errors if not e.startswith("3D XANES")]
    # tomogram k was handed over before any projection of tomogram k + 1 had arrived
    assert [k for k, _ in live.seen] == [0, 1]
    for k, counts in live.seen[:-1]:
        assert counts[k + 1] == 0
    (call,) = sink.calls
    assert call["arrays"]["attenuation"].shape == (2, 24, 48, 48)
    assert call["arrays"]["energies"].tolist() == energies
    assert abs(call["metadata"]["rotation_center_px"] - tomo.truth_rotation_center_px()) <= 0.25
    # the spheres absorb more above the (tanh) edge at 8345 eV
    centre = call["arrays"]["attenuation"][:, 11:13, 23:25, 23:25].mean(axis=(1, 2, 3))
    assert centre[0] < centre[1]


def test_a_failing_reconstruction_is_recorded_not_raised(RE, make_tomo):
    tomo = make_tomo()

    def broken(*args, **kwargs):
        raise RuntimeError("injected reconstruction failure")

    live = TomoLiveAnalysis(sink=RecordingSink(), reconstruct=broken)
    RE.subscribe(live)
    RE(scan(tomo, mode="step"))
    assert not live.outcome.ok
    assert any("injected reconstruction failure" in e for e in live.outcome.errors)
    assert live.sink.calls == []


def test_a_tomogram_without_its_flat_is_a_clear_error(RE, docs, make_tomo):
    tomo = make_tomo()
    RE(scan(tomo, mode="step"))
    flat = {d["uid"] for d in docs.of("descriptor") if d["name"] == "flat"}
    live = TomoLiveAnalysis(sink=RecordingSink())
    for name, doc in docs.docs:  # replay the run without its flat frames
        if doc.get("descriptor") not in flat:
            live(name, doc)
    assert any("has no flat frame" in e for e in live.outcome.errors)


def test_bad_holotomography_input_is_a_clear_error(RE, docs, make_tomo):
    tomo = make_tomo(mode="holo")
    RE(holotomo_scan(tomo.detector, tomo.sample.rotation, tomo.holo_z, tomo.sample.x,
                     tomo.shutter, tomo.i0, (0.0, 180.0, 13), [10.0], sample_out=30.0,
                     n_dark=1, n_flat=1, exposure_time=0.01, energy=tomo.energy,
                     propagation_distances_m=[0.01]))  # fmt: skip

    def replay(live, strip_distances: bool = False):
        for name, doc in docs.docs:
            if name == "start" and strip_distances:
                tomograms = [{k: v for k, v in t.items() if k != "propagation_distance_m"}
                             for t in doc["tomograms"]]  # fmt: skip
                live(name, {**doc, "tomograms": tomograms})
            else:
                live(name, doc)
        return live.outcome.errors

    # one distance given to the multi-distance CTF
    errors = replay(HoloLiveAnalysis(sink=RecordingSink(), method="ctf", delta_beta=40.0))
    assert any("2+ distances" in e for e in errors), errors
    # no propagation distances in the start document
    errors = replay(HoloLiveAnalysis(sink=RecordingSink(), delta_beta=40.0), True)
    assert any("propagation_distance_m" in e for e in errors), errors
    # Paganin without delta / beta
    errors = replay(HoloLiveAnalysis(sink=RecordingSink()))
    assert any("delta_beta" in e for e in errors), errors


@pytest.mark.parametrize("distances", [[1.0], [1.0, 1.5]])
def test_holotomography_gives_density_and_particles(RE, make_tomo, distances):
    config = Phantom3DConfig(shape=(24, 40, 40), radius_range_um=(0.4, 0.8), n_particles=5,
                             sse_fraction=0.0, carbon_fraction=0.0, seed=3)  # fmt: skip
    tomo = make_tomo(phantom3d_config=config, mode="holo", energy_ev=8000.0,
                     holo_z_mm=1.0)  # fmt: skip
    sink = RecordingSink()
    outcomes = []
    factory = tomo_live_factory(sink=sink, outcomes=outcomes, holo_options={"delta_beta": 40.0})
    RE.subscribe(RunRouter([factory]))
    geometry = tomo.model.holo
    RE(holotomo_scan(tomo.detector, tomo.sample.rotation, tomo.holo_z, tomo.sample.x,
                     tomo.shutter, tomo.i0, (0.0, 180.0, 37), distances,
                     sample_out=tomo.sample_out_x_um, n_dark=1, n_flat=2, exposure_time=0.01,
                     energy=tomo.energy, pixel_size_um=tomo.pixel_size_um,
                     propagation_distances_m=[geometry.effective_distance_m(z) for z in distances],
                     mode="step"))  # fmt: skip
    (outcome,) = outcomes
    assert outcome.errors == [] or all("particle" in e for e in outcome.errors)
    (call,) = sink.calls
    density = call["arrays"]["electron_density"]
    assert density.shape == (24, 40, 40) and np.isfinite(density).all()
    assert call["metadata"]["phase_retrieval"] == ("paganin" if len(distances) == 1 else "ctf")
    assert call["chunks"]["electron_density"] == (1, 40, 40)
    # NMC (~1300 e/nm^3) stands out of the pores; the volume mean is the NMC fraction's
    nmc = tomo.projector.phantom.labels > 0
    assert np.median(density[nmc]) > 900 > np.median(density[~nmc])


def test_metadata_is_made_plain_python():
    md = jsonable({"a": np.float32(1.5), "b": np.arange(3), "c": [np.nan, np.int64(2)]})
    assert md == {"a": 1.5, "b": [0, 1, 2], "c": [None, 2]}
