"""Open-beam (dark and flat) correction of frames: the prepared flat and the fast pass.

:func:`open_beam` prepares a flat once (its log, a count table for integer
frames); :func:`absorbance_with_open_beam` turns each frame into absorbance in
one in-place float32 pass.  :func:`~.absorbance.absorbance` is the one-call form.
"""

from __future__ import annotations

import functools
import logging
from typing import NamedTuple

import numpy as np

from ._count_tables import CountTable, table_for_dark
from ._jit import absorbance_table_rows, open_counts
from ._parallel import default_workers, run_chunks
from ._scratch import scratch
from ._validation import check_image, check_saturation, output_array

__all__ = [
    "AbsorbanceResult",
    "CountTable",
    "OpenBeam",
    "absorbance_with_open_beam",
    "open_beam",
]

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


class OpenBeam:
    """A flat field prepared once for many frames (made by :func:`open_beam`).

    On the table path only the flat's table indices are kept (2 bytes a pixel, no
    reference to the frame: a replay keeps a flat per energy); the flat and its
    validity follow from them exactly, computed only if asked for.

    Parameters
    ----------
    flat, dark : ndarray
        The flat (None with ``flat_counts``) and dark frames it was prepared from.
    valid, counts, flat_counts, log_open
        As the attributes below (``valid`` None with ``flat_counts``).

    Attributes
    ----------
    valid : ndarray of bool
        False where the flat is saturated or not above the dark.
    counts : CountTable or None
        Integer form of the dark for integer (uint8/uint16) frames, or None.
    flat_counts : ndarray of uint16 or None
        With ``counts``: the flat as ``flat - (floor(dark) + 1)`` (wrapping), the
        table index of ``ln(flat - dark)``; valid exactly where below
        ``counts.top - counts.dark_plus1``.
    log_open : ndarray of float32
        ``ln(flat - dark)``, NaN where ``valid`` is False (computed on first use
        when the flat has its integer form, which integer frames do not need).
    """

    __slots__ = ("_dark", "_flat", "_log_open", "_valid", "counts", "flat_counts")

    def __init__(
        self,
        flat: np.ndarray | None,
        dark: np.ndarray,
        valid: np.ndarray | None,
        counts: CountTable | None = None,
        flat_counts: np.ndarray | None = None,
        log_open: np.ndarray | None = None,
    ) -> None:
        self._flat, self._dark, self._valid = flat, dark, valid
        self.counts, self.flat_counts, self._log_open = counts, flat_counts, log_open

    @property
    def valid(self) -> np.ndarray:
        """Where the flat is above the dark and below the saturation (bool)."""
        if self._valid is None:  # flat_counts < top - (floor(dark) + 1), in int32
            limit = np.subtract(self.counts.top, self.counts.dark_plus1, dtype=np.int32)
            self._valid = np.less(self.flat_counts, limit)
        return self._valid

    @property
    def log_open(self) -> np.ndarray:
        """``log(flat - dark)`` of the prepared flat (float32)."""
        if self._log_open is None:
            self._log_open = _log_open(self._flat_frame(), self._dark, self.valid)
        return self._log_open

    def _flat_frame(self) -> np.ndarray:  # table path: flat_counts + floor(dark) + 1, exact
        if self._flat is not None:
            return self._flat
        return np.add(self.flat_counts, self.counts.dark_plus1, dtype=np.uint16)


