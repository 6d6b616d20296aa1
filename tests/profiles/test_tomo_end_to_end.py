"""End to end: simulated tomography + RunEngine + the project's tiled server + live analysis.

Two sessions share the test session's tiled server:

* 3D XANES: a step ``xanes_tomo_scan`` (11 energies over the Ni K-edge x 31 angles)
  of a 24 x 48 x 48 composite phantom (0.1 um voxels, 8 NMC particles, SSE, graphite),
  rotation axis 1.5 px off centre: attenuation and edge-energy errors against the truth,
  slice reads of a stored volume, and a failing live reconstruction that does not stop
  the acquisition (a fly ``tomo_scan``).
* Holotomography: a step ``holotomo_scan`` (61 angles, one 0.15 mm distance, 8 keV,
  Paganin) of a 48 x 96 x 96 composite phantom, ``Phantom3DConfig(shape=(48, 96, 96),
  radius_range_um=(0.4, 1.6), n_particles=45, seed=1)``: 37 particles placed (29 with
  radius < 1 um); electron density and the Figure-5 statistics against the truth.

Measured numbers are printed (``pytest -s``).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ssb_beamline.analysis.phases import Phase
from ssb_beamline.profiles.simulated_tomo import simulated_tomo
from ssb_beamline.sim_devices.phantom3d import Phantom3DConfig
from ssb_beamline.sim_devices.refraction import phase_attenuation_per_um
from ssb_beamline.storage import read_results, result_versions

pytestmark = pytest.mark.slow

TXM_PHANTOM = Phantom3DConfig(shape=(24, 48, 48), radius_range_um=(0.4, 1.0), n_particles=8, seed=1)
HOLO_PHANTOM = Phantom3DConfig(
    shape=(48, 96, 96), radius_range_um=(0.4, 1.6), n_particles=45, seed=1
)
#: A short Ni K-edge grid: 3 eV steps through the edge, two points on each side.
ENERGIES = [8300.0, 8320.0, 8331.0, 8334.0, 8337.0, 8340.0, 8343.0, 8346.0, 8349.0, 8390.0,
            8440.0]  # fmt: skip


@pytest.fixture(scope="module")
def server(tiled_server):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SSB_TILED_API_KEY", tiled_server.api_key)
        yield tiled_server


@pytest.fixture(scope="module")
def xanes(server):
    """The 3D XANES run; ``options`` are the live analysis' (read at each run start)."""
    options: dict = {}
    session = simulated_tomo(
        mode="txm", phantom=TXM_PHANTOM, center_offset_px=1.5, tiled_uri=server.url,
        detector_dir=server.layout.detector / "tomo-e2e", tomo_options=options,
    )  # fmt: skip
    plan = session.xanes_tomo(ENERGIES, (0.0, 180.0, 31), mode="step", exposure_time=0.02,
                              n_dark=2, n_flat=2)  # fmt: skip
    (uid,) = session.run(plan)
    yield session, uid, options
    session.close()


@pytest.fixture(scope="module")
def holo(server):
    session = simulated_tomo(
        mode="holo", phantom=HOLO_PHANTOM, tiled_uri=server.url,
        detector_dir=server.layout.detector / "holo-e2e",
    )  # fmt: skip
    (uid,) = session.run(session.holotomo((0.0, 180.0, 61), [0.15], mode="step"))
    yield session, uid
    session.close()


def _truth_attenuation(session, energy_ev: float) -> np.ndarray:
    ph = session.phantom
    a, b, mu_sse, mu_carbon = phase_attenuation_per_um(energy_ev, ph.config.carbon_density_g_cm3)
    mu = np.zeros(ph.shape, np.float32)
    nmc = ph.phases == Phase.NMC
    mu[nmc] = a + b * ph.soc[nmc]
    mu[ph.phases == Phase.SSE], mu[ph.phases == Phase.CARBON] = mu_sse, mu_carbon
    return mu


def _sample(session) -> np.ndarray:
    """Voxels of the phantom block (not the empty margin around it)."""
    inside = np.zeros(session.phantom.shape, bool)
    m = (session.phantom.shape[1] - TXM_PHANTOM.shape[1]) // 2
    inside[:, m:-m, m:-m] = True
    return inside


