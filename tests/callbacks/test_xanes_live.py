"""The live XANES callback: correct maps from documents, and failures that never stop a scan."""

from __future__ import annotations

import logging

import numpy as np
from event_model import RunRouter

from ssb_beamline.analysis.scoring import score_map
from ssb_beamline.callbacks import xanes_live_factory
from ssb_beamline.plans import xanes_scan
from ssb_beamline.reference_data import ni_k_edge_references
from ssb_beamline.sim_devices.phantom import PhantomConfig

ENERGIES = np.concatenate(
    [np.arange(8300, 8330, 6.0), np.arange(8330, 8362, 1.5), np.arange(8370, 8451, 20.0)]
)


def run_scan(RE, txm, **kwargs):
    """A 37-energy scan; 0.05 s exposures (2.5x the default counts) for the small particles."""

    def focus(e):
        p = txm.focus_positions(e)
        return p.zp_z_mm, p.det_z_mm

    return RE(
        xanes_scan(
            txm.detector, txm.energy, txm.zp_z, txm.det_z, txm.sample.x, txm.shutter, txm.i0,
            ENERGIES, sample_out=txm.sample_out_x_um, focus=focus, n_dark=2,
            exposure_time=0.05, **kwargs,
        )
    )  # fmt: skip


def test_maps_from_a_live_scan_match_the_truth(RE, make_txm):
    txm = make_txm()
    outcomes = []
    RE.subscribe(RunRouter([xanes_live_factory(ni_k_edge_references(), outcomes=outcomes)]))
    run_scan(RE, txm)
    (outcome,) = outcomes
    assert outcome.ok, outcome.errors
    maps = outcome.maps
    nmc = txm.phantom.labels > 0
    assert maps["edge_energy"].shape == txm.phantom.shape
    # the edge-jump mask finds the particles (not their thinnest rims) and nothing else
    assert maps["mask"][nmc].mean() > 0.75
    assert maps["mask"][~nmc].mean() < 0.02
    scored = nmc & maps["mask"]
    assert score_map(maps["soc"], txm.truth_soc(), scored).rmse < 0.08
    assert len(outcome.ingest_seconds) == ENERGIES.size


def test_interleaved_flats_give_the_same_maps(RE, make_txm):
    txm = make_txm()
    outcomes = []
    RE.subscribe(RunRouter([xanes_live_factory(ni_k_edge_references(), outcomes=outcomes)]))
    run_scan(RE, txm, flat_mode="interleaved")
    assert outcomes[0].ok, outcomes[0].errors
    scored = (txm.phantom.labels > 0) & outcomes[0].maps["mask"]
    assert score_map(outcomes[0].maps["soc"], txm.truth_soc(), scored).rmse < 0.08


class BrokenSink:
    def publish(self, *args, **kwargs):
        raise OSError("disk full")


def test_a_failing_live_analysis_never_stops_the_scan(RE, docs, make_txm, caplog):
    txm = make_txm()
    outcomes = []
    factory = xanes_live_factory(ni_k_edge_references(), sink=BrokenSink(), outcomes=outcomes)
    RE.subscribe(RunRouter([factory]))
    with caplog.at_level(logging.ERROR):
        run_scan(RE, txm)
    assert docs.of("stop")[0]["exit_status"] == "success"
    assert len(docs.events("primary")) == ENERGIES.size
    (outcome,) = outcomes
    assert not outcome.ok
    assert outcome.errors == ["OSError: disk full"]
    assert "the acquisition goes on" in caplog.text


def test_a_run_from_another_plan_is_ignored(RE, make_txm):
    import bluesky.plans as bp

    txm = make_txm()
    outcomes = []
    RE.subscribe(RunRouter([xanes_live_factory(ni_k_edge_references(), outcomes=outcomes)]))
    RE(bp.count([txm.i0], 2))
    assert outcomes == []


def test_bad_references_are_reported_not_raised(RE, docs, make_txm):
    txm = make_txm()
    outcomes = []
    bad_refs = np.ones((2, 3))  # wrong number of energies
    RE.subscribe(RunRouter([xanes_live_factory(bad_refs, outcomes=outcomes)]))
    run_scan(RE, txm)
    assert docs.of("stop")[0]["exit_status"] == "success"
    assert not outcomes[0].ok
    assert outcomes[0].errors and "ValueError" in outcomes[0].errors[0]


class MeanSoc:
    name = "mean_soc"

    def __call__(self, maps, context):
        import pandas as pd

        from ssb_beamline.callbacks.xanes_live import PostResult

        soc = maps["soc"][maps["mask"]]
        table = pd.DataFrame({"n": [soc.size], "soc_mean": [float(np.nanmean(soc))]})
        assert context.absorbance.shape[0] == context.energies.size
        return PostResult(
            arrays={"soc_x2": 2 * maps["soc"]}, units={"soc_x2": "1"},
            tables={"summary": table}, metadata={"frames": int(context.energies.size)},
        )  # fmt: skip


class Broken:
    name = "broken"

    def __call__(self, maps, context):
        raise RuntimeError("segmentation exploded")


class MemorySink:
    def __init__(self):
        self.published = []

    def publish(self, run_uid, arrays, *, units, metadata, tables=None, start=None):
        self.published.append((run_uid, arrays, units, metadata, tables))
        return f"memory/{run_uid}"


def test_post_processors_publish_with_the_maps_and_fail_alone(RE, make_txm):
    txm = make_txm()
    outcomes, sink = [], MemorySink()
    factory = xanes_live_factory(
        ni_k_edge_references(), sink=sink, outcomes=outcomes, post_processors=[Broken(), MeanSoc()]
    )
    RE.subscribe(RunRouter([factory]))
    run_scan(RE, txm)
    (outcome,) = outcomes
    assert outcome.errors == ["broken: RuntimeError: segmentation exploded"]
    ((run_uid, arrays, units, metadata, tables),) = sink.published
    assert run_uid == outcome.run_uid
    assert {"soc", "edge_energy", "soc_x2"} <= set(arrays)
    assert units["soc_x2"] == "1" and metadata["mean_soc"] == {"frames": ENERGIES.size}
    assert tables["summary"]["n"][0] > 0
    assert "broken" not in metadata


def test_a_field_without_particles_fails_clearly_and_publishes_nothing(RE, make_txm):
    """Not a success with maps of noise: the error names the problem and the fix."""
    txm = make_txm(PhantomConfig(shape=(32, 32), n_particles=0))
    outcomes, sink = [], MemorySink()
    RE.subscribe(RunRouter([xanes_live_factory(ni_k_edge_references(), sink=sink,
                                               outcomes=outcomes)]))  # fmt: skip
    run_scan(RE, txm)
    (outcome,) = outcomes
    assert not outcome.ok and outcome.maps is None and not outcome.stored_at
    assert sink.published == []
    (error,) = outcome.errors
    assert "no Ni-containing particles in the field of view" in error, error
    assert "exceeds the noise" in error and "sample is in the beam" in error
