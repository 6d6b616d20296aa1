"""A ready-made simulated tomography session: sim TXM / holotomograph, RunEngine, tiled, live.

Like :func:`~ssb_beamline.profiles.simulated.simulated_beamline` (same store, tiled
writer, journal and session methods ``run`` / ``resume`` / ``abort`` / ``close``),
for :func:`~ssb_beamline.sim_devices.tomo_factory.make_sim_tomo`: the live analysis
is :func:`~ssb_beamline.callbacks.holo_live.tomo_live_factory` (per-energy
reconstructions, 3D XANES, holotomography) in a background thread.

The 3-D phantom is placed inside a margin of empty space across the beam (a pillar
on its holder), so that the whole sample stays in the field of view at every angle:
a sample wider than the detector biases FBP (region-of-interest tomography; about
-3 % on the electron density of a 32 x 64 x 64 phantom seen by a 64-pixel detector).

Examples
--------
>>> from ssb_beamline.profiles.simulated_tomo import simulated_tomo
>>> with simulated_tomo(mode="holo") as session:                 # doctest: +SKIP
...     (uid,) = session.run(session.holotomo((0, 180, 91), [0.15]))
...     print(session.outcomes[-1].stored_at)
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ophyd_async.plan_stubs import ensure_connected

from ssb_beamline.analysis.phases import Phase
from ssb_beamline.plans.focus_models import register_focus_model
from ssb_beamline.plans.holotomo import holotomo_scan
from ssb_beamline.plans.suspenders import checkpoint_after_each_event
from ssb_beamline.plans.tomo import tomo_scan
from ssb_beamline.plans.xanes_tomo import xanes_tomo_scan
from ssb_beamline.private_files import make_private_dir
from ssb_beamline.profiles.session_wiring import attach_tomo_analysis
from ssb_beamline.profiles.sim_session import SimulatedSession
from ssb_beamline.profiles.simulated import (
    SIM_FOCUS_MODEL,
    attach_journaled_writer,
    new_run_engine,
    quiet_disk_full_tracebacks,
    sim_focus_model,
)
from ssb_beamline.profiles.zmq_link import attach_publisher
from ssb_beamline.sim_devices.factory import DEFAULT_ENERGY_EV
from ssb_beamline.sim_devices.phantom3d import Phantom3D, Phantom3DConfig, make_phantom3d
from ssb_beamline.sim_devices.projection import PhantomProjector
from ssb_beamline.sim_devices.refraction import (
    delta_from_electron_density,
    nmc_electron_density,
    phase_attenuation_per_um,
    wavelength_m,
)
from ssb_beamline.sim_devices.tomo_factory import SimTomo, make_sim_tomo
from ssb_beamline.storage import open_store
from ssb_beamline.storage.server_config import default_data_dir

__all__ = [
    "FLY_EXPOSURE_S",
    "HOLO_DISTANCE_MM",
    "HOLO_ENERGY_EV",
    "SimulatedTomography",
    "full_view_margin",
    "nmc_delta_beta",
    "pad_phantom3d",
    "simulated_tomo",
]

logger = logging.getLogger(__name__)

#: Holotomography energy: below the Ni K-edge, where NMC's absorption does not depend
#: on its state of charge (the highest energy of the simulated monochromator is 11 keV).
HOLO_ENERGY_EV = 8000.0
#: Default effective propagation distance of holotomography, mm (Fresnel number
#: 0.65 for 0.1 um pixels at 8 keV: near field, where Paganin's retrieval holds).
HOLO_DISTANCE_MM = 0.15
#: Default exposure, s: longer than the simulated camera needs to render a frame of the
#: default phantoms (20-30 ms), so that fly-scan frames keep up with the rotation.
FLY_EXPOSURE_S = 0.04


def pad_phantom3d(phantom: Phantom3D, margin_px: int) -> Phantom3D:
    """``phantom`` inside ``margin_px`` voxels of empty space on each side across the beam.

    The volume grows from ``(Z, Y, X)`` to ``(Z, Y + 2m, X + 2m)``; the truth
    table's ``y`` / ``x`` centres move by ``m`` (depth from the separator, ``z``,
    is unchanged).

    Parameters
    ----------
    phantom : Phantom3D
        The 3-D phantom.
    margin_px : int
        Empty voxels added on each side across the beam.
    """
    m = int(margin_px)
    if m < 0:
        raise ValueError(f"margin_px={margin_px} must be >= 0")
    width = ((0, 0), (m, m), (m, m))

    def pad(volume: np.ndarray, fill: Any) -> np.ndarray:
        return np.pad(volume, width, constant_values=fill)

    particles = phantom.particles.copy()
    particles[["y", "x"]] += m
    return dataclasses.replace(
        phantom, labels=pad(phantom.labels, 0), phases=pad(phantom.phases, Phase.VOID),
        soc=pad(phantom.soc, np.nan), electron_density=pad(phantom.electron_density, 0),
        oxidation_state=pad(phantom.oxidation_state, np.nan),
        edge_energy=pad(phantom.edge_energy, np.nan), particles=particles,
    )  # fmt: skip


def full_view_margin(shape: Sequence[int]) -> int:
    """Smallest margin (voxels) keeping a ``(Z, Y, X)`` block in view at every angle.

    Parameters
    ----------
    shape : sequence of int
        ``(Z, Y, X)`` of the block.
    """
    half_diagonal = 0.5 * math.hypot(shape[1], shape[2])
    return max(0, math.ceil(half_diagonal - 0.5 * shape[2]) + 2)


def nmc_delta_beta(energy_ev: float, soc: float = 0.35) -> float:
    """``delta / beta`` of NMC811 at ``energy_ev`` (tabulated data, as an experimenter would).

    Parameters
    ----------
    energy_ev : float
        Photon energy, eV.
    soc : float
        State of charge of the NMC.
    """
    a, b, _, _ = phase_attenuation_per_um(energy_ev)
    delta = float(delta_from_electron_density(nmc_electron_density(soc), energy_ev))
    beta = (a + b * soc) * 1e6 * wavelength_m(energy_ev) / (4 * np.pi)
    return delta / beta


@dataclass
class SimulatedTomography(SimulatedSession[SimTomo]):
    """A simulated tomography session (``txm`` is its `SimTomo`, also as ``tomo``).

    Attributes
    ----------
    phantom : Phantom3D
        The ground truth, in the detector's frame (with its margin).
    energy_ev : float
        The energy the session started at (holotomography's ``delta_beta``).
    outcomes : list of TomoOutcome
        One per analysed run, newest last.
    RE, txm, store, on_update, writer, journal, live, faults, aborted, own_runs, publisher
        As for :class:`~ssb_beamline.profiles.simulated.SimulatedBeamline`.
    """

    phantom: Phantom3D | None = None
    energy_ev: float = DEFAULT_ENERGY_EV

    @property
    def tomo(self) -> SimTomo:
        """The simulated microscope (devices, frame model, truth accessors)."""
        return self.txm

    def xanes(self, *args: Any, **kwargs: Any):
        """Not available: a 2D XANES scan needs ``simulated_beamline`` (use :meth:`xanes_tomo`)."""
        raise NotImplementedError(
            "This is a tomography session; use xanes_tomo() here, or simulated_beamline() "
            "for a 2D XANES scan."
        )

    def _common(self, sample: Mapping[str, Any] | None) -> dict[str, Any]:
        t = self.tomo
        config = self.phantom.config if self.phantom is not None else None
        return {
            "sample_out": t.sample_out_x_um,
            "pixel_size_um": t.pixel_size_um,
            "rotation_center_px": t.rotation_center_guess_px,
            "sample": dict(sample or {"name": "simulated NMC811 / Li6PS5Cl / carbon pillar",
                                      "phantom_seed": getattr(config, "seed", None)}),
        }  # fmt: skip

    def tomo_scan(self, angles: Any = (0.0, 180.0, 61), *, mode: str = "fly",
                  exposure_time: float = FLY_EXPOSURE_S, n_dark: int = 5, n_flat: int = 5,
                  sample: Mapping[str, Any] | None = None, **kwargs: Any):  # fmt: skip
        """A :func:`~ssb_beamline.plans.tomo.tomo_scan` plan at the current energy."""
        t = self.tomo
        return tomo_scan(t.detector, t.sample.rotation, t.sample.x, t.shutter, t.i0, angles,
                         mode=mode, exposure_time=exposure_time, n_dark=n_dark, n_flat=n_flat,
                         energy=t.energy, **self._common(sample), **kwargs)  # fmt: skip

    def xanes_tomo(self, energies: Sequence[float], angles: Any = (0.0, 180.0, 61), *,
                   mode: str = "fly", exposure_time: float = FLY_EXPOSURE_S, n_dark: int = 5,
                   n_flat: int = 5, sample: Mapping[str, Any] | None = None,
                   **kwargs: Any):  # fmt: skip
        """A ``xanes_tomo_scan`` plan with focus tracking."""
        t = self.tomo
        focus = sim_focus_model(t)

        return xanes_tomo_scan(t.detector, t.energy, t.zp_z, t.det_z, t.sample.rotation,
                               t.sample.x, t.shutter, t.i0, energies, angles, focus=focus,
                               mode=mode, exposure_time=exposure_time, n_dark=n_dark,
                               n_flat=n_flat, **self._common(sample), **kwargs)  # fmt: skip

    def holotomo(self, angles: Any = (0.0, 180.0, 91),
                 distances_mm: Sequence[float] = (HOLO_DISTANCE_MM,), *, mode: str = "fly",
                 exposure_time: float = FLY_EXPOSURE_S, n_dark: int = 5, n_flat: int = 5,
                 sample: Mapping[str, Any] | None = None, md: Mapping[str, Any] | None = None,
                 **kwargs: Any):  # fmt: skip
        """A ``holotomo_scan`` plan of this session.

        The start document gets the effective propagation
        distances, NMC's ``delta_beta`` at the energy and the separator plane (z = 0).
        """
        t = self.tomo
        effective = [t.model.holo.effective_distance_m(z) for z in distances_mm]
        extra = {"separator_index": 0.0, **dict(md or {})}
        extra.setdefault("delta_beta", nmc_delta_beta(self.energy_ev))
        return holotomo_scan(t.detector, t.sample.rotation, t.holo_z, t.sample.x, t.shutter,
                             t.i0, angles, list(distances_mm), mode=mode,
                             exposure_time=exposure_time, n_dark=n_dark, n_flat=n_flat,
                             energy=t.energy, propagation_distances_m=effective,
                             md=extra, **self._common(sample), **kwargs)  # fmt: skip


def simulated_tomo(  # noqa: PLR0913 -- keyword-only options of the simulated session
    *,
    mode: str = "txm",
    phantom: Phantom3DConfig | Phantom3D | None = None,
    margin_px: int | None = None,
    center_offset_px: float = 0.0,
    energy_ev: float | None = None,
    tiled_uri: str | None = None,
    data_dir: str | Path | None = None,
    detector_dir: str | Path | None = None,
    live_analysis: bool = True,
    write_to_tiled: bool = True,
    zmq_publish: str | None = None,
    tomo_options: Mapping[str, Any] | None = None,
    holo_options: Mapping[str, Any] | None = None,
    **tomo_kwargs: Any,
) -> SimulatedTomography:
    """Build and connect a simulated tomography session.

    Parameters
    ----------
    mode : {"txm", "holo"}
        Absorption tomography on the zone-plate microscope, or holotomography.
    phantom : Phantom3DConfig or Phantom3D, optional
        The 3-D sample (default ``Phantom3DConfig()``), or a ready phantom.
    margin_px : int, optional
        Empty voxels around the sample across the beam (default: enough to keep it
        in view at every angle, :func:`full_view_margin`).
    center_offset_px : float
        Rotation axis relative to the detector centre, pixels (found live).
    energy_ev : float, optional
        Start energy (default 8333 eV for ``txm``, ``HOLO_ENERGY_EV`` for ``holo``).
    tiled_uri, data_dir, detector_dir, live_analysis, write_to_tiled, zmq_publish
        As for :func:`~ssb_beamline.profiles.simulated.simulated_beamline`.
    tomo_options, holo_options : mapping, optional
        Keyword arguments of the live ``TomoLiveAnalysis`` / ``HoloLiveAnalysis``,
        read at the start of each run (a dict changed between runs takes effect).
    **tomo_kwargs
        Passed to :func:`~ssb_beamline.sim_devices.tomo_factory.make_sim_tomo`
        (fast rotation, 10 ms exposures and, for ``holo``, ``holo_z`` travel from
        0.05 mm by default).
    """
    store = open_store(tiled_uri, data_dir=data_dir)
    try:
        local = Path(data_dir or default_data_dir()).expanduser().resolve() / "detector"
        folder = Path(detector_dir or store.detector_dir or local).expanduser().resolve()
        make_private_dir(folder)
        if isinstance(phantom, Phantom3D):  # a ready phantom (e.g. the network phantom)
            sample = phantom
        else:
            sample = make_phantom3d(phantom or Phantom3DConfig())
        margin = full_view_margin(sample.shape) if margin_px is None else margin_px
        padded = pad_phantom3d(sample, margin)
        energy = energy_ev or (HOLO_ENERGY_EV if mode == "holo" else DEFAULT_ENERGY_EV)
        options: dict[str, Any] = {"rotation_velocity_deg_s": 360.0, "exposure_time": 0.01,
                                   "rotation_max_velocity_deg_s": 720.0}  # fmt: skip
        if mode == "holo":
            options.update(holo_z_mm=HOLO_DISTANCE_MM, holo_z_limits_mm=(0.05, 100.0))
        options.update(tomo_kwargs)
        projector = PhantomProjector(padded, center_offset_px=center_offset_px)
        tomo = make_sim_tomo(projector=projector, directory=folder, mode=mode, energy_ev=energy,
                             **options)  # fmt: skip
        register_focus_model(SIM_FOCUS_MODEL, sim_focus_model(tomo))
        RE = new_run_engine(store)
        quiet_disk_full_tracebacks(RE)
        RE(ensure_connected(*tomo.devices))
        RE.preprocessors.append(checkpoint_after_each_event)
        session = SimulatedTomography(RE, tomo, store, phantom=padded, energy_ev=energy)
        if write_to_tiled:
            attach_journaled_writer(session, store)
        if live_analysis:
            attach_tomo_analysis(session, store, write_to_tiled, tomo_options, holo_options)
        if zmq_publish:
            session.publisher = attach_publisher(RE, zmq_publish)
    except BaseException:
        store.close()
        raise
    return session
