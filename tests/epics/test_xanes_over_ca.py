"""The XANES demo over Channel Access against the real simulated TXM IOC.

The IOC (a caproto subprocess) images a 256 x 256 px phantom (seed 0, the IOC's
``--size 256``) instead of the default 512 x 512, so that the demo's 41-energy
"standard" scan takes about a minute and a half; the maps are scored against that
phantom's truth exactly as the demo scores the in-process run. Smaller phantoms
(64, 128 px: smaller particles, more partial-volume pixels) miss the SOC goal in
process too (RMSE 0.071, 0.061), as does the coarser 21-energy "quick" grid the
edge goal (median |dE| 0.86 eV).
"""

from __future__ import annotations

import bluesky.plan_stubs as bps
import numpy as np
import pytest
from bluesky.run_engine import call_in_bluesky_event_loop

from ssb_beamline.analysis.scoring import score_map
from ssb_beamline.devices.shutter import ShutterState
from ssb_beamline.plans.energy_grids import ni_k_edge_grid
from ssb_beamline.profiles.demo_epics import PhantomTruth
from ssb_beamline.profiles.replay import replay_runs
from ssb_beamline.sim_devices.ioc import running_sim_ioc
from ssb_beamline.sim_devices.ioc.frames import txm_phantom_config
from ssb_beamline.sim_devices.phantom import make_phantom
from ssb_beamline.storage import read_results, result_versions

from .conftest import IOC_SEED, open_session

pytestmark = pytest.mark.slow


#: Phantom size of this module's IOC, px.
IOC_SIZE = 256


@pytest.fixture(scope="module")
def sim_ioc(epics_store):
    """A 256 px simulated TXM IOC (overrides the 64 px one of conftest)."""
    args = ["--size", str(IOC_SIZE), "--phantom-seed", str(IOC_SEED)]
    with running_sim_ioc(data_dir=epics_store.detector_dir, args=args) as ioc:
        yield ioc


@pytest.fixture(scope="module")
def ca_run(sim_ioc, epics_store):
    session = open_session(sim_ioc, epics_store)
    (uid,) = session.run(session.xanes("standard", n_dark=3))
    yield session, uid
    session.close()


def test_maps_over_ca_match_the_phantom_truth(ca_run):
    session, uid = ca_run
    outcome = session.outcomes[-1]
    assert outcome.ok, outcome.errors
    truth = PhantomTruth(make_phantom(txm_phantom_config(IOC_SIZE, IOC_SEED)))
    stored = read_results(session.store.results, uid)
    nmc = truth.phantom.labels > 0
    edge = score_map(stored.arrays["edge_energy"], truth.truth_edge_energy_map(), nmc)
    soc = score_map(stored.arrays["soc"], truth.truth_soc(), nmc)
    assert edge.median_abs_error < 0.3, edge
    assert soc.rmse < 0.05, soc


def test_raw_frames_and_ca_sources_are_in_tiled(ca_run, sim_ioc):
    session, uid = ca_run
    run = session.store.raw[uid]
    start = run.metadata["start"]
    assert start["detector_key"] == "detector" and start["energy_key"] == "energy"
    for stream, n in {"dark": 3, "flat": 41, "primary": 41}.items():
        frames = run[stream]["detector"].read()
        assert frames.shape == (n, IOC_SIZE, IOC_SIZE) and frames.dtype == np.uint16
    energies = run["primary"]["energy"].read()
    np.testing.assert_allclose(energies, ni_k_edge_grid("standard"), atol=0.01)
    keys = run["primary"].metadata["data_keys"]
    assert keys["energy"]["source"] == f"ca://{sim_ioc.prefix}Mono:Energy.RBV"
    assert keys["i0_flux"]["source"] == f"ca://{sim_ioc.prefix}I0:Counts"
    assert keys["detector"]["source"].startswith("file://")
    assert run.metadata["stop"]["exit_status"] == "success"


def test_replay_from_tiled_is_bit_identical_to_live(ca_run):
    session, uid = ca_run
    (outcome,) = replay_runs(session.store, [uid], fill="always")
    assert outcome.ok, outcome.errors
    live = read_results(session.store.results, uid, "v1")
    replayed = read_results(session.store.results, uid, result_versions(session.store.results,
                                                                        uid)[-1])  # fmt: skip
    assert replayed.metadata["source"] == "replay"
    assert set(replayed.arrays) == set(live.arrays)
    for key, array in live.arrays.items():
        np.testing.assert_array_equal(replayed.arrays[key], array, err_msg=key)


def test_shutter_is_closed_after_the_run(ca_run):
    session, _ = ca_run
    assert _get(session.txm.shutter.state) == ShutterState.CLOSED


def test_energy_outside_the_epics_limits_is_refused_before_anything_moves(ca_run, sim_ioc):
    session, _ = ca_run
    txm = session.txm
    hlm = txm.energy.high_limit_travel
    session.RE(bps.mv(hlm, 8400.0))  # the IOC's HLM, as a beamline scientist would set it
    try:
        before = _get(txm.energy.user_readback), _get(txm.zp_z.user_readback)
        with pytest.raises(ValueError) as info:
            session.run(session.xanes([8300.0, 8350.0, 8450.0]))
        message = str(info.value)
        assert f"{sim_ioc.prefix}Mono:Energy.HLM" in message
        assert "8400" in message and "8450" in message and "nothing has moved" in message
        assert (_get(txm.energy.user_readback), _get(txm.zp_z.user_readback)) == before
    finally:
        session.RE(bps.mv(hlm, 11000.0))


def _get(signal):
    return call_in_bluesky_event_loop(signal.get_value())
