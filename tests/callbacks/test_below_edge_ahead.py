"""The below-edge image made while the scan runs gives the particle statistics of the stop.

The live analysis makes the phase map's below-edge image on a helper thread once
the frames below the edge are in (``BelowEdgeAhead``); the particle statistics
must be those of the direct path (the image made from the final stack), whatever
the order of the frames, for runs without frames below the edge and for runs that
end before all of them arrived.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from event_model import RunRouter

from ssb_beamline.analysis.phase_map import below_edge_image
from ssb_beamline.callbacks import xanes_live_factory
from ssb_beamline.callbacks._below_edge import BelowEdgeAhead
from ssb_beamline.callbacks.particles_live import ParticleStatistics
from ssb_beamline.callbacks.xanes_live import MapContext
from ssb_beamline.plans import xanes_scan
from ssb_beamline.reference_data import ni_k_edge_references

#: 4 energies below 8323 eV (the below-edge image), then the edge and the post-edge.
ENERGIES = np.concatenate(
    [np.arange(8300, 8330, 6.0), np.arange(8330, 8362, 1.5), np.arange(8370, 8451, 20.0)]
)


class Both:
    """Post-processor: the particle statistics with the image made ahead, and direct."""

    name = "particles"
    uses_below_edge = True

    def __init__(self) -> None:
        self.runs: list[tuple[object, object, object]] = []

    def __call__(self, maps, context):
        ahead = None if context.below_edge is None else context.below_edge()
        live = ParticleStatistics()(maps, context)
        direct = ParticleStatistics()(maps, dataclasses.replace(context, below_edge=None))
        self.runs.append((ahead, live, direct))
        return live


def _scan(RE, txm, energies, plan_wrapper=lambda plan: plan):
    def focus(e):
        p = txm.focus_positions(e)
        return p.zp_z_mm, p.det_z_mm

    return RE(
        plan_wrapper(
            xanes_scan(
                txm.detector, txm.energy, txm.zp_z, txm.det_z, txm.sample.x, txm.shutter,
                txm.i0, energies, sample_out=txm.sample_out_x_um, focus=focus, n_dark=2,
                exposure_time=0.05, optics={"pixel_size_um": txm.pixel_size_um},
            )
        )
    )  # fmt: skip


def _live(RE, make_txm, energies, plan_wrapper=lambda plan: plan):
    both, outcomes = Both(), []
    factory = xanes_live_factory(ni_k_edge_references(), outcomes=outcomes, post_processors=[both])
    RE.subscribe(RunRouter([factory]))
    try:
        _scan(RE, make_txm(), energies, plan_wrapper)
    except RuntimeError as exc:
        assert "beam lost" in str(exc)
    (outcome,) = outcomes
    return both, outcome


def _assert_same(live, direct):
    assert set(live.arrays) == set(direct.arrays)
    for key, array in direct.arrays.items():
        assert live.arrays[key].dtype == array.dtype, key
        np.testing.assert_array_equal(live.arrays[key], array, err_msg=key)
    assert set(live.tables) == set(direct.tables)
    for key, table in direct.tables.items():
        pd.testing.assert_frame_equal(live.tables[key], table, check_exact=True)
    strip = {"seconds"}
    assert {k: v for k, v in live.metadata.items() if k not in strip} == {
        k: v for k, v in direct.metadata.items() if k not in strip
    }


def _reversed_images(docs: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """The run's documents with its images (event and frame) in reverse energy order."""
    primary = next(d["uid"] for n, d in docs if n == "descriptor" and d["name"] == "primary")
    images = [i for i, (n, d) in enumerate(docs) if d.get("descriptor") == primary]
    frames = {d["seq_nums"]["start"]: d for n, d in docs if n == "stream_datum"
              and d["descriptor"] == primary}  # fmt: skip
    assert all(d["seq_nums"]["stop"] - d["seq_nums"]["start"] == 1 for d in frames.values())
    events = [d for n, d in docs if n == "event" and d["descriptor"] == primary]
    pairs = [[("stream_datum", frames[e["seq_num"]]), ("event", e)] for e in events]
    reordered = [doc for pair in pairs[::-1] for doc in pair]
    return docs[: images[0]] + reordered + [doc for doc in docs[images[0] :]
                                            if doc[1].get("descriptor") != primary]  # fmt: skip