def _interiors(phases: np.ndarray) -> np.ndarray:
    """Voxels at least two voxels away from any interface between phases."""
    interface = np.zeros(phases.shape, bool)
    for axis in range(3):
        step = np.diff(phases, axis=axis) != 0
        interface[(slice(None),) * axis + (slice(1, None),)] |= step
        interface[(slice(None),) * axis + (slice(None, -1),)] |= step
    return ~ndimage.binary_dilation(interface, iterations=1)


def test_reconstructed_attenuation_is_close_to_the_truth(xanes):
    session, uid, _ = xanes
    outcome = session.outcomes[0]
    assert outcome.ok, outcome.errors
    stored = read_results(session.store.results, uid)
    assert stored.metadata["run_uid"] == uid and stored.metadata["source"] == "live"
    assert stored.metadata["units"]["attenuation"].startswith("1/um")
    centre = stored.metadata["rotation_center_px"]
    assert abs(centre - session.tomo.truth_rotation_center_px()) <= 0.25  # the 0/180-degree pair
    stack = stored.arrays["attenuation"]
    assert stack.shape == (len(ENERGIES), *session.phantom.shape)
    sample = _sample(session)
    interior = sample & _interiors(session.phantom.phases)
    errors = {}
    for k in (0, len(ENERGIES) - 1):  # below and above the edge
        truth = _truth_attenuation(session, ENERGIES[k])
        for name, where in (("all", sample), ("interiors", interior)):
            diff = stack[k][where] - truth[where]
            errors[name, ENERGIES[k]] = float(
                np.sqrt(np.mean(diff**2) / np.mean(truth[where] ** 2))
            )
    print(f"\nattenuation relative RMS inside the sample (all voxels / phase interiors, "
          f"{interior.sum() / sample.sum():.0%} of them): {errors}; centre {centre} px "
          f"(truth {session.tomo.truth_rotation_center_px()})")  # fmt: skip
    # all voxels: dominated by the resolution at interfaces (31 angles, Hann filter);
    # interiors: by the noise, relatively larger below the edge where NMC absorbs little
    assert max(errors["all", e] for e in ENERGIES[:: len(ENERGIES) - 1]) < 0.55
    assert errors["interiors", ENERGIES[-1]] < 0.25
    assert errors["interiors", ENERGIES[0]] < 0.45


def test_3d_xanes_edge_energy_inside_nmc(xanes):
    session, uid, _ = xanes
    stored = read_results(session.store.results, uid)
    edge, soc, mask = (stored.arrays[k] for k in ("edge_energy", "soc", "mask"))
    nmc = ndimage.binary_erosion(session.phantom.labels > 0, iterations=1)
    inside = nmc & mask & np.isfinite(edge)
    assert inside.sum() > 0.85 * nmc.sum()  # the mask finds the NMC
    outside = ~ndimage.binary_dilation(session.phantom.labels > 0, iterations=2)
    assert (mask & outside).sum() < 0.05 * mask.sum()  # (besides the blurred surfaces)
    edge_err = edge[inside] - session.phantom.edge_energy[inside]
    soc_err = soc[inside] - session.phantom.soc[inside]
    print(f"\n3D XANES inside NMC ({inside.sum()} voxels): edge energy median |error| "
          f"{np.median(np.abs(edge_err)):.2f} eV (median {np.median(edge_err):+.2f} eV); "
          f"SOC median |error| {np.median(np.abs(soc_err)):.3f}; "
          f"reconstruction s per energy {stored.metadata['reconstruction_seconds']}")  # fmt: skip
    assert np.median(np.abs(edge_err)) < 1.5
    # (a coarse bound: 31 angles of 0.02 s projections, 11 energies; 0.24 measured)
    assert np.median(np.abs(soc_err)) < 0.3


def test_a_client_reads_one_slice_without_the_volume(xanes):
    session, uid, _ = xanes
    version = result_versions(session.store.results, uid)[-1]
    node = session.store.results[uid][version]["edge_energy"]
    nz, ny, nx = node.shape
    assert node.structure().chunks == ((1,) * nz, (ny,), (nx,))  # one slice per chunk
    stack = session.store.results[uid][version]["attenuation"]
    assert stack.structure().chunks[1] == (1,) * nz  # a slice at every energy per chunk
    received: list[int] = []
    hooks = node.context.http_client.event_hooks["response"]

    def count(response) -> None:
        response.read()
        received.append(len(response.content))

    hooks.append(count)
    try:
        k = nz // 2
        piece = node[k]
    finally:
        hooks.remove(count)
    assert piece.shape == (ny, nx)
    assert sum(received) <= ny * nx * node.dtype.itemsize + 1024  # one slice, not the volume
    np.testing.assert_array_equal(piece, read_results(session.store.results, uid).arrays[
        "edge_energy"][k])  # fmt: skip


