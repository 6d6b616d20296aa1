"""Transmission -> absorbance with dark and flat (sample-out) correction.

The one-call form; the prepared flat and the per-frame pass live in
:mod:`.open_beam` (re-exported here).
"""

from __future__ import annotations

import numpy as np

from ._validation import check_image
from .open_beam import (
    AbsorbanceResult,
    CountTable,
    OpenBeam,
    absorbance_with_open_beam,
    open_beam,
)

__all__ = [
    "AbsorbanceResult",
    "CountTable",
    "OpenBeam",
    "absorbance",
    "absorbance_with_open_beam",
    "open_beam",
]


def absorbance(
    frames: np.ndarray,
    dark: np.ndarray,
    flat: np.ndarray,
    *,
    saturation: float = 65535,
    out: np.ndarray | None = None,
    workers: int | None = None,
) -> AbsorbanceResult:
    """Flat- and dark-corrected absorbance ``-ln((I - dark) / (flat - dark))``.

    Parameters
    ----------
    frames : ndarray, shape (H, W) or (N, H, W)
        Sample-in counts, any integer or float dtype.
    dark, flat : ndarray, shape (H, W) or the shape of ``frames``
        Dark (beam off) and flat (sample out) counts.
    saturation : float
        Counts at or above this value in ``frames`` or ``flat`` are invalid.
    out : ndarray of float32, optional
        Preallocated output with the shape of ``frames`` (avoids an allocation
        per frame in a live callback).
    workers : int, optional
        Threads to use (default: the available CPUs).

    Returns
    -------
    AbsorbanceResult
        ``values`` (float32) and ``valid`` (bool).  Invalid pixels, where
        ``flat - dark <= 0``, ``I - dark <= 0``, or ``frame >= saturation`` or
        ``flat >= saturation``, hold 0.0 (never NaN) and ``valid`` False.

    Raises
    ------
    ValueError
        On shape mismatch, or when no pixel of the flat lies above the dark.

    Examples
    --------
    >>> import numpy as np
    >>> flat = np.full((2, 2), 1000, np.uint16)
    >>> dark = np.full((2, 2), 100, np.uint16)
    >>> frame = np.array([[550, 1000], [50, 65535]], np.uint16)
    >>> res = absorbance(frame, dark, flat)
    >>> np.round(res.values.astype(float), 4).tolist()
    [[0.6931, 0.0], [0.0, 0.0]]
    >>> res.valid.tolist()
    [[True, True], [False, False]]
    """
    frames = check_image(frames, "frames")
    dark = check_image(dark, "dark")
    flat = check_image(flat, "flat")
    if frames.ndim not in (2, 3):
        raise ValueError(
            f"frames must have shape (H, W) or (N, H, W); got {frames.shape}. "
            "Stack the frames along axis 0."
        )
    img_shape = frames.shape[-2:]
    for name, ref in (("dark", dark), ("flat", flat)):
        if ref.shape not in (img_shape, frames.shape):
            raise ValueError(
                f"{name} has shape {ref.shape} but frames have shape {frames.shape}. "
                f"Pass a {name} image of shape {img_shape} or one per frame {frames.shape}."
            )
    # the logarithm table pays off only when the prepared flat serves several frames
    n_frames = frames.shape[0] if frames.ndim == 3 else 1
    beam = open_beam(flat, dark, saturation=saturation, count_table=n_frames >= 4)
    return absorbance_with_open_beam(
        frames, dark, beam, saturation=saturation, out=out, workers=workers
    )
