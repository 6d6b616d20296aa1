"""Frame physics of the IOC: the in-process image models, fed by the served axes.

`FrameSource` builds the same models as the in-process simulators
(`~ssb_beamline.sim_devices.image_model.TXMImageModel` on the 2-D phantom of
``make_sim_txm``; `~ssb_beamline.sim_devices.projection_model.ProjectionImageModel`
on the 3-D phantom of ``make_sim_tomo`` for ``tomo``/``holo``) and renders a frame
from a `~ssb_beamline.sim_devices.tomo_detector.TomoState` read from the IOC's
axes at one instant (mid-exposure): energy, zone plate and detector z (defocus),
sample x/y (in/out of the beam), rotation, holotomography distance, both shutters
and the ring current. Nothing is precomputed: each frame is a function of where
the axes are when it is exposed. The flux follows the in-process
`~ssb_beamline.sim_devices.i0_monitor.FluxDriftModel` times the relative ring
current, and ``I0:Counts`` is that flux integrated over the exposure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..i0_monitor import FluxDriftModel
from ..image_model import DetectorNoiseConfig, TXMImageModel
from ..phantom import PhantomConfig, make_phantom
from ..phantom3d import Phantom3DConfig, make_phantom3d
from ..projection import PhantomProjector
from ..projection_model import ProjectionImageModel
from ..tomo_detector import TomoState

__all__ = ["I0_COUNTS_PER_S", "MODELS", "FrameSource", "SimConfig", "txm_phantom_config"]

logger = logging.getLogger(__name__)

#: Ion-chamber counts per second at nominal flux (``I0:Counts`` = flux * exposure * this).
I0_COUNTS_PER_S = 1.0e6
#: Frame models the camera can use (``{P}Sim:Model``).
MODELS = ("TXM", "Tomo", "Holo")
Model = Literal["TXM", "Tomo", "Holo"]
#: Ring current below which no beam reaches the sample, mA (as `BeamlineStateSources`).
BEAM_THRESHOLD_MA = 1.0


def txm_phantom_config(size: int, seed: int = 0) -> PhantomConfig:
    """The 2-D phantom of a ``size`` px IOC: ``make_sim_txm``'s default at 512 px.

    Smaller fields keep the particles inside the field of view: the largest
    radius is at most 1/6 of the field and the particle count scales with the
    area per particle, so a 64 px test phantom still holds several particles.

    >>> txm_phantom_config(512) == PhantomConfig(seed=0)
    True
    >>> txm_phantom_config(64).n_particles
    8
    """
    default = PhantomConfig(seed=seed)
    if size >= 512:
        return PhantomConfig(shape=(size, size), seed=seed)
    low, high = default.radius_range_um
    r_max = max(low * 2, min(high, size * default.pixel_size_um / 6))
    n = round(default.n_particles * (size / 512) ** 2 * (high / r_max) ** 2)
    return PhantomConfig(shape=(size, size), seed=seed, radius_range_um=(low, r_max),
                         n_particles=max(6, n))  # fmt: skip


@dataclass(frozen=True)
class SimConfig:
    """What the IOC simulates.

    Parameters
    ----------
    size : int
        The 2-D phantom is ``size x size`` pixels (``make_sim_txm``'s phantom).
    seed : int
        Phantom, beam-profile, noise and flux-drift seed.
    tomo_shape : tuple of int
        ``(Z, Y, X)`` voxels of the 3-D phantom used by ``Tomo``/``Holo``.
    model : {"TXM", "Tomo", "Holo"}
        Frame model at start (changed at run time through ``{P}Sim:Model``).
    """

    size: int = 512
    seed: int = 0
    tomo_shape: tuple[int, int, int] = (64, 128, 128)
    model: Model = "TXM"

    def __post_init__(self) -> None:
        if not 16 <= self.size <= 4096:
            raise ValueError(f"--size must be 16..4096 pixels, got {self.size}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")


@dataclass
class FrameSource:
    """Renders frames of the current model from a state reader.

    Parameters
    ----------
    config : SimConfig
        Phantom size and seed.
    read_state : callable
        ``read_state(t)`` -> `TomoState` at UNIX time ``t`` (positions exact at ``t``).
    """

    config: SimConfig
    read_state: Callable[[float], TomoState]
    model_name: Model = "TXM"
    flux_model: FluxDriftModel = field(init=False)
    _models: dict[str, object] = field(default_factory=dict, init=False, repr=False)
    _t0: float = field(default_factory=time.monotonic, init=False)

    def __post_init__(self) -> None:
        self.flux_model = FluxDriftModel(seed=self.config.seed)
        self.model_name = self.config.model
        self.model  # build the start model now, not at the first frame  # noqa: B018

    @property
    def model(self) -> TXMImageModel | ProjectionImageModel:
        """The current frame model (built on first use)."""
        name = self.model_name
        if name not in self._models:
            self._models[name] = self._build(name)
        return self._models[name]  # type: ignore[return-value]

    def _build(self, name: str) -> TXMImageModel | ProjectionImageModel:
        seed = self.config.seed
        noise = DetectorNoiseConfig(seed=seed)
        if name == "TXM":
            size = self.config.size
            phantom = make_phantom(txm_phantom_config(size, seed))
            logger.info("TXM model: %d particles, %s px", phantom.n_particles, phantom.shape)
            return TXMImageModel(phantom, noise=noise, beam_seed=seed)
        phantom3d = make_phantom3d(Phantom3DConfig(shape=self.config.tomo_shape, seed=seed))
        mode = "txm" if name == "Tomo" else "holo"
        logger.info("%s model: 3-D phantom %s voxels", name, self.config.tomo_shape)
        return ProjectionImageModel(PhantomProjector(phantom3d), mode=mode, noise=noise,
                                    beam_seed=seed)  # fmt: skip

    @property
    def shape(self) -> tuple[int, int]:
        """Frame shape ``(H, W)`` of the current model."""
        model = self.model
        if isinstance(model, TXMImageModel):
            return model.phantom.shape
        return model.detector_shape

    def relative_flux(self, ring_fraction: float) -> float:
        """Incident flux now relative to nominal (drift model x ring current fraction)."""
        return float(self.flux_model(time.monotonic() - self._t0)) * max(0.0, ring_fraction)

    def render(self, state: TomoState, exposure_s: float) -> np.ndarray:
        """One uint16 frame of the current model for ``state``."""
        return self.model.render(state, exposure_s)

    @staticmethod
    def i0_counts(state: TomoState, exposure_s: float) -> float:
        """Incident flux integrated over the exposure (0 when the beam does not reach it)."""
        beam = state.fe_shutter_open and not state.ring_current_ma < BEAM_THRESHOLD_MA
        return float(state.flux * exposure_s * I0_COUNTS_PER_S) if beam else 0.0
