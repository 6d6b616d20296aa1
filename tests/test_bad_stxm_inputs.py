"""Bad STXM scan inputs (issue 17): errors naming the problem and the fix, nothing moved."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from ophyd_async.plan_stubs import ensure_connected

from ssb_beamline.analysis.stxm import deadtime_correct, ni3_fraction
from ssb_beamline.plans.stxm import stxm_ratio_scan, stxm_stack_scan
from ssb_beamline.sim_devices.phantom import PhantomConfig
from ssb_beamline.sim_devices.stxm import make_sim_stxm

PEAKS = [853.0, 855.5]


@pytest.fixture
def stxm(RE):
    stxm = make_sim_stxm(PhantomConfig(shape=(64, 64), n_particles=3, radius_range_um=(0.5, 1.5)))
    RE(ensure_connected(*stxm.devices))
    return stxm


def ratio_plan(stxm, energies=PEAKS, **options):
    kw = {"nx": 8, "ny": 4, "step_um": 0.2, "sample_out": stxm.sample_out_um, **options}
    return stxm_ratio_scan(stxm.detector, stxm.energy, stxm.stage.x, stxm.stage.y,
                           stxm.shutter, stxm.i0, energies, **kw)  # fmt: skip


def test_energies_outside_the_soft_xray_monochromator(RE, stxm, docs):
    with pytest.raises(ValueError, match=r"stxm_energy would move to 900 eV, outside its limits "
                                         r"\[840, 875\] eV.*nothing has moved"):  # fmt: skip
        RE(ratio_plan(stxm, [853.0, 900.0]))
    assert docs.of("start") == []  # refused before the run opened


def test_raster_larger_than_the_stage_travel(RE, stxm, docs):
    with pytest.raises(ValueError, match=r"needs 1.*um of x travel .* travels only 100 um.*"
                                         r"fewer pixels, a smaller step"):  # fmt: skip
        RE(ratio_plan(stxm, nx=600, step_um=0.2))
    with pytest.raises(ValueError, match=r"outside the travel \[-50, 50\] um .*Move the raster"):
        RE(ratio_plan(stxm, x_center_um=49.0))
    assert docs.of("start") == []


@pytest.mark.parametrize("energies", [[853.0], []])
def test_fewer_than_two_energies(stxm, energies):
    with pytest.raises(ValueError, match=r"(at least two energies|energy list is empty)"):
        ratio_plan(stxm, energies)


def test_stack_needs_three_energies(stxm):
    with pytest.raises(ValueError, match=r"at least three energies.*ni_l3_stack_grid"):
        stxm_stack_scan(stxm.detector, stxm.energy, stxm.stage.x, stxm.stage.y, stxm.shutter,
                        stxm.i0, PEAKS, nx=4, ny=4, step_um=0.2, sample_out=(40, 0))  # fmt: skip


@pytest.mark.parametrize("dwell", [0.0, -0.001, math.nan])
def test_dwell_time_not_positive(stxm, dwell):
    with pytest.raises(ValueError, match=r"dwell_time must be > 0.*e\.g\. 0\.001"):
        ratio_plan(stxm, dwell_time=dwell)


def test_ratio_between_identical_energies(stxm):
    with pytest.raises(ValueError, match=r"identical energies \(853.0 eV\) is always 1.*different"):
        ratio_plan(stxm, [853.0, 855.5, 860.0], ratio_energies=[853.0, 853.0])
    with pytest.raises(ValueError, match=r"listed twice.*Remove the duplicate"):
        ratio_plan(stxm, [853.0, 853.0])


def test_detector_refuses_a_bad_dwell_set_directly(RE, stxm):
    async def trigger_with_zero_dwell():
        await stxm.detector.dwell_time.set(0.0)
        await stxm.detector.trigger()

    future = asyncio.run_coroutine_threadsafe(trigger_with_zero_dwell(), RE.loop)
    with pytest.raises(ValueError, match=r"dwell_time must be > 0 s"):
        future.result(5)


def test_analysis_inputs():
    with pytest.raises(ValueError, match=r"saturate a counter of dead time"):
        deadtime_correct(np.array([2e5]), 0.001, 1e-8)
    with pytest.raises(ValueError, match=r"reference ratios are equal.*Ni2\+ and the Ni3\+"):
        ni3_fraction(np.ones(3), 1.2, 1.2)