def _log_open(flat: np.ndarray, dark: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``ln(flat - dark)`` (float32), NaN where not ``valid``."""
    den = np.subtract(flat, dark, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.log(den, out=den)
    np.copyto(den, np.nan, where=~valid)
    return den


def open_beam(
    flat: np.ndarray,
    dark: np.ndarray,
    *,
    saturation: float = 65535,
    count_table: bool = True,
) -> OpenBeam:
    """Prepare a flat (sample-out) frame for :func:`absorbance_with_open_beam`.

    A live scan prepares each flat as it arrives, so that each image then costs one
    logarithm instead of a division and a logarithm.  With ``count_table`` (and a
    2-D dark within [0, 65535)), integer frames then take ``ln(I - dark)`` and an
    integer flat ``ln(flat - dark)`` from a 65536-entry table (see
    :class:`CountTable`) instead of computing them: the flat is then kept as
    2-byte table indices, which halves what each image reads of it.

    Parameters
    ----------
    flat : ndarray
        Flat (sample-out) frame(s), ``(H, W)`` or ``(N, H, W)``.
    dark : ndarray
        Dark frame, ``(H, W)``.
    saturation : float
        Detector counts at or above which a pixel is saturated.
    count_table : bool
        Use the logarithm table for integer frames.

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
    flat = check_image(flat, "flat")
    dark = check_image(dark, "dark")
    saturation = check_saturation(saturation)
    counts = table_for_dark(dark, saturation) if count_table else None
    integer_flat = flat.dtype in (np.uint8, np.uint16) and flat.shape[-2:] == dark.shape
    if counts is not None and integer_flat and flat.ndim in (2, 3):
        # one compiled sweep per flat: its table indices (validity follows from them)
        flat_counts = np.empty(flat.shape, np.uint16)
        f16 = flat.astype(np.uint16, copy=False).reshape(-1, *dark.shape)
        n_above = sum(
            open_counts(f, counts.dark_plus1, fc)
            for f, fc in zip(f16, flat_counts.reshape(f16.shape), strict=True)
        )
        beam = OpenBeam(None, dark, None, counts, flat_counts)
    else:
        above_dark = np.greater(flat, dark)
        n_above = np.count_nonzero(above_dark)
        valid = above_dark & (flat < saturation)
        beam = OpenBeam(flat, dark, valid, counts, log_open=_log_open(flat, dark, valid))
    if n_above == 0:  # a saturated flat is usable (its pixels are invalid)
        raise ValueError(
            "no pixel of the flat lies above the dark (flat - dark <= 0 everywhere, e.g. "
            "all-zero flats). Record the flat with the beam on and the sample out."
        )
    return beam


def _zero_invalid(o: np.ndarray, v: np.ndarray, scratch_bool: np.ndarray, *, finite: bool) -> None:
    """``o[~v] = 0.0`` (+0.0), cheap when there are few invalid pixels.

    ``finite``: ``o`` holds no NaN/inf, so a multiply by ``v`` may replace the
    (slower) masked copy when many pixels are invalid.
    """
    np.logical_not(v, out=scratch_bool)
    n_bad = np.count_nonzero(scratch_bool)
    if n_bad == 0:
        return
    if not finite or n_bad * 8 < scratch_bool.size:
        np.copyto(o, 0.0, where=scratch_bool)
    else:
        np.multiply(o, v, out=o)
        np.add(o, 0.0, out=o)  # -0.0 -> +0.0


def _validity_mask(valid: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """``valid`` checked (bool, ``shape``, C-contiguous), or a new mask to fill."""
    if valid is None:
        return np.empty(shape, bool)
    if valid.shape != shape or valid.dtype != bool or not valid.flags.c_contiguous:
        raise ValueError(
            f"valid must be a C-contiguous bool array of the frames' shape {shape}, "
            f"got {valid.dtype} {valid.shape}; pass np.ones(frames.shape, bool) to start a mask."
        )
    return valid


def _table_applies(beam: OpenBeam, dark: np.ndarray, frames: np.ndarray, saturation: float) -> bool:
    """Whether the frames can take the logarithm table of ``beam`` (see `CountTable`)."""
    ct = beam.counts
    return (
        ct is not None
        and beam.flat_counts is not None
        and dark is ct.dark
        and float(saturation) == ct.saturation
        and frames.dtype in (np.uint8, np.uint16)
        and frames.shape[-2:] == ct.dark.shape
    )


class _RowPass(NamedTuple):
    """The ``(rows, W)`` views one pass over the frames reads and writes."""

    frames: np.ndarray  # the frames
    out: np.ndarray  # the absorbance
    valid: np.ndarray  # the validity
    dark: np.ndarray  # the dark, or ``floor(dark) + 1`` (table path)
    log_open: np.ndarray  # ``ln(flat - dark)``, or the flat's table indices (table path)
    beam_valid: np.ndarray | None  # the flat's validity (float path)
    counts: CountTable | None  # the table (table path)
    shift: np.float32  # the offset added
    saturation: float | None  # frames at or above it are invalid (None: cannot reach it)
    and_valid: bool  # AND the validity into ``valid`` instead of writing it


def _row_pass(frames: np.ndarray, dark: np.ndarray, beam: OpenBeam, out: np.ndarray,
              valid: np.ndarray, and_valid: bool, use_table: bool, offset: float,
              saturation: float) -> _RowPass:  # fmt: skip
    """Flatten everything per pixel to ``(rows, W)`` views (broadcast maps stay views)."""
    width = frames.shape[-1]
    n_lead = int(np.prod(frames.shape[:-1]))

    def per_pixel(a: np.ndarray) -> np.ndarray:  # the (n_lead, W) view of a per-pixel map
        if a.shape == frames.shape:
            return a.reshape(n_lead, width)  # a writable view: one compiled kernel variant
        return np.broadcast_to(a, frames.shape).reshape(n_lead, width)

    ct = beam.counts if use_table else None
    reachable = not (
        np.issubdtype(frames.dtype, np.integer) and np.iinfo(frames.dtype).max < saturation
    )
    return _RowPass(
        frames.reshape(n_lead, width), out.reshape(n_lead, width), valid.reshape(n_lead, width),
        per_pixel(ct.dark_plus1 if ct is not None else np.asarray(dark)),
        per_pixel(beam.flat_counts if ct is not None else beam.log_open),
        None if ct is not None else per_pixel(beam.valid), ct, np.float32(offset),
        float(saturation) if reachable else None, and_valid,
    )  # fmt: skip


def _work_table(p: _RowPass, rows: slice) -> None:
    """One compiled sweep of ``rows`` with the logarithm table.

    ``w = I - (dark + 1)`` (uint16), valid = ``w < top - (dark + 1)`` and the same
    for the flat's index; ``out = table[flat index] - table[w]``.
    """
    f = p.frames[rows]
    if f.dtype != np.uint16:
        f = f.astype(np.uint16)
    ct = p.counts
    absorbance_table_rows(f, p.dark[rows], ct.top, ct.table, p.log_open[rows], p.shift,
                          p.out[rows], p.valid[rows], p.and_valid)  # fmt: skip


def _work_float(p: _RowPass, rows: slice) -> None:
    """``rows`` in float32: ``ln(flat - dark) - ln(I - dark) + shift``, 0.0 where invalid."""
    o = p.out[rows]
    v = scratch("absorbance_v", o.shape, bool) if p.and_valid else p.valid[rows]
    t = scratch("absorbance_t", o.shape, bool)
    np.subtract(p.frames[rows], p.dark[rows], out=o, dtype=np.float32)
    np.greater(o, 0, out=v)
    v &= p.beam_valid[rows]
    if p.saturation is not None:
        np.less(p.frames[rows], p.saturation, out=t)
        v &= t
    with np.errstate(divide="ignore", invalid="ignore"):
        np.log(o, out=o)
    np.subtract(p.log_open[rows], o, out=o)
    if p.shift:
        o += p.shift
    _zero_invalid(o, v, t, finite=False)
    if p.and_valid:
        p.valid[rows] &= v


def absorbance_with_open_beam(
    frames: np.ndarray,
    dark: np.ndarray,
    beam: OpenBeam,
    *,
    saturation: float = 65535,
    out: np.ndarray | None = None,
    valid: np.ndarray | None = None,
    workers: int | None = None,
    count_table: bool = True,
    offset: float = 0.0,
) -> AbsorbanceResult:
    """``ln(flat - dark) - ln(I - dark) + offset`` with a flat prepared by :func:`open_beam`.

    Same result as :func:`absorbance` (plus ``offset``); invalid pixels (frame
    saturated or not above the dark, or an invalid flat pixel) hold 0.0 and
    ``valid`` False. ``offset`` corrects the incident flux: ``ln(I0_image /
    I0_flat)`` when the flat was taken at another flux than the image.

    Integer (uint8/uint16) frames with the very ``dark`` object given to
    :func:`open_beam` (and the same ``saturation``) use the logarithm table of
    ``beam.counts`` (``count_table=False`` forces the float computation): the
    validity is identical, the values differ by at most ``0.5 / (I - dark)``
    (exact for an integer dark), far below the Poisson noise.

    ``valid``, when given (bool, the frames' shape, C-contiguous), is ANDed in
    place with this validity and returned: a scan's mask of pixels valid in every
    frame, kept without a second pass over a new mask.

    Parameters
    ----------
    frames : ndarray
        Image(s), ``(H, W)`` or ``(N, H, W)``.
    dark : ndarray
        Dark frame (the object given to :func:`open_beam` for the table path).
    beam : OpenBeam
        The prepared flat.
    saturation : float
        Detector counts at or above which a pixel is saturated.
    out : ndarray, optional
        float32 output array (the frames' shape) to write into.
    valid : ndarray of bool, optional
        Validity mask ANDed in place (see above).
    workers : int, optional
        Threads for large stacks (default: all cores).
    count_table : bool
        Use the logarithm table for integer frames.
    offset : float
        Added to every valid pixel, e.g. ``ln(I0_image / I0_flat)``.

    Examples
    --------
    >>> dark = np.full((1, 2), 100, np.uint16)
    >>> beam = open_beam(np.full((1, 2), 1000, np.uint16), dark)
    >>> res = absorbance_with_open_beam(np.array([[550, 65535]], np.uint16), dark, beam)
    >>> np.round(res.values.astype(float), 4).tolist(), res.valid.tolist()
    ([[0.6931, 0.0]], [[True, False]])
    """
    frames = check_image(frames, "frames")
    saturation = check_saturation(saturation)
    out = output_array(out, frames.shape)
    and_valid = valid is not None
    valid = _validity_mask(valid, frames.shape)
    use_table = count_table and _table_applies(beam, dark, frames, saturation)
    rows = _row_pass(frames, dark, beam, out, valid, and_valid, use_table, offset, saturation)
    workers = default_workers() if workers is None else max(1, int(workers))
    n_rows = rows.frames.shape[0]
    # One thread on the table path: one compiled call for every row, so the GIL is
    # released once for the whole sweep (another thread, e.g. an HDF5 read ahead
    # holding the GIL, then never stalls it between chunks). Chunks otherwise.
    one_call = use_table and workers == 1
    chunk = n_rows if one_call else max(1, (1 << 17) // max(1, frames.shape[-1]))
    run_chunks(
        functools.partial(_work_table if use_table else _work_float, rows),
        n_rows,
        chunk,
        workers,
        limit_blas=False,
    )
    return AbsorbanceResult(out, valid)