def test_a_failing_live_reconstruction_does_not_stop_the_acquisition(xanes):
    session, _, options = xanes

    def broken(*args, **kwargs):
        raise RuntimeError("injected failure of the live reconstruction")

    options["reconstruct"] = broken
    try:
        (uid,) = session.run(session.tomo_scan((0.0, 180.0, 31), exposure_time=0.02))
    finally:
        options.pop("reconstruct")
    outcome = session.outcomes[-1]
    assert outcome.run_uid == uid
    assert any("injected failure" in e for e in outcome.errors)
    run = session.store.raw[uid]
    assert run.metadata["stop"]["exit_status"] == "success"
    frames = run["primary"][run.metadata["start"]["detector_key"]].read()
    assert frames.shape == (31, *session.tomo.detector_shape)
    assert result_versions(session.store.results, uid) == []


def test_phase_retrieval_recovers_electron_density_in_particle_interiors(holo):
    session, uid = holo
    outcome = session.outcomes[0]
    assert outcome.ok, outcome.errors
    stored = read_results(session.store.results, uid)
    assert stored.metadata["phase_retrieval"] == "paganin"
    density = stored.arrays["electron_density"]
    truth, labels = session.phantom.electron_density, session.phantom.labels
    interior = ndimage.binary_erosion(labels > 0, iterations=2)
    rel = (density[interior] - truth[interior]) / truth[interior]
    within = float(np.mean(np.abs(rel) < 0.05))
    cores = [interior & (labels == i) for i in range(1, labels.max() + 1)]
    particle = [density[c].mean() / truth[c].mean() - 1 for c in cores if c.any()]
    print(f"\nelectron density in particle interiors: median error {np.median(rel):+.4f}, "
          f"{within:.1%} of voxels within 5 %, particle means within "
          f"{np.abs(particle).max():.2%}; phase retrieval + FBP "
          f"{stored.metadata['reconstruction_seconds']:.2f} s")  # fmt: skip
    assert abs(np.median(rel)) < 0.05
    assert within > 0.9
    assert np.abs(particle).max() < 0.05


def test_particle_table_and_figure_5_statistics_are_stored(holo):
    session, uid = holo
    stored = read_results(session.store.results, uid)
    table = stored.tables["particles"]
    stats = stored.metadata["holotomo_statistics"]
    n_truth = session.phantom.n_particles
    assert n_truth >= 30
    assert abs(len(table) - n_truth) <= 3
    assert stats["n_particles"] == len(table)
    for column in ("radius_um", "electron_density_mean", "electron_density_std", "depth_um"):
        assert table[column].notna().all(), column
    assert {"small", "large"} <= set(table["size_class"])
    for key in ("density_vs_radius", "std_vs_radius", "density_vs_depth"):
        assert stats["correlations"][key]["r"] is not None
    assert stats["groups"]["small"]["density"]["n"] + stats["groups"]["large"]["density"]["n"]
    labels = stored.arrays["particle_labels"]
    assert labels.max() == len(table)
    node = session.store.results[uid][stored.version]["electron_density"]
    assert node.structure().chunks[0] == (1,) * labels.shape[0]


@pytest.mark.xfail(
    strict=True,
    reason="Not reachable on this phantom (issue 6, blocked). The SOC changes particle "
    "electron densities by only ~0.15 % (std between particles), while Paganin takes the "
    "low frequencies from absorption (SOC-independent below the Ni edge; particle errors "
    "1.6 %, size-dependent). 17 keV multi-distance CTF and iterative, material-aware "
    "retrieval leave 0.2-0.4 % per particle (r 0.15-0.45), and 61 angles give r = 0.40 "
    "even from the exact phase. Only an absorption correction taken from the truth "
    "reached r 0.61-0.65.",
)
def test_density_size_pearson_r_is_recovered(holo):
    session, uid = holo
    stats = read_results(session.store.results, uid).metadata["holotomo_statistics"]
    recovered = stats["correlations"]["density_vs_radius"]["r"]
    truth = session.phantom.density_size_pearson_r()
    print(f"\nPearson r (electron density vs radius): truth {truth:.3f}, recovered "
          f"{recovered:.3f} over {stats['n_particles']} particles")  # fmt: skip
    assert abs(recovered - truth) < 0.1