def test_the_image_made_during_the_scan_gives_the_same_particle_statistics(RE, make_txm, docs):
    both, outcome = _live(RE, make_txm, ENERGIES)
    assert outcome.ok, outcome.errors
    ((ahead, live, direct),) = both.runs
    assert ahead is not None  # made while the scan ran, from the 4 frames below the edge
    assert ahead.energies_ev.tolist() == ENERGIES[:4].tolist()
    assert live.metadata["n_particles"] > 0
    assert live.metadata["diffusion"]["phases"]["below_edge_frames"] == 4
    assert "phases" in live.arrays
    _assert_same(live, direct)
    # the same run with its images in reverse energy order: the image is made at the end
    again, outcomes = Both(), []
    router = RunRouter([xanes_live_factory(ni_k_edge_references(), outcomes=outcomes,
                                           post_processors=[again])])  # fmt: skip
    for name, doc in _reversed_images(docs.docs):
        router(name, doc)
    assert outcomes[0].ok, outcomes[0].errors
    ((ahead, live, direct),) = again.runs
    assert ahead is not None
    assert live.metadata["diffusion"]["phases"]["below_edge_frames"] == 4
    _assert_same(live, direct)
    # ... and aborted before its last two images (below the edge): made from the stack
    aborted, outcomes = Both(), []
    router = RunRouter([xanes_live_factory(ni_k_edge_references(), outcomes=outcomes,
                                           post_processors=[aborted])])  # fmt: skip
    reordered = _reversed_images(docs.docs)
    primary = next(d["uid"] for d in docs.of("descriptor") if d["name"] == "primary")
    images = [doc for name, doc in reordered if name == "event" and doc["descriptor"] == primary]
    last_two = {id(doc) for doc in images[-2:]}
    for name, doc in reordered:
        if name == "event" and id(doc) in last_two:
            continue  # their frames arrive, their events never do
        router(name, {**doc, "exit_status": "abort"} if name == "stop" else doc)
    ((ahead, live, direct),) = aborted.runs
    assert ahead is None
    assert live.metadata["diffusion"]["phases"]["below_edge_frames"] == 2
    _assert_same(live, direct)


def test_a_run_without_frames_below_the_edge_reports_phases_unavailable():
    # the XANES maps need frames before the edge; a short scan starting at 8324 eV has none
    # more than 10 eV below it: nothing is made ahead, and the phases are not guessed
    energies = np.linspace(8324, 8400, 8)
    absorbance = np.zeros((8, 64, 64), np.float32)
    ahead = BelowEdgeAhead(energies)
    for index in range(8):
        ahead.add(index, absorbance)
    assert ahead.result() is None
    yy, xx = np.mgrid[:64, :64]
    disc = ((yy - 32) ** 2 + (xx - 32) ** 2) < 15**2
    soc = np.where(disc, 0.4 + 0.002 * xx, np.nan)
    maps = {"edge_step": disc + 0.01 * np.random.default_rng(0).standard_normal((64, 64)),
            "soc": soc, "edge_energy": 8340 + 4 * soc, "mask": disc}  # fmt: skip
    context = MapContext("uid", {"pixel_size_um": 0.1}, energies, absorbance, None, ahead.result)
    result = ParticleStatistics(fill_particles=False)(maps, context)
    assert "below" in result.metadata["diffusion"]["phases"]["reason"]
    assert result.metadata["n_particles"] == 1


def fail_after_images(plan, n):
    """``plan``, failing (RuntimeError) after its ``n``-th image, its clean-up run."""
    stream, images, reply, exc = None, 0, None, None
    while True:
        try:
            msg = plan.send(reply) if exc is None else plan.throw(exc)
        except StopIteration as stop:
            return stop.value
        exc = None
        if msg.command == "create":
            stream = msg.kwargs.get("name")
        reply = yield msg
        if msg.command == "save" and stream == "primary":
            images += 1
            if images == n:
                exc = RuntimeError("beam lost")


def test_a_scan_ending_before_all_frames_below_the_edge_uses_the_frames_it_has(RE, make_txm):
    both, outcome = _live(RE, make_txm, ENERGIES, lambda plan: fail_after_images(plan, 2))
    assert both.runs == []  # too few images for maps: no post-processing, and no error
    assert outcome.errors and "fail" in outcome.errors[0]


def test_a_scan_ending_after_the_frames_below_the_edge_uses_the_image_made(RE, make_txm):
    both, _ = _live(RE, make_txm, ENERGIES, lambda plan: fail_after_images(plan, 30))
    ((ahead, live, direct),) = both.runs
    assert ahead is not None
    assert live.metadata["diffusion"]["phases"]["below_edge_frames"] == 4
    _assert_same(live, direct)


def test_frames_written_again_make_the_image_anew_and_in_any_order():
    energies = np.array([8350.0, 8300.0, 8400.0, 8310.0, 8320.0])
    stack = np.random.default_rng(0).random((5, 6, 7)).astype(np.float32)
    ahead = BelowEdgeAhead(energies)
    for index in (4, 0, 1, 2):
        ahead.add(index, stack)
        assert ahead.result() is None  # 8310 eV not in yet
    ahead.add(3, stack)
    first = ahead.result()
    np.testing.assert_array_equal(first.mean, below_edge_image(stack, energies).mean)
    stack[3] += 1.0  # the 8310 eV frame taken again
    ahead.add(3, stack)
    again = ahead.result()
    assert again is not first
    np.testing.assert_array_equal(again.smooth, below_edge_image(stack, energies).smooth)
    ahead.add(0, stack)  # a frame above the edge changes nothing
    assert ahead.result() is again


def test_a_failure_while_making_it_leaves_it_to_the_stop(caplog):
    ahead = BelowEdgeAhead(np.array([8300.0, 8350.0]))
    ahead.add(0, None)  # no stack: indexing it fails on the helper thread
    assert ahead.result() is None
    assert "not made ahead" in caplog.text
    assert BelowEdgeAhead(np.array([8350.0, 8360.0])).result() is None  # none below the edge
