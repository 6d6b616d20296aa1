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

__all__ = ["angles_from_monitor"]

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
