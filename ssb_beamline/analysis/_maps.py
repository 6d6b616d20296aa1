"""The result record of :func:`~ssb_beamline.analysis.pipeline.analyse_xanes_stack`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .soc import SocCalibration

__all__ = ["XanesMaps"]


@dataclass(frozen=True)
class XanesMaps:
    """All maps of one XANES stack (see :func:`analyse_xanes_stack`).

    Maps have the image shape (H, W).  ``edge_energy``, ``fractions``,
    ``residual``, ``soc`` and ``soc_edge`` are NaN outside ``mask`` (and
    ``edge_energy`` also where no 0.5 crossing exists in the edge window);
    ``edge_step`` is computed for every pixel and ``e0`` wherever the edge step
    is positive (NaN elsewhere).

    Attributes
    ----------
    e0 : ndarray of float32
        Per-pixel derivative maximum, eV.
    edge_step : ndarray of float32
        Edge step (absorbance units) at ``e0_global``.
    edge_energy : ndarray of float32
        Half-step (normalised absorbance 0.5) energy, eV.
    fractions : ndarray of float32, shape (2, H, W)
        LCF weights of (reduced, oxidised) references, sum to one, in [0, 1].
    residual : ndarray of float32
        RMS LCF residual (normalised units).
    soc : ndarray of float32
        SOC from the LCF fractions (oxidised fraction).
    soc_edge : ndarray of float32
        SOC from the half-step edge energy and ``calibration``.
    mask : ndarray of bool
        Edge-jump mask (pixels with a real edge).
    mask_threshold : float
        Edge-step threshold used for ``mask`` (NaN if a mask was given).
    e0_global : float
        Global e0 fixing the fit ranges.
    pre_range, post_range : tuple of float
        Fit ranges, eV.
    nnorm : int
        Post-edge polynomial degree.
    lcf_range : tuple of float
        Energy range of the LCF, eV.
    calibration : SocCalibration
        SOC calibration used.
    reference_names : tuple of str
        Names of the LCF references.
    norm : ndarray of float32 or None
        Normalised stack when requested.
    timings : dict
        Wall-clock seconds of the phases.
    """

    e0: np.ndarray
    edge_step: np.ndarray
    edge_energy: np.ndarray
    fractions: np.ndarray
    residual: np.ndarray
    soc: np.ndarray
    soc_edge: np.ndarray
    mask: np.ndarray
    mask_threshold: float
    e0_global: float
    pre_range: tuple[float, float]
    post_range: tuple[float, float]
    nnorm: int
    lcf_range: tuple[float, float]
    calibration: SocCalibration
    reference_names: tuple[str, ...]
    norm: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def oxidation_state(self) -> np.ndarray:
        """Ni oxidation state map from ``soc``."""
        c = self.calibration
        return (c.reduced_state + self.soc * (c.oxidised_state - c.reduced_state)).astype(
            np.float32
        )
