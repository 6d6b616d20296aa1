"""Sub-pixel registration of the frames of a spectral stack (drift correction)."""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
from scipy import ndimage

__all__ = ["AlignResult", "align_stack", "registration_features"]

log = logging.getLogger(__name__)


class AlignResult(NamedTuple):
    """Aligned stack and the shifts applied.

    Attributes
    ----------
    aligned : ndarray of float32, shape (N, H, W)
        Frames shifted onto the reference.
    shifts : ndarray of float64, shape (N, 2)
        (row, column) shift applied to each frame, pixels.
    """

    aligned: np.ndarray
    shifts: np.ndarray


def registration_features(frame: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Gaussian gradient magnitude of a frame, tapered at the borders.

    Edges of particles are where the image changes least with energy across
    an absorption edge (the absorbance inside changes, the outline does not),
    so registering gradient magnitudes is robust through the edge.  A Tukey
    taper suppresses the wrap-around of the FFT at the image borders.

    Parameters
    ----------
    frame : ndarray
        ``(H, W)`` image.
    sigma : float
        Gaussian sigma of the gradient, pixels.

    Examples
    --------
    >>> img = np.zeros((16, 16)); img[4:12, 4:12] = 1.0
    >>> f = registration_features(img)
    >>> f.shape, bool(f[4, 8] > f[8, 8])
    ((16, 16), True)
    """
    g = ndimage.gaussian_gradient_magnitude(np.asarray(frame, np.float32), sigma)
    g -= g.mean()
    taper = [_tukey(n) for n in g.shape]
    return g * taper[0][:, None] * taper[1][None, :]


def _tukey(n: int, alpha: float = 0.2) -> np.ndarray:
    w = np.ones(n, np.float32)
    m = max(1, int(alpha * n / 2))
    ramp = 0.5 * (1 - np.cos(np.pi * np.arange(m) / m))
    w[:m] = ramp
    w[n - m :] = ramp[::-1]
    return w


def align_stack(  # noqa: PLR0912 -- the branches are the input checks, each with its own error message
    stack: np.ndarray,
    *,
    reference: int | np.ndarray | None = None,
    upsample: int = 20,
    chain: bool = False,
    sigma: float = 1.5,
    order: int = 3,
    max_shift: float | None = None,
) -> AlignResult:
    """Register every frame to a reference with sub-pixel phase correlation.

    Frames are compared as :func:`registration_features` (gradient magnitude),
    with :func:`skimage.registration.phase_cross_correlation` at
    ``upsample`` x sub-pixel precision, and shifted with
    :func:`scipy.ndimage.shift` (spline ``order``, edges filled with the
    nearest value).

    Parameters
    ----------
    stack : ndarray, shape (N, H, W)
        Frames, e.g. absorbance, energy along axis 0.
    reference : int or ndarray, optional
        Index of the reference frame, or a reference image (H, W).  Default:
        the middle frame.
    upsample : int
        Sub-pixel upsampling of the phase correlation (1/upsample px).
    chain : bool
        Register each frame to its neighbour (towards the reference) and sum
        the shifts instead of registering to the reference directly: use for
        long scans whose contrast changes strongly; errors accumulate as a
        random walk.
    sigma : float
        Gaussian sigma (px) of the gradient features.
    order : int
        Spline order of the shift interpolation.
    max_shift : float, optional
        Raise if any estimated shift is larger (px): likely a failed registration.

    Returns
    -------
    AlignResult

    Examples
    --------
    >>> yy, xx = np.mgrid[0:64, 0:64]
    >>> img = np.exp(-((yy - 30) ** 2 + (xx - 34) ** 2) / 40.0)
    >>> moved = ndimage.shift(img, (2.5, -1.25), order=3)
    >>> res = align_stack(np.stack([img, moved]), reference=0)
    >>> bool(np.allclose(res.shifts[1], [-2.5, 1.25], atol=0.1))
    True
    """
    from skimage.registration import phase_cross_correlation

    st = np.asarray(stack)
    if st.ndim != 3:
        raise ValueError(
            f"stack must have shape (N, H, W); got {st.shape}. Stack the frames along axis 0."
        )
    n = st.shape[0]
    if isinstance(reference, np.ndarray):
        if reference.shape != st.shape[1:]:
            raise ValueError(
                f"reference image has shape {reference.shape}, frames {st.shape[1:]}. "
                "Pass a reference of the frame shape or a frame index."
            )
        ref_idx = None
        ref_feat = registration_features(reference, sigma)
    else:
        ref_idx = n // 2 if reference is None else int(reference)
        if not 0 <= ref_idx < n:
            raise ValueError(f"reference index {ref_idx} is outside 0..{n - 1}. Pick a frame.")
        ref_feat = None
    feats = [registration_features(f, sigma) for f in st]
    shifts = np.zeros((n, 2))
    if ref_idx is None or not chain:
        target = ref_feat if ref_idx is None else feats[ref_idx]
        for i in range(n):
            if i == ref_idx:
                continue
            shifts[i] = phase_cross_correlation(
                target, feats[i], upsample_factor=upsample, normalization=None
            )[0]
    else:
        for i in range(ref_idx + 1, n):
            step = phase_cross_correlation(
                feats[i - 1], feats[i], upsample_factor=upsample, normalization=None
            )[0]
            shifts[i] = shifts[i - 1] + step
        for i in range(ref_idx - 1, -1, -1):
            step = phase_cross_correlation(
                feats[i + 1], feats[i], upsample_factor=upsample, normalization=None
            )[0]
            shifts[i] = shifts[i + 1] + step
    if max_shift is not None and np.abs(shifts).max() > max_shift:
        worst = int(np.abs(shifts).max(axis=1).argmax())
        raise ValueError(
            f"frame {worst} needs a shift of {shifts[worst].round(2).tolist()} px, more than "
            f"max_shift={max_shift}. Check the frame (beam loss?) or raise max_shift."
        )
    aligned = np.empty(st.shape, np.float32)
    for i in range(n):
        if np.any(shifts[i] != 0):
            ndimage.shift(st[i].astype(np.float32), shifts[i], output=aligned[i], order=order,
                          mode="nearest")  # fmt: skip
        else:
            aligned[i] = st[i]
    log.debug("align_stack: max |shift| %.2f px", float(np.abs(shifts).max()))
    return AlignResult(aligned, shifts)
