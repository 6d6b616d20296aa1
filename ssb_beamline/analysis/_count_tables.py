"""Logarithm tables of integer frames: ``ln(I - dark)`` looked up instead of computed.

A dark's :class:`CountTable` is made once (cached for the last few darks: every
flat of a scan shares one dark) and used by :func:`~.open_beam.open_beam` and
:func:`~.open_beam.absorbance_with_open_beam` for uint8/uint16 frames.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["CountTable", "table_for_dark"]


class CountTable(NamedTuple):
    """Integer-count form of a dark, for the logarithm-table path of integer frames.

    For an integer frame ``I`` and a dark ``d`` (0 <= d < 65535), ``I > d`` holds
    exactly when ``I >= floor(d) + 1``, so ``w = I - (floor(d) + 1)`` (wrapping
    uint16 arithmetic) is below ``top - floor(d) - 1`` exactly for the pixels above
    the dark and below the saturation, and
    ``ln(I - d)`` is taken from ``table[w] = ln(w + 1 - offset)``, ``offset`` being
    the middle of the range of the fractional parts of the dark (0 for an
    integer dark, which makes the table exact).  The error is at most half the
    spread of those fractional parts, i.e. at most 0.5 counts in ``I - d``: a
    relative error ``<= 0.5 / (I - d)``, below ``0.5 / sqrt(I)`` times the
    Poisson noise of the pixel.

    Attributes
    ----------
    dark : ndarray
        The dark this table was built from (matched by identity).
    dark_plus1 : ndarray of uint16
        ``floor(dark) + 1``.
    top : int
        ``ceil(saturation)`` (at most 65536): frames at or above it are saturated.
    table : ndarray of float32, shape (65536,)
        ``ln(w + 1 - offset)``.
    offset : float
        Dark fraction folded into the table.
    saturation : float
        Saturation level ``top`` was made from.
    """

    dark: np.ndarray
    dark_plus1: np.ndarray
    top: int
    table: np.ndarray
    offset: float
    saturation: float


_LOG_TABLES: dict[float, np.ndarray] = {}


def _log_table(offset: float) -> np.ndarray:
    table = _LOG_TABLES.get(offset)
    if table is None:
        if len(_LOG_TABLES) > 8:
            _LOG_TABLES.clear()
        w = np.arange(65536, dtype=np.float64)
        table = _LOG_TABLES[offset] = np.log(w + (1.0 - offset)).astype(np.float32)
    return table


#: Count tables of the last few darks: every flat of a scan shares one dark, so its
#: table is made once, not per flat.
_COUNT_TABLES: list[tuple[np.ndarray, float, CountTable | None]] = []


def table_for_dark(dark: np.ndarray, saturation: float) -> CountTable | None:
    """The :class:`CountTable` of a 2-D dark in [0, 65535) (cached), else None.

    Parameters
    ----------
    dark : ndarray
        Dark frame (cached by identity, with ``saturation``).
    saturation : float
        Detector counts at or above which a pixel is saturated.
    """
    if dark.ndim != 2 or not np.isfinite(saturation) or saturation <= 0:
        return None
    for cached, sat, table in _COUNT_TABLES:
        if cached is dark and sat == saturation:
            return table
    d = np.asarray(dark, np.float64)
    table = None
    if np.isfinite(d).all() and d.min() >= 0 and d.max() < 65535:
        base = np.floor(d)
        frac = d - base
        offset = 0.5 * float(frac.min() + frac.max())
        d1 = (base + 1).astype(np.uint16)
        top = int(min(np.ceil(saturation), 65536.0))
        table = CountTable(dark, d1, top, _log_table(offset), offset, float(saturation))
    _COUNT_TABLES.insert(0, (dark, saturation, table))
    del _COUNT_TABLES[2:]
    return table
