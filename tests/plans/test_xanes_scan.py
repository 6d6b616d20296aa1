"""xanes_scan with a real RunEngine on the simulated TXM (and a classic ophyd axis)."""

from __future__ import annotations

import bluesky.plan_stubs as bps
import numpy as np
import pytest
from ophyd.sim import SynAxis
from scipy import ndimage

from ssb_beamline.callbacks.frames import HDF5FrameResolver
from ssb_beamline.plans import xanes_scan

ENERGIES = [8300.0, 8330.0, 8340.0, 8350.0, 8400.0, 8450.0]


def focus_of(txm):
    def focus(energy_ev):
        p = txm.focus_positions(energy_ev)
        return p.zp_z_mm, p.det_z_mm

    return focus


def scan(txm, energies=ENERGIES, **kwargs):
    kwargs.setdefault("focus", focus_of(txm))
    kwargs.setdefault("n_dark", 2)
    return xanes_scan(
        txm.detector, txm.energy, txm.zp_z, txm.det_z, txm.sample.x, txm.shutter, txm.i0,
        energies, sample_out=txm.sample_out_x_um, **kwargs,
    )  # fmt: skip


def frames(docs, stream):
    """Frames of one stream, read from the detector's HDF5 files via the documents."""
    resolver = HDF5FrameResolver()
    descriptors = {d["uid"] for d in docs.of("descriptor") if d["name"] == stream}
    out = []
    for name, doc in docs.docs:
        if name == "stream_resource":
            resolver.stream_resource(doc)
        elif name == "stream_datum" and doc["descriptor"] in descriptors:
            out.append(resolver.frames(doc))
    resolver.close()
    return np.concatenate(out).astype(np.float64)


def test_streams_counts_and_start_document(RE, docs, make_txm):
    txm = make_txm()
    RE(
        scan(
            txm,
            exposure_time=0.01,
            sample={"name": "test cathode"},
            optics={"pixel_size_um": 0.13, "magnification": 50},
        )
    )
    (start,) = docs.of("start")
    assert start["plan_name"] == "xanes_scan"
    assert start["plan_args"]["energies"] == ENERGIES
    assert start["energies_ev"] == ENERGIES
    assert (start["element"], start["edge"]) == ("Ni", "K")
    assert start["sample"] == {"name": "test cathode"}
    assert start["pixel_size_um"] == 0.13 and start["magnification"] == 50
    assert start["hints"] == {"dimensions": [([start["energy_key"]], "primary")]}
    assert start["detector_key"] == txm.detector.name
    assert len(docs.events("dark")) == 2
    assert len(docs.events("flat")) == len(ENERGIES)
    assert len(docs.events("primary")) == len(ENERGIES)
    assert len(docs.events("baseline")) == 2
    recorded = [e["data"][start["energy_key"]] for e in docs.events("primary")]
    np.testing.assert_allclose(recorded, ENERGIES)
    # flats in a first pass, images in a second: one HDF5 file (StreamResource) a stream
    assert len(docs.of("stream_resource")) == 3
    assert start["flat_mode"] == "pass"
    assert docs.of("stop")[0]["exit_status"] == "success"


def test_dark_flat_and_image_frames_differ_as_they_should(RE, docs, make_txm):
    txm = make_txm()
    RE(scan(txm))
    dark, flat, image = frames(docs, "dark"), frames(docs, "flat"), frames(docs, "primary")
    assert dark.shape[1:] == flat.shape[1:] == image.shape[1:] == txm.phantom.shape
    assert dark.mean() < 0.05 * flat.mean()  # shutter closed: offset and read noise only
    inside = txm.phantom.labels > 0
    transmission = (image - dark.mean(0)) / (flat - dark.mean(0))
    assert np.median(transmission[-1][inside]) < 0.9 < np.median(transmission[-1][~inside])


def test_flat_every_k_energies(RE, docs, make_txm):
    txm = make_txm()
    RE(scan(txm, flat_every=2))
    assert len(docs.events("flat")) == 3
    assert len(docs.events("primary")) == len(ENERGIES)


