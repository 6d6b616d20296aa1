"""Rotation angles of the tomography plans: ``(start, stop, num)`` ranges and their checks.

Shared by `tomo_scan`, `xanes_tomo_scan` and `holotomo_scan`.
"""

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["HALF_TURN_DEG", "QUEUE_ANGLES", "AngleRange", "resolve_angles", "validate_angles"]

#: Angular range a parallel-beam tomogram needs, deg.
HALF_TURN_DEG = 180.0


#: What the queue server is told about ``angles``: a list of angles, deg (a queue item
#: travels as JSON, so ``(start, stop, num)`` and arrays are for Python callers).
QUEUE_ANGLES = {"annotation": "typing.List[float]"}


class AngleRange(NamedTuple):
    """``num`` evenly spaced angles from ``start`` to ``stop`` inclusive, deg.

    Attributes
    ----------
    start, stop : float
        First and last angle, deg (both included).
    num : int
        Number of angles.
    """

    start: float
    stop: float
    num: int


def resolve_angles(angles: Sequence[float] | np.ndarray | AngleRange) -> np.ndarray:
    """Angles (deg) from an explicit list/array, or a tuple ``(start, stop, num)``.

    A tuple of three numbers whose last is an integer is read as ``(start, stop,
    num)`` (use a list or array for three explicit angles).

    Parameters
    ----------
    angles : sequence of float, ndarray or (start, stop, num)
        Explicit angles, deg, or an :class:`AngleRange`-like tuple.

    Examples
    --------
    >>> resolve_angles((0, 180, 4)).tolist()
    [0.0, 60.0, 120.0, 180.0]
    >>> resolve_angles([0, 90, 180]).tolist()
    [0.0, 90.0, 180.0]
    """
    if isinstance(angles, tuple) and len(angles) == 3 and isinstance(angles[2], int | np.integer):
        start, stop, num = angles
        if isinstance(num, bool) or num < 2:
            raise ValueError(f"(start, stop, num) needs num >= 2 angles, got num={num!r}.")
        return np.linspace(float(start), float(stop), int(num))
    return np.asarray(angles, dtype=float).ravel()


def validate_angles(angles: Any, *, evenly_spaced: bool = False) -> np.ndarray:
    """Resolve and check rotation angles; raise ``ValueError`` with a clear message.

    The angles must be finite, distinct and cover a half turn: ``span + step >=
    180 deg`` (so ``np.linspace(0, 180, n, endpoint=False)`` is accepted). With
    ``evenly_spaced`` (fly scans) they must also be evenly spaced and monotonic.

    Parameters
    ----------
    angles : sequence of float or (start, stop, num)
        Rotation angles, deg, or an :class:`AngleRange`-like tuple.
    evenly_spaced : bool
        Also require even, monotonic steps (fly scans).
    """
    arr = resolve_angles(angles)
    if arr.size < 2:
        raise ValueError(f"A tomogram needs at least 2 angles, got {arr.size}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError("Rotation angles must be finite numbers (deg).")
    ordered = np.sort(arr)
    steps = np.diff(ordered)
    if np.any(steps == 0):
        raise ValueError(f"Angle {ordered[np.flatnonzero(steps == 0)[0]]} deg is listed twice.")
    span = float(ordered[-1] - ordered[0])
    if span + float(np.median(steps)) < HALF_TURN_DEG - 1e-6:
        raise ValueError(
            f"The angles span {span:.4g} deg ({ordered[0]:.4g} to {ordered[-1]:.4g}); a "
            f"tomogram needs at least {HALF_TURN_DEG:g} deg, e.g. (0, 180, 181)."
        )
    if evenly_spaced:
        d = np.diff(arr)
        if not np.allclose(d, d[0], rtol=1e-6, atol=1e-9):
            raise ValueError(
                "Fly scans need evenly spaced, monotonic angles, e.g. (start, stop, num); "
                f"steps range from {d.min():.4g} to {d.max():.4g} deg."
            )
    return arr
