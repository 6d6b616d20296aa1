"""Transmission -> absorbance with dark and flat (sample-out) correction."""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np

from ._parallel import default_workers, run_chunks

__all__ = ["AbsorbanceResult", "OpenBeam", "absorbance", "absorbance_with_open_beam", "open_beam"]

log = logging.getLogger(__name__)


class AbsorbanceResult(NamedTuple):
    """Absorbance image(s) and their validity mask.

    Attributes
    ----------
    values : ndarray of float32
        ``-ln((I - dark) / (flat - dark))``; 0.0 where ``valid`` is False.
    valid : ndarray of bool
        False where the flat or the frame is saturated or not above the dark.
    """

    values: np.ndarray
    valid: np.ndarray


def _check_image(arr: object, name: str) -> np.ndarray:
    a = np.asarray(arr)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise TypeError(
            f"{name} must be an integer or float image; got dtype {a.dtype}. "
            "Pass the detector counts as a numpy array."
        )
    return a


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
    frames = _check_image(frames, "frames")
    dark = _check_image(dark, "dark")
    flat = _check_image(flat, "flat")
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
    beam = open_beam(flat, dark, saturation=saturation)
    return absorbance_with_open_beam(
        frames, dark, beam, saturation=saturation, out=out, workers=workers
    )


class OpenBeam(NamedTuple):
    """A flat field prepared once for many frames: ``ln(flat - dark)`` and its validity.

    Attributes
    ----------
    log_open : ndarray of float32
        ``ln(flat - dark)``; 0.0 where ``valid`` is False.
    valid : ndarray of bool
        False where the flat is saturated or not above the dark.
    """

    log_open: np.ndarray
    valid: np.ndarray


def open_beam(flat: np.ndarray, dark: np.ndarray, *, saturation: float = 65535) -> OpenBeam:
    """Prepare a flat (sample-out) frame for :func:`absorbance_with_open_beam`.

    A live scan prepares each flat as it arrives, so that each image then costs one
    logarithm instead of a division and a logarithm.

    Raises
    ------
    ValueError
        When no pixel of the flat lies above the dark (e.g. an all-zero flat).

    Examples
    --------
    >>> beam = open_beam(np.full((2, 2), 1001, np.uint16), np.ones((2, 2)))
    >>> round(float(beam.log_open[0, 0]), 4), bool(beam.valid.all())
    (6.9078, True)
    """
    flat = _check_image(flat, "flat")
    dark = _check_image(dark, "dark")
    den = np.subtract(flat, dark, dtype=np.float32)
    valid = (den > 0) & (flat < saturation)
    if not valid.any():
        raise ValueError(
            "no pixel of the flat lies above the dark (flat - dark <= 0 everywhere, e.g. "
            "all-zero flats). Record the flat with the beam on and the sample out."
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        np.log(den, out=den)
    np.copyto(den, 0.0, where=~valid)
    return OpenBeam(den, valid)


def absorbance_with_open_beam(
    frames: np.ndarray,
    dark: np.ndarray,
    beam: OpenBeam,
    *,
    saturation: float = 65535,
    out: np.ndarray | None = None,
    workers: int | None = None,
) -> AbsorbanceResult:
    """``ln(flat - dark) - ln(I - dark)`` with a flat prepared by :func:`open_beam`.

    Same result as :func:`absorbance`; invalid pixels (frame saturated or not above
    the dark, or an invalid flat pixel) hold 0.0 and ``valid`` False.

    Examples
    --------
    >>> dark = np.full((1, 2), 100, np.uint16)
    >>> beam = open_beam(np.full((1, 2), 1000, np.uint16), dark)
    >>> res = absorbance_with_open_beam(np.array([[550, 65535]], np.uint16), dark, beam)
    >>> np.round(res.values.astype(float), 4).tolist(), res.valid.tolist()
    ([[0.6931, 0.0]], [[True, False]])
    """
    frames = _check_image(frames, "frames")
    if out is None:
        out = np.empty(frames.shape, np.float32)
    elif out.shape != frames.shape or out.dtype != np.float32:
        raise ValueError(
            f"out must be float32 with shape {frames.shape}; got {out.dtype} {out.shape}. "
            "Allocate it with np.empty(frames.shape, np.float32)."
        )
    valid = np.empty(frames.shape, bool)
    width = frames.shape[-1]
    n_lead = int(np.prod(frames.shape[:-1]))
    f2 = frames.reshape(n_lead, width)
    o2 = out.reshape(n_lead, width)
    v2 = valid.reshape(n_lead, width)
    d2 = np.broadcast_to(dark, frames.shape).reshape(n_lead, width)
    l2 = np.broadcast_to(beam.log_open, frames.shape).reshape(n_lead, width)
    b2 = np.broadcast_to(beam.valid, frames.shape).reshape(n_lead, width)
    sat = float(saturation)

    def work(rows: slice) -> None:
        o = o2[rows]
        v = v2[rows]
        np.subtract(f2[rows], d2[rows], out=o, dtype=np.float32)
        np.greater(o, 0, out=v)
        v &= b2[rows]
        v &= f2[rows] < sat
        with np.errstate(divide="ignore", invalid="ignore"):
            np.log(o, out=o)
        np.subtract(l2[rows], o, out=o)
        np.copyto(o, 0.0, where=~v)

    chunk_rows = max(1, (1 << 17) // max(1, width))
    run_chunks(work, n_lead, chunk_rows, default_workers() if workers is None else workers)
    return AbsorbanceResult(out, valid)
