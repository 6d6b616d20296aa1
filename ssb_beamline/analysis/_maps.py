"""The result record of :func:`~ssb_beamline.analysis.pipeline.analyse_xanes_stack`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._fused import write_normalized
from ._parallel import DEFAULT_CHUNK_PIXELS, run_chunks
from ._validation import check_stack, output_array
from .edge_fit import X_SCALE_EV
from .soc import SocCalibration

__all__ = ["XanesMaps", "normalized_stack"]


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
    pre_edge : ndarray of float32, shape (2, H, W), or None
        Pre-edge line per pixel: absorbance at ``e0_global`` and slope per
        ``X_SCALE_EV`` (50 eV); with ``edge_step`` it gives the normalised
        stack (:func:`normalized_stack`).
    edge_estimator : dict
        Edge-energy estimators and the energy grid they ran on
        (:func:`~ssb_beamline.analysis.edge_interp.estimator_record`).
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
    pre_edge: np.ndarray | None = None
    edge_estimator: dict[str, Any] = field(default_factory=dict)

    @property
    def oxidation_state(self) -> np.ndarray:
        """Ni oxidation state map from ``soc``."""
        c = self.calibration
        return (c.reduced_state + self.soc * (c.oxidised_state - c.reduced_state)).astype(
            np.float32
        )


def normalized_stack(
    mu: np.ndarray,
    energies: np.ndarray,
    maps: XanesMaps,
    *,
    out: np.ndarray | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """The normalised stack ``(mu - pre_edge_line) / edge_step`` from the maps of ``mu``.

    Lets a live analysis publish its maps first and normalise the stack after;
    pixels without a positive edge step hold 0.

    Parameters
    ----------
    mu : ndarray, shape (N, H, W)
        The absorbance stack the maps were computed from.
    energies : ndarray, shape (N,)
        Its energies, eV.
    maps : XanesMaps
        From :func:`~ssb_beamline.analysis.analyse_xanes_stack` (with ``pre_edge``).
    out : ndarray of float32, shape (N, H, W), optional
        Preallocated output.
    workers : int, optional
        Threads.

    Returns
    -------
    ndarray of float32, shape (N, H, W)

    Examples
    --------
    >>> from ssb_beamline.analysis import analyse_xanes_stack
    >>> from ssb_beamline.reference_data import ni_k_edge_references
    >>> refs = ni_k_edge_references()
    >>> e = np.arange(8300.0, 8450.0, 1.0)
    >>> mu = (0.2 + 0.5 * refs[1].at(e))[:, None, None] * np.ones((1, 1, 2))
    >>> maps = analyse_xanes_stack(mu.astype(np.float32), e, refs, mask=np.ones((1, 2), bool))
    >>> norm = normalized_stack(mu.astype(np.float32), e, maps)
    >>> round(float(norm[-1, 0, 0]), 2) == round(float(refs[1].at(e)[-1]), 2)
    True
    """
    if maps.pre_edge is None:
        raise ValueError(
            "these maps carry no pre-edge line (pre_edge is None); recompute them with "
            "analyse_xanes_stack, or pass return_norm=True to it."
        )
    mu2, e, spatial = check_stack(mu, energies, name="mu", min_points=2)
    if tuple(spatial) != maps.edge_step.shape:
        raise ValueError(
            f"mu has images of shape {tuple(spatial)} but the maps {maps.edge_step.shape}; "
            "pass the stack the maps were computed from."
        )
    n, p = mu2.shape
    norm2 = output_array(out, np.shape(mu), "out").reshape(n, p)
    x = (e - maps.e0_global) / X_SCALE_EV
    line = np.stack([np.ones(n), x], axis=1).astype(np.float32)
    coef = maps.pre_edge.reshape(2, p)
    step = maps.edge_step.reshape(p)
    ok = np.isfinite(step) & (step > 0)
    inv = np.zeros(p, np.float32)
    np.divide(np.float32(1.0), step, out=inv, where=ok)

    def work(s: slice) -> None:
        write_normalized(mu2[:, s], line, coef[:, s], inv[s], norm2[:, s])

    run_chunks(work, p, DEFAULT_CHUNK_PIXELS, workers)
    return norm2.reshape(np.shape(mu))
