"""Rotation angles of fly-scan frames from a monitored rotation readback (pure numpy).

In a tomography fly scan the rotation moves continuously while the camera takes
frames on its own clock. The rotation readback is monitored (time-stamped values)
and every frame carries a time stamp; the angle of a frame is the monitored angle
linearly interpolated at the frame's time.

Examples
--------
>>> import numpy as np
>>> t_mon = np.array([0.0, 1.0, 2.0])
>>> a_mon = np.array([0.0, 30.0, 60.0])
>>> angles_from_monitor([0.5, 1.5], t_mon, a_mon).tolist()
[15.0, 45.0]
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["REPEAT_TOLERANCE", "angles_from_monitor", "drop_repeated_angles"]

#: Angles closer than this fraction of their span are one angle (`drop_repeated_angles`):
#: at least the duplicate tolerance of `~ssb_beamline.analysis.tomography.check_angles`
#: (1e-6 of the median step, which is at most the span); 2e-4 deg over 180 deg.
REPEAT_TOLERANCE = 1e-6

log = logging.getLogger(__name__)


def angles_from_monitor(
    frame_times: ArrayLike,
    monitor_times: ArrayLike,
    monitor_angles: ArrayLike,
    *,
    max_extrapolation_s: float | None = None,
) -> np.ndarray:
    """Angle of each frame, interpolated from the monitored rotation readback.

    Parameters
    ----------
    frame_times : array_like, (N,)
        Frame time stamps (s, same clock as ``monitor_times``, e.g. UNIX time),
        ideally the middle of each exposure.
    monitor_times : array_like, (M,)
        Time stamps of the monitored readback values, s. Need not be sorted;
        repeated time stamps keep the last value.
    monitor_angles : array_like, (M,)
        Readback values (deg) at ``monitor_times``.
    max_extrapolation_s : float, optional
        If given, raise when a frame lies more than this many seconds before the
        first or after the last monitored value (outside it the angle is held at
        the first/last value, which is right only if the axis was at rest).

    Returns
    -------
    ndarray of float64, (N,)
        Angles, deg.

    Raises
    ------
    ValueError
        For empty or mismatched inputs, non-finite values, or frames too far
        outside the monitored interval.

    Notes
    -----
    The interpolation is exact for motion at constant velocity between two
    monitored values. The start of a move is not sampled (the value before it
    carries the time stamp of the previous update), so frames should be taken
    after a run-up of at least one readback update.

    Examples
    --------
    >>> angles_from_monitor([2.0, 9.0], [1.0, 3.0, 5.0], [10.0, 20.0, 30.0]).tolist()
    [15.0, 30.0]
    """
    frames = np.asarray(frame_times, dtype=np.float64).ravel()
    t = np.asarray(monitor_times, dtype=np.float64).ravel()
    a = np.asarray(monitor_angles, dtype=np.float64).ravel()
    if t.size == 0 or t.size != a.size:
        raise ValueError(
            f"Need as many monitor times as monitor angles, at least one; got {t.size} "
            f"times and {a.size} angles. Was the rotation readback monitored?"
        )
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(a)) and np.all(np.isfinite(frames))):
        raise ValueError("Frame times, monitor times and monitor angles must all be finite.")
    order = np.argsort(t, kind="stable")
    t, a = t[order], a[order]
    # keep the last value of each repeated time stamp
    keep = np.append(np.diff(t) > 0, True)
    t, a = t[keep], a[keep]
    if max_extrapolation_s is not None and frames.size:
        early = t[0] - frames.min()
        late = frames.max() - t[-1]
        if early > max_extrapolation_s or late > max_extrapolation_s:
            raise ValueError(
                f"Frames lie up to {max(early, late):.3g} s outside the monitored interval "
                f"[{t[0]:.6f}, {t[-1]:.6f}] s (allowed {max_extrapolation_s} s); the rotation "
                "angle there is unknown."
            )
    angles = np.interp(frames, t, a)
    log.debug("Interpolated %d frame angles from %d monitor values", frames.size, t.size)
    return angles


def drop_repeated_angles(
    angles: ArrayLike, rel_tol: float = REPEAT_TOLERANCE
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct angles, and which frame (the first taken) each one keeps.

    A free-running camera can take frames while the rotation is at rest, before its
    flight starts (a loaded machine may start the camera first) or after it stops.
    Their recovered angles repeat one value, exactly (after the last monitored
    value) or within a rounding of it (before the start: the rest value and the first
    moving value differ by the few microdegrees travelled before that update, so
    interpolated angles differ by less): ``np.unique`` keeps those near-repeats, which
    `~ssb_beamline.analysis.tomography.check_angles` then refuses as duplicates. Here
    angles closer than ``rel_tol`` times their span count as one.

    Parameters
    ----------
    angles : array_like, (N,)
        Recovered angles of the frames, deg, in acquisition order.
    rel_tol : float, default `REPEAT_TOLERANCE`
        Angles closer than ``rel_tol * (max - min)`` are the same angle (>= 0).

    Returns
    -------
    angles : ndarray of float64, (K,)
        The distinct angles, increasing.
    keep : ndarray of int, (K,)
        Index (into ``angles`` as given) of the frame kept for each: the first taken.

    Examples
    --------
    >>> a, keep = drop_repeated_angles([0.0, 0.0000001, 60.0, 120.0, 180.0, 180.0])
    >>> a.tolist(), keep.tolist()
    ([0.0, 60.0, 120.0, 180.0], [0, 2, 3, 4])
    """
    if not rel_tol >= 0:
        raise ValueError(f"rel_tol must be >= 0, got {rel_tol}")
    a = np.asarray(angles, dtype=np.float64).ravel()
    if a.size == 0:
        return a, np.zeros(0, dtype=np.intp)
    order = np.argsort(a, kind="stable")
    s = a[order]
    tolerance = rel_tol * float(s[-1] - s[0])
    cluster = np.cumsum(np.append(True, np.diff(s) > tolerance)) - 1
    keep = np.full(int(cluster[-1]) + 1, a.size, dtype=np.intp)
    np.minimum.at(keep, cluster, order)  # the first frame taken of each cluster
    if keep.size < a.size:
        log.debug("%d of %d frames repeat an angle", a.size - keep.size, a.size)
    return a[keep], keep
