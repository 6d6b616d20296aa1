"""Simulated scanning transmission X-ray microscope (STXM) at the Ni L3 edge.

``make_sim_stxm()`` returns a `SimSTXM`: ophyd-async devices (a soft X-ray
monochromator ``energy`` limited to `STXM_ENERGY_LIMITS_EV`, a fine sample stage
``stage.x``/``stage.y`` in um whose readbacks are time-stamped exactly so a fly
scan can be monitored, a ``shutter``, an I0 monitor ``i0`` and the point detector
``detector``), the sample and its ground truth::

    stxm = make_sim_stxm(PhantomConfig(shape=(128, 128), n_particles=6, seed=3))
    RE(ensure_connected(*stxm.devices))
    truth = stxm.truth_ratio_map(853.0, 855.5, x_um, y_um)

The sample is a thin section (`STXMSampleConfig.thickness_um`, 0.1 um) cut through
the same 2-D phantom as the TXM's (:func:`~.phantom.make_phantom`): the same
``PhantomConfig`` (seed) gives the same particles, phases and SOC (= Ni3+
fraction), so STXM and TXM maps of one sample can be registered and compared.
The phantom's centre sits at stage position ``offset_um`` (x, y); outside the
phantom there is no material (where the plan measures I0).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from ophyd_async.core import Device, StandardReadable, soft_signal_rw
from ophyd_async.core import StandardReadableFormat as Format
from scipy import ndimage

from .i0_monitor import FluxDriftModel, I0Monitor
from .motors import SimAxis
from .phantom import Phantom, PhantomConfig, Phase, make_phantom
from .shutter import ShutterState, SimShutter
from .stxm_detector import STXMDetector
from .stxm_physics import section_od
from .tomo_factory import TrackedMoveLogic

__all__ = [
    "STXM_ENERGY_LIMITS_EV",
    "STXM_STAGE_LIMITS_UM",
    "FineAxis",
    "STXMSample",
    "STXMSampleConfig",
    "STXMStage",
    "SimSTXM",
    "make_sim_stxm",
]

logger = logging.getLogger(__name__)

#: Soft X-ray monochromator range of the simulated STXM (Ni L3/L2 region), eV.
STXM_ENERGY_LIMITS_EV = (840.0, 875.0)
#: Travel of the fine (piezo) sample stage, um.
STXM_STAGE_LIMITS_UM = (-50.0, 50.0)


class FineAxis(SimAxis):
    """Piezo stage axis (um) whose readback carries the exact time stamp of its value.

    ``position_at(t)`` is the exact position at UNIX time ``t`` (what the beam spot
    sees); ``user_readback`` updates every ``update_period`` s during a move, like
    an interferometer readback that a fly scan monitors. ``max_velocity`` limits
    fly speeds.
    """

    def __init__(
        self,
        *,
        limits: tuple[float, float] = STXM_STAGE_LIMITS_UM,
        velocity: float = 2000.0,
        max_velocity: float = 5000.0,
        settle_time: float = 0.002,
        update_period: float = 0.005,
        name: str = "",
    ) -> None:
        self._update_period = update_period
        with self.add_children_as_readables(Format.CONFIG_SIGNAL):
            self.max_velocity = soft_signal_rw(float, max_velocity, units="um/s")
        super().__init__(0.0, "um", limits=limits, velocity=velocity,
                         settle_time=settle_time, name=name)  # fmt: skip

    @cached_property
    def movable_logic(self) -> TrackedMoveLogic:
        """Move logic used by `StandardMovable.set`."""
        return TrackedMoveLogic(**self.move_logic_signals(), update_period=self._update_period)

    def position_at(self, t: np.ndarray | float) -> np.ndarray:
        """Exact positions (um) at UNIX times ``t``."""
        return np.vectorize(self.movable_logic.position_at, otypes=[float])(t)


class STXMStage(StandardReadable):
    """Fine sample stage: ``x`` (along a scan line) and ``y`` (`FineAxis`, um)."""

    def __init__(self, *, limits: tuple[float, float] = STXM_STAGE_LIMITS_UM,
                 name: str = "") -> None:  # fmt: skip
        with self.add_children_as_readables():
            self.x = FineAxis(limits=limits)
            self.y = FineAxis(limits=limits)
        super().__init__(name=name)


@dataclass(frozen=True)
class STXMSampleConfig:
    """Thin section and counting chain of the simulated STXM.

    Parameters
    ----------
    thickness_um : float
        Section thickness, um (OD about 0.8 at the Ni2+ peak for 0.1 um of NMC).
    offset_um : tuple of float
        Stage position (x, y) of the phantom's centre, um.
    flux_cps : float
        Detector count rate with full flux and no sample, counts/s.
    dark_cps : float
        Dark count rate, counts/s.
    dead_time_s : float
        Non-paralysable counter dead time, s.
    """

    thickness_um: float = 0.1
    offset_um: tuple[float, float] = (0.0, 0.0)
    flux_cps: float = 2.0e7
    dark_cps: float = 500.0
    dead_time_s: float = 5.0e-9


@dataclass
class STXMSample:
    """A thin section through a `Phantom`, seen at stage positions (um)."""

    phantom: Phantom
    config: STXMSampleConfig = field(default_factory=STXMSampleConfig)
    _od_cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def pixel_size_um(self) -> float:
        """Pixel size of the phantom grid, um."""
        return self.phantom.config.pixel_size_um

    def od_grid(self, energy_ev: float) -> np.ndarray:
        """Noiseless OD on the phantom grid at ``energy_ev`` (cached), (H, W) float32."""
        key = round(energy_ev * 1000)
        if key not in self._od_cache:
            ph = self.phantom
            self._od_cache[key] = section_od(
                ph.phase, ph.soc, energy_ev, self.config.thickness_um,
                nmc=Phase.NMC, sse=Phase.SSE, carbon=Phase.CARBON,
            )  # fmt: skip
        return self._od_cache[key]

    def grid_coordinates(self, x_um: np.ndarray, y_um: np.ndarray) -> np.ndarray:
        """(row, col) on the phantom grid of stage positions, float."""
        h, w = self.phantom.shape
        ox, oy = self.config.offset_um
        px = self.pixel_size_um
        rows = (np.asarray(y_um, dtype=float) - oy) / px + (h - 1) / 2.0
        cols = (np.asarray(x_um, dtype=float) - ox) / px + (w - 1) / 2.0
        return np.stack([rows, cols])

    def sample(self, grid: np.ndarray, x_um: np.ndarray, y_um: np.ndarray,
               order: int = 1) -> np.ndarray:  # fmt: skip
        """Values of a phantom-grid map at stage positions (0 outside), interpolated."""
        coords = self.grid_coordinates(x_um, y_um)
        return ndimage.map_coordinates(grid, coords, order=order, mode="constant", cval=0.0)

    def od_at(self, x_um: np.ndarray, y_um: np.ndarray, energy_ev: float) -> np.ndarray:
        """Noiseless OD at stage positions (bilinear; 0 off the sample)."""
        return self.sample(self.od_grid(energy_ev), x_um, y_um)


@dataclass
class SimSTXM:
    """The simulated STXM: devices plus sample and ground truth.

    Attributes
    ----------
    energy : SimAxis
        Soft X-ray monochromator, eV (limits `STXM_ENERGY_LIMITS_EV`).
    stage : STXMStage
        ``stage.x``, ``stage.y``: fine stage, um.
    shutter : SimShutter
        Closed gives dark counts.
    i0 : I0Monitor
        Relative incident flux.
    detector : STXMDetector
        Point detector.
    sample : STXMSample
        The thin section and its phantom.
    """

    energy: SimAxis
    stage: STXMStage
    shutter: SimShutter
    i0: I0Monitor
    detector: STXMDetector
    sample: STXMSample

    @property
    def devices(self) -> list[Device]:
        """All top-level devices."""
        return [self.energy, self.stage, self.shutter, self.i0, self.detector]

    @property
    def phantom(self) -> Phantom:
        """The phantom the section is cut from."""
        return self.sample.phantom

    async def connect(self, mock: bool = False, timeout: float = 10.0) -> None:
        """Connect all devices (in the RunEngine's event loop)."""
        await asyncio.gather(*(d.connect(mock=mock, timeout=timeout) for d in self.devices))

    @property
    def sample_out_um(self) -> tuple[float, float]:
        """A stage position (x, y) off the sample (for I0), um."""
        h, w = self.phantom.shape
        half = 0.5 * max(h, w) * self.sample.pixel_size_um
        ox, oy = self.sample.config.offset_um
        return (float(np.ceil(ox + half + 2.0)), float(oy))

    def truth_fraction_map(self, x_um: np.ndarray, y_um: np.ndarray) -> np.ndarray:
        """True Ni3+ fraction at a grid of positions (NaN off NMC; nearest phantom pixel)."""
        yy, xx = np.meshgrid(np.asarray(y_um, float), np.asarray(x_um, float), indexing="ij")
        ph = self.phantom
        nmc = self.sample.sample((ph.labels > 0).astype(np.float32), xx, yy, order=0) > 0
        soc = self.sample.sample(ph.soc, xx, yy, order=0)
        return np.where(nmc, soc, np.nan).astype(np.float32)

    def truth_labels(self, x_um: np.ndarray, y_um: np.ndarray) -> np.ndarray:
        """Phantom particle labels at a grid of positions (nearest), int32."""
        yy, xx = np.meshgrid(np.asarray(y_um, float), np.asarray(x_um, float), indexing="ij")
        lab = self.sample.sample(self.phantom.labels.astype(np.float64), xx, yy, order=0)
        return np.rint(lab).astype(np.int32)

    def truth_od_map(self, energy_ev: float, x_um: np.ndarray, y_um: np.ndarray) -> np.ndarray:
        """Noiseless OD at a grid of positions (as the detector sees it)."""
        yy, xx = np.meshgrid(np.asarray(y_um, float), np.asarray(x_um, float), indexing="ij")
        return self.sample.od_at(xx, yy, energy_ev).astype(np.float32)

    def truth_ratio_map(self, e1: float, e2: float, x_um: np.ndarray,
                        y_um: np.ndarray) -> np.ndarray:  # fmt: skip
        """Noiseless ``OD(e2) / OD(e1)`` at a grid of positions, NaN off NMC."""
        mask = np.isfinite(self.truth_fraction_map(x_um, y_um))
        od1 = self.truth_od_map(e1, x_um, y_um)
        od2 = self.truth_od_map(e2, x_um, y_um)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(mask & (od1 > 0), od2 / od1, np.nan).astype(np.float32)


def make_sim_stxm(
    phantom_config: PhantomConfig | None = None,
    sample_config: STXMSampleConfig | None = None,
    *,
    energy_ev: float = 853.0,
    dwell_time: float = 0.001,
    flux_model: FluxDriftModel | None = None,
    name_prefix: str = "stxm_",
    phantom: Phantom | None = None,
) -> SimSTXM:
    """Build a simulated STXM with names set (``stxm_energy``, ``stxm_stage_x``, ...).

    Parameters
    ----------
    phantom_config : PhantomConfig, optional
        The sample (same config and seed as a TXM's: same particles).
    sample_config : STXMSampleConfig, optional
        Section thickness, stage offset, counting chain.
    energy_ev : float
        Start energy, eV.
    dwell_time : float
        Initial dwell per pixel, s.
    flux_model : FluxDriftModel, optional
        I0 drift; default seeded from the phantom seed.
    name_prefix : str
        Prefix of the device names.
    phantom : Phantom, optional
        An already generated phantom (skips ``make_phantom``; must match the config).

    Returns
    -------
    SimSTXM
        Not yet connected.
    """
    phantom_config = phantom_config or (phantom.config if phantom else PhantomConfig())
    sample_config = sample_config or STXMSampleConfig()
    phantom = phantom or make_phantom(phantom_config)
    sample = STXMSample(phantom, sample_config)
    energy = SimAxis(energy_ev, "eV", limits=STXM_ENERGY_LIMITS_EV, velocity=50.0,
                     settle_time=0.005)  # fmt: skip
    stage = STXMStage()
    shutter = SimShutter(actuation_time=0.005)
    i0 = I0Monitor(flux_model or FluxDriftModel(seed=phantom_config.seed))

    def flux_at(t: np.ndarray) -> np.ndarray:
        return np.asarray(i0.model(i0.elapsed() - (time.time() - np.asarray(t))), dtype=float)

    async def beam_on() -> bool:
        return await shutter.state.get_value() == ShutterState.OPEN

    detector = STXMDetector(
        sample.od_at, stage.x.position_at, stage.y.position_at, energy.user_readback.get_value,
        flux_at, beam_on,
        flux_cps=sample_config.flux_cps, dark_cps=sample_config.dark_cps,
        dead_time_s=sample_config.dead_time_s, dwell_time=dwell_time, seed=phantom_config.seed,
    )  # fmt: skip
    stxm = SimSTXM(energy, stage, shutter, i0, detector, sample)
    for attr in ("energy", "stage", "shutter", "i0", "detector"):
        getattr(stxm, attr).set_name(f"{name_prefix}{attr}", child_name_separator="_")
    logger.info("Simulated STXM: %d particles, section %.3g um", phantom.n_particles,
                sample_config.thickness_um)  # fmt: skip
    return stxm
