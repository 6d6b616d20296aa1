"""The simulated STXM (issue 17): L3 model, counting chain, shared phantom, step and stack scans."""

from __future__ import annotations

import asyncio
import doctest

import numpy as np
import pytest
from ophyd_async.plan_stubs import ensure_connected

import ssb_beamline.analysis.stxm as stxm_analysis
import ssb_beamline.analysis.stxm_maps as stxm_maps_module
import ssb_beamline.plans.stxm as stxm_plans
from ssb_beamline.analysis import stxm_register
from ssb_beamline.analysis.stxm import deadtime_correct, ni3_fraction
from ssb_beamline.callbacks.stxm_live import STXMLiveAnalysis
from ssb_beamline.plans import stxm_raster
from ssb_beamline.plans.stxm import stxm_ratio_scan, stxm_stack_scan
from ssb_beamline.profiles.stxm import reference_ratios
from ssb_beamline.sim_devices import stxm_physics
from ssb_beamline.sim_devices.phantom import PhantomConfig
from ssb_beamline.sim_devices.stxm import STXMSampleConfig, make_sim_stxm
from ssb_beamline.sim_devices.stxm_physics import l3_coefficients, ni_l3_end_members

CONFIG = PhantomConfig(shape=(64, 64), pixel_size_um=0.1, n_particles=3,
                       radius_range_um=(0.8, 1.5), seed=5)  # fmt: skip


@pytest.mark.parametrize(
    "module",
    [stxm_analysis, stxm_maps_module, stxm_register, stxm_plans, stxm_raster, stxm_physics],
    ids=lambda m: m.__name__.rsplit(".", 1)[-1],
)
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_l3_model_peaks_and_linear_mixing():
    e = np.linspace(850.0, 858.0, 801)
    n2, n3 = ni_l3_end_members(e)
    assert abs(e[np.argmax(n2)] - 853.0) < 0.1 and abs(e[np.argmax(n3)] - 855.5) < 0.1
    c1, c2 = l3_coefficients(853.0), l3_coefficients(855.5)
    for f in (0.0, 0.3, 1.0):  # OD linear in the fraction, the ratio rises with it
        assert c1.nmc(f) == pytest.approx((1 - f) * c1.nmc(0.0) + f * c1.nmc(1.0))
    r2, r3, k = reference_ratios(853.0, 855.5)
    assert r2 < 1.0 < r3
    # the calibration inverts the mixture exactly
    f = np.linspace(0.0, 1.0, 11)
    ratio = c2.nmc(f) / c1.nmc(f)
    np.testing.assert_allclose(ni3_fraction(ratio, r2, r3, k), f, atol=1e-6)
    # linear interpolation between the reference ratios alone is biased here
    assert np.max(np.abs(ni3_fraction(ratio, r2, r3) - f)) > 0.05


def test_same_phantom_config_same_particles_as_the_txm():
    from ssb_beamline.sim_devices.phantom import make_phantom

    stxm = make_sim_stxm(CONFIG)
    txm_phantom = make_phantom(CONFIG)
    np.testing.assert_array_equal(stxm.phantom.labels, txm_phantom.labels)
    np.testing.assert_array_equal(stxm.phantom.soc, txm_phantom.soc)


def test_counting_chain_dark_poisson_dead_time(RE):
    sample = STXMSampleConfig(flux_cps=1e8, dead_time_s=2e-9, dark_cps=2000.0)
    stxm = make_sim_stxm(CONFIG, sample)
    RE(ensure_connected(*stxm.devices))
    det = stxm.detector

    def count(n: int, shutter: str) -> np.ndarray:
        async def go():
            await stxm.shutter.set(shutter)
            await det.pixels_per_line.set(n)
            await stxm.stage.x.set(stxm.sample_out_um[0])
            await det.trigger()
            return await det.counts.get_value()

        return _run(RE, go())

    dark = count(400, "Closed")
    assert dark.mean() == pytest.approx(2000.0 * 0.001, rel=0.15)  # dark rate, Poisson
    bright = count(400, "Open")
    flux = np.mean(_run(RE, det.i0.get_value()))
    true = deadtime_correct(bright, 0.001, 2e-9).mean() / flux
    assert bright.mean() < 0.9 * 1e8 * 0.001 * flux  # dead-time losses are real
    assert true == pytest.approx(1e8 * 0.001 + 2.0, rel=0.01)  # and the correction undoes them
    assert bright.std() == pytest.approx(np.sqrt(bright.mean()), rel=0.25)  # shot noise


def _run(RE, coro):
    return asyncio.run_coroutine_threadsafe(coro, RE.loop).result(30)


def test_step_scan_and_stack_scan_maps(RE):
    stxm = make_sim_stxm(CONFIG, STXMSampleConfig(offset_um=(0.0, 0.0)))
    RE(ensure_connected(*stxm.devices))
    r2, r3, k = reference_ratios(853.0, 855.5)
    step = STXMLiveAnalysis()
    RE(stxm_ratio_scan(stxm.detector, stxm.energy, stxm.stage.x, stxm.stage.y, stxm.shutter,
                       stxm.i0, [853.0, 855.5], nx=8, ny=6, step_um=0.4, mode="step",
                       sample_out=stxm.sample_out_um, reference_ratios=[r2, r3],
                       reference_e1_ratio=k, n_dark=8, n_i0=8), step)  # fmt: skip
    assert step.outcome.ok, step.outcome.errors
    assert step.tau == 5e-9  # the dead time came from the detector's configuration
    x, y = np.array(step._start["raster"]["x_um"]), np.array(step._start["raster"]["y_um"])
    truth = stxm.truth_fraction_map(x, y)
    both = np.isfinite(truth) & np.isfinite(step.outcome.maps["ni3_fraction"])
    assert both.sum() >= 5
    assert np.median(np.abs(step.outcome.maps["ni3_fraction"][both] - truth[both])) < 0.05
    # step pixels land where the stage was: measured OD against the noiseless OD there
    od_truth = stxm.truth_od_map(853.0, x, y)
    np.testing.assert_allclose(step.od[0], od_truth, atol=0.05)

    stack = STXMLiveAnalysis()
    energies = [848.0, 853.0, 854.0, 855.5, 858.0]
    RE(stxm_stack_scan(stxm.detector, stxm.energy, stxm.stage.x, stxm.stage.y, stxm.shutter,
                       stxm.i0, energies, nx=16, ny=16, step_um=0.4, sample_out=(40.0, 0.0),
                       n_dark=8, n_i0=8, lead_time=0.02), stack)  # fmt: skip
    assert stack.outcome.ok, stack.outcome.errors
    maps = stack.outcome.maps
    assert maps["od"].shape == (5, 16, 16)
    spectra = maps["spectra"]  # (particle, energy): the Ni L3 peaks stand above the pre-edge
    assert spectra.shape == (int(maps["labels"].max()), 5)
    assert np.all(spectra[:, 1] > 1.5 * spectra[:, 0])
    assert np.isfinite(maps["ratio"]).sum() > 10
