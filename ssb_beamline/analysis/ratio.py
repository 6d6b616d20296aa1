"""Two-energy ratio maps (e.g. STXM Ni L3 I(855.5 eV) / I(853 eV) valence maps)."""

from __future__ import annotations

import logging

import numpy as np

from ._validation import check_mask, check_stack

__all__ = ["frame_at", "ratio_map"]

log = logging.getLogger(__name__)


def frame_at(stack2d: np.ndarray, energies: np.ndarray, energy: float) -> np.ndarray:
    """Frame at ``energy`` by linear interpolation between the two nearest samples.

    Exact (no interpolation) when ``energy`` is a sample point.

    Parameters
    ----------
    stack2d : numpy.ndarray, shape (N, ...)
        Frames over N energies (axis 0 energy).
    energies : numpy.ndarray, shape (N,)
        Increasing energies of the frames, eV.
    energy : float
        Energy to read, eV; must lie inside ``energies[0]`` to ``energies[-1]``.

    Returns
    -------
    numpy.ndarray of float64
        The interpolated frame (shape ``stack2d.shape[1:]``).

    Raises
    ------
    ValueError
        If ``energy`` lies outside the scan (the message names the range).

    Examples
    --------
    >>> frame_at(np.array([[0.0], [2.0]]), np.array([1.0, 2.0]), 1.25).tolist()
    [0.5]
    """
    e = energies
    if not e[0] <= energy <= e[-1]:
        raise ValueError(
            f"energy {energy} eV lies outside the scan {e[0]}-{e[-1]} eV. "
            "Pick energies inside the measured range."
        )
    i = int(np.searchsorted(e, energy, side="right")) - 1
    i = min(max(i, 0), e.size - 1)
    if e[i] == energy or i == e.size - 1:
        return stack2d[i].astype(np.float64)
    t = (energy - e[i]) / (e[i + 1] - e[i])
    return (1.0 - t) * stack2d[i].astype(np.float64) + t * stack2d[i + 1].astype(np.float64)


def ratio_map(
    stack: np.ndarray,
    energies: np.ndarray,
    e1: float,
    e2: float,
    *,
    mask: np.ndarray | None = None,
    min_denominator: float | None = None,
) -> np.ndarray:
    """Per-pixel ratio ``I(e2) / I(e1)`` of a spectral stack.

    ``I(e)`` is the frame at ``e``, linearly interpolated between the two
    neighbouring energies when ``e`` is not a sample point (so the ratio is
    exact on noiseless data sampled at ``e1`` and ``e2``).

    Parameters
    ----------
    stack : ndarray, shape (N, H, W)
        Intensities or optical densities, energy along axis 0.
    energies : ndarray, shape (N,)
        Strictly increasing energies, eV.
    e1, e2 : float
        Denominator and numerator energies, eV.
    mask : ndarray of bool, optional
        Pixels to compute; others are NaN.
    min_denominator : float, optional
        ``|I(e1)|`` at or below this is treated as zero.  Default
        ``1e-6 * max |I(e1)|`` (NaN-safe).

    Returns
    -------
    ndarray of float32, shape (H, W)
        NaN exactly where the pixel is outside ``mask`` or ``|I(e1)|`` is at or
        below ``min_denominator`` (no meaningful ratio); the count is logged.

    Examples
    --------
    >>> st = np.array([[[1.0, 0.0]], [[2.0, 0.0]], [[3.0, 1.0]]])
    >>> ratio_map(st, [853.0, 854.0, 855.5], 853.0, 855.5).tolist()
    [[3.0, nan]]
    """
    s2, e, spatial = check_stack(stack, energies, name="stack", min_points=2)
    m = check_mask(mask, spatial)
    den = frame_at(s2, e, float(e1))
    num = frame_at(s2, e, float(e2))
    absden = np.abs(den)
    if min_denominator is None:
        finite = absden[np.isfinite(absden)]
        min_denominator = 1e-6 * float(finite.max()) if finite.size else 0.0
    bad = ~(absden > min_denominator)
    if m is not None:
        bad |= ~m
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(bad, np.nan, num / np.where(bad, 1.0, den)).astype(np.float32)
    if bad.any():
        log.info("ratio_map: %d pixels without a usable I(%s eV) set to NaN", int(bad.sum()), e1)
    return out.reshape(spatial)
