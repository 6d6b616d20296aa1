"""Particle statistics live at the end of a scan, scored against the phantom's truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from bluesky.run_engine import RunEngine
from event_model import RunRouter
from ophyd_async.plan_stubs import ensure_connected

from ssb_beamline.analysis.phases import Phase
from ssb_beamline.callbacks import xanes_live_factory
from ssb_beamline.callbacks.particles_live import ParticleStatistics
from ssb_beamline.callbacks.xanes_live import MapContext, PostResult
from ssb_beamline.plans import ni_k_edge_grid, xanes_scan
from ssb_beamline.reference_data import ni_k_edge_references
from ssb_beamline.sim_devices.factory import make_sim_txm
from ssb_beamline.sim_devices.phantom import PhantomConfig

#: The default phantom with every particle separated from the others.
SEPARATED = PhantomConfig(touching_fraction=0.0, seed=1)


class Capture:
    """Post-processor that keeps the maps and the context of the run."""

    name = "capture"

    def __init__(self) -> None:
        self.runs: list[tuple[dict, MapContext]] = []

    def __call__(self, maps, context):
        self.runs.append((dict(maps), context))
        return PostResult()


@pytest.fixture(scope="module")
def separated_scan(tmp_path_factory):
    """A 41-energy scan of the separated 512 x 512 phantom: (txm, maps, context)."""
    RE = RunEngine({}, call_returns_result=False)
    txm = make_sim_txm(SEPARATED, directory=tmp_path_factory.mktemp("det"))
    RE(ensure_connected(*txm.devices))
    capture = Capture()
    RE.subscribe(RunRouter([xanes_live_factory(ni_k_edge_references(), post_processors=[capture])]))

    def focus(e):
        p = txm.focus_positions(e)
        return p.zp_z_mm, p.det_z_mm

    RE(
        xanes_scan(
            txm.detector, txm.energy, txm.zp_z, txm.det_z, txm.sample.x, txm.shutter, txm.i0,
            ni_k_edge_grid("standard"), sample_out=txm.sample_out_x_um, focus=focus,
            optics={"pixel_size_um": txm.pixel_size_um},
        )
    )  # fmt: skip
    ((maps, context),) = capture.runs
    return txm, maps, context


def _matched(result: PostResult, phantom) -> pd.DataFrame:
    """The particle table with the truth label covering most of each particle."""
    table = result.tables["particles"].copy()
    labels = result.arrays["particle_labels"]
    truth = []
    for label in table["label"]:
        counts = np.bincount(phantom.labels[labels == label], minlength=phantom.n_particles + 1)
        counts[0] = 0
        truth.append(int(counts.argmax()))
    table["truth"] = truth
    return table


@pytest.mark.slow
def test_separated_particles_are_counted_sized_and_polarised_as_designed(separated_scan):
    txm, maps, context = separated_scan
    phantom = txm.phantom
    result = ParticleStatistics()(maps, context)
    json.dumps(result.metadata)  # JSON-safe: no numpy scalars, no NaN
    assert result.metadata["n_particles"] == phantom.n_particles == 40
    table = _matched(result, phantom)
    assert sorted(table["truth"]) == list(range(1, 41))  # one to one
    radius_error = table["radius_um"] / phantom.particle_radius_um[table["truth"]] - 1
    assert radius_error.abs().max() < 0.05, radius_error.describe()
    px = txm.pixel_size_um
    pol_error_px = (table["polarization_um"] - phantom.polarisation_offset_um[table["truth"]]) / px
    assert pol_error_px.abs().max() < 1.0, pol_error_px.describe()
    r = result.metadata["statistics"]["correlations"]["soc_mean_vs_radius"]["r"]
    assert r == pytest.approx(phantom.soc_size_pearson_r, abs=0.1)
    assert phantom.soc_size_pearson_r < -0.5  # the designed size dependence
    groups = result.metadata["statistics"]["groups"]
    assert groups["small"]["n"] + groups["large"]["n"] == 40
    assert groups["small"]["mean"] > groups["large"]["mean"]


@pytest.mark.slow
def test_impedance_trend_rises_with_combined_impedance_not_with_core_shell(separated_scan):
    txm, maps, context = separated_scan
    # the phase map of another measurement (the paper's nano-tomography): the truth
    result = ParticleStatistics(phase_source=lambda ctx: txm.phantom.phase)(maps, context)
    diffusion = result.metadata["diffusion"]
    assert diffusion["unavailable"] == {}
    bins = result.tables["impedance_bins"]
    combined = bins.loc[bins["model"] == "combined", "edge_energy_mean"].to_numpy()
    core_shell = bins.loc[bins["model"] == "core_shell", "edge_energy_mean"].to_numpy()
    assert np.all(np.diff(combined) > 0), combined
    slopes = diffusion["trend_slope_ev"]
    assert slopes["combined"] > 0.2
    assert slopes["core_shell"] < 0.25 * slopes["combined"]
    assert not np.all(np.diff(core_shell) > 0), core_shell
    for key in ("li_distance_um", "e_distance_um", "combined_impedance", "core_shell"):
        values = result.arrays[key]
        assert not np.isinf(values).any()
        assert np.isfinite(values[result.arrays["particle_labels"] > 0]).mean() > 0.5
    assert result.arrays["distance_map_2d"].shape == (5, 5)
    assert result.units["li_distance_um"] == "um"


@pytest.mark.slow
def test_phases_from_absorbance_find_the_electrolyte_but_report_carbon_unavailable(
    separated_scan,
):
    txm, maps, context = separated_scan
    result = ParticleStatistics()(maps, context)
    phases = result.arrays["phases"]
    truth = txm.phantom.phase
    sse = truth == Phase.SSE
    assert (phases[sse] == Phase.SSE).mean() > 0.8
    assert (phases[truth == Phase.VOID] == Phase.SSE).mean() < 0.1
    diffusion = result.metadata["diffusion"]
    assert "CARBON" in diffusion["unavailable"]["e"]
    assert "combined" in diffusion["unavailable"]
    assert "carbon" in diffusion["phases"]["unresolved"]
    assert "e_distance_um" not in result.arrays and "combined_impedance" not in result.arrays
    assert np.isfinite(result.arrays["li_distance_um"][phases == Phase.NMC]).any()
    assert set(result.tables["impedance_bins"]["model"]) == {"core_shell"}


# --------------------------------------------------------------------------- bad input
def _context(shape=(64, 64), n=8, start=None):
    energies = np.linspace(8300, 8400, n)
    start = {"pixel_size_um": 0.1, **(start or {})}
    return MapContext("uid", start, energies, np.zeros((n, *shape), np.float32))


def _disc_maps(shape=(64, 64)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    disc = ((yy - 32) ** 2 + (xx - 32) ** 2) < 15**2
    step = np.where(disc, 1.0, 0.0) + 0.01 * np.random.default_rng(0).standard_normal(shape)
    soc = np.where(disc, 0.4 + 0.002 * xx, np.nan)
    return {"edge_step": step, "soc": soc, "edge_energy": 8340 + 4 * soc, "mask": disc}


def test_an_empty_map_gives_no_particles_and_a_reason():
    shape = (64, 64)
    maps = {
        "edge_step": np.zeros(shape),
        "soc": np.full(shape, np.nan),
        "edge_energy": np.full(shape, np.nan),
        "mask": np.zeros(shape, bool),
    }
    result = ParticleStatistics()(maps, _context())
    assert result.metadata["n_particles"] == 0
    assert "reason" in result.metadata
    assert result.tables == {}
    assert not result.arrays["particle_labels"].any()
    json.dumps(result.metadata)


def test_a_map_of_noise_only_has_no_particles():
    rng = np.random.default_rng(1)
    shape = (64, 64)
    maps = {
        "edge_step": 0.001 * rng.standard_normal(shape),
        "soc": np.full(shape, np.nan),
        "edge_energy": np.full(shape, np.nan),
        "mask": np.ones(shape, bool),
    }
    result = ParticleStatistics(min_radius_um=1.0)(maps, _context())
    assert result.metadata["n_particles"] == 0
    assert result.tables == {}


def test_mismatched_shapes_are_a_clear_error():
    maps = _disc_maps()
    maps["soc"] = maps["soc"][:-1]
    with pytest.raises(ValueError, match="shape"):
        ParticleStatistics()(maps, _context())
    with pytest.raises(ValueError, match="absorbance frames"):
        ParticleStatistics()(_disc_maps(), _context(shape=(32, 32)))
    with pytest.raises(ValueError, match="pixel_size_um"):
        ParticleStatistics()(_disc_maps(), MapContext("u", {}, np.zeros(2), np.zeros((2, 64, 64))))


def test_a_phase_map_without_electrolyte_or_carbon_reports_distances_unavailable():
    maps = _disc_maps()
    phases = np.full((64, 64), Phase.VOID, np.uint8)
    phases[maps["mask"]] = Phase.NMC
    phases[:, :10] = Phase.CARBON  # carbon, but no SSE
    result = ParticleStatistics(phase_source=lambda ctx: phases, fill_particles=False)(
        maps, _context()
    )
    diffusion = result.metadata["diffusion"]
    assert "SSE" in diffusion["unavailable"]["li"]
    assert "combined" in diffusion["unavailable"]
    assert "li_distance_um" not in result.arrays
    assert "combined_impedance" not in result.arrays
    assert "2D" in diffusion["unavailable_2d"] or "Li+" in diffusion["unavailable_2d"]
    assert result.metadata["n_particles"] == 1
    json.dumps(result.metadata)
    for values in result.arrays.values():
        assert not np.isinf(np.asarray(values, float)).any()


def test_no_frame_below_the_edge_leaves_phases_unavailable():
    context = _context()
    context = MapContext("uid", context.start, np.linspace(8340, 8400, 8), context.absorbance)
    result = ParticleStatistics(fill_particles=False)(_disc_maps(), context)
    assert "below" in result.metadata["diffusion"]["phases"]["reason"]
    assert result.metadata["n_particles"] == 1
    assert "particles" in result.tables


def test_depth_from_the_separator_in_the_start_document():
    result = ParticleStatistics(fill_particles=False)(
        _disc_maps(), _context(start={"sample": {"separator_y_um": 0.0}})
    )
    assert result.tables["particles"]["depth_um"].iloc[0] == pytest.approx(3.2, abs=0.05)
    corr = result.metadata["statistics"]["correlations"]["soc_mean_vs_depth"]
    assert corr["r"] is None and corr["reason"]  # one particle: no correlation, a reason