def test_interleaved_flats_come_just_before_their_image(RE, docs, make_txm):
    txm = make_txm()
    RE(scan(txm, flat_mode="interleaved"))
    streams = {d["uid"]: d["name"] for d in docs.of("descriptor")}
    order = [streams[e["descriptor"]] for e in docs.of("event")]
    measured = [s for s in order if s in ("flat", "primary")]
    assert measured == ["flat", "primary"] * len(ENERGIES)
    # the detector is restaged at each switch: one file per stream segment
    assert len(docs.of("stream_resource")) == 1 + 2 * len(ENERGIES)


def test_energy_outside_limits_fails_before_anything_moves(RE, docs, make_txm):
    txm = make_txm()
    before = RE(_read_energy(txm))
    with pytest.raises(ValueError, match="outside its limits"):
        RE(scan(txm, energies=[4000.0, 8330.0, 8350.0]))
    assert docs.of("start") == []
    assert RE(_read_energy(txm)) == before


def test_focus_outside_limits_fails_before_anything_moves(RE, docs, make_txm):
    txm = make_txm()
    with pytest.raises(ValueError, match="zp_z would move to"):
        RE(scan(txm, focus=lambda e: (500.0, 2500.0)))
    assert docs.of("start") == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"exposure_time": 0.0}, "exposure_time must be a positive"),
        ({"exposure_time": -1.0}, "exposure_time must be a positive"),
        ({"n_dark": 0}, "n_dark must be >= 1"),
        ({"flat_every": 0}, "flat_every must be >= 1"),
        ({"energies": []}, "empty"),
        ({"energies": [8300.0, 8300.0]}, "listed twice"),
        ({"energies": [8350.0, 8300.0]}, "strictly increasing"),
    ],
)
def test_bad_arguments_fail_when_the_plan_is_built(make_txm, kwargs, message):
    txm = make_txm()
    with pytest.raises(ValueError, match=message):
        scan(txm, **kwargs)


def test_runs_with_a_classic_ophyd_axis(RE, docs, make_txm):
    txm = make_txm()
    zp_classic = SynAxis(name="zp_classic")
    zp_classic.set(txm.zp_z_position_now if hasattr(txm, "zp_z_position_now") else 50.0).wait()
    txm.detector.sources.zp_z = zp_classic  # the camera now sees the classic axis
    plan = xanes_scan(
        txm.detector, txm.energy, zp_classic, txm.det_z, txm.sample.x, txm.shutter, txm.i0,
        ENERGIES, sample_out=txm.sample_out_x_um, focus=focus_of(txm), n_dark=1,
    )  # fmt: skip
    RE(plan)
    primary = docs.events("primary")
    assert len(primary) == len(ENERGIES)
    expected = [focus_of(txm)(e)[0] for e in ENERGIES]
    np.testing.assert_allclose([e["data"]["zp_classic"] for e in primary], expected)


def sharpness(image: np.ndarray) -> float:
    """Mean squared gradient (at 1.5 px, above the shot noise) of a frame: falls with blur."""
    return float(np.mean(ndimage.gaussian_gradient_magnitude(image, 1.5) ** 2))


def transmission_frames(docs) -> np.ndarray:
    dark = frames(docs, "dark").mean(0)
    return (frames(docs, "primary") - dark) / (frames(docs, "flat") - dark)


def test_focus_tracking_keeps_frames_sharp(RE, docs, make_txm):
    txm = make_txm(energy_ev=8375.0)  # in focus mid-scan
    energies = [8300.0, 8375.0, 8450.0]
    RE(scan(txm, energies=energies))
    tracked = transmission_frames(docs)
    docs.docs.clear()
    zp, det = focus_of(txm)(8375.0)
    RE(bps.mv(txm.zp_z, zp, txm.det_z, det))
    RE(scan(txm, energies=energies, focus=None))
    untracked = transmission_frames(docs)
    # mid-scan both are in focus; 75 eV away only the tracked frames stay sharp
    assert sharpness(untracked[1]) == pytest.approx(sharpness(tracked[1]), rel=0.15)
    # a 4.3 px defocus blur halves the gradient energy of particle edges at 1.5 px
    for i in (0, 2):
        assert sharpness(untracked[i]) < 0.6 * sharpness(tracked[i])


def _read_energy(txm):
    def plan():
        return (yield from bps.rd(txm.energy))

    return plan()
