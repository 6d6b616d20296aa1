"""Build-time checks of plan arguments shared by the scans: modes, exposures, counts.

Pure functions: they touch no hardware, so a plan raises them when it is built,
before the RunEngine (or the queue server) runs anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["validate_count", "validate_exposure", "validate_mode"]


def validate_mode(mode: Any, modes: Sequence[str] = ("step", "fly"), name: str = "mode") -> str:
    """Return ``mode`` if it is one of ``modes``, else raise ``ValueError`` naming them.

    Parameters
    ----------
    mode : str
        The value given.
    modes : sequence of str
        The accepted values, in the order the message lists them.
    name : str
        The argument's name, for the message.

    Examples
    --------
    >>> validate_mode("fly")
    'fly'
    >>> validate_mode("spiral")
    Traceback (most recent call last):
    ...
    ValueError: mode must be 'step' or 'fly', not 'spiral'.
    """
    if mode not in modes:
        choices = " or ".join(repr(m) for m in modes)
        raise ValueError(f"{name} must be {choices}, not {mode!r}.")
    return mode


def validate_exposure(
    exposure_time: float | None, *, required: bool = False, hint: str = ""
) -> float | None:
    """Return a valid exposure time (s) or None; raise for <= 0, non-finite, or missing.

    Parameters
    ----------
    exposure_time : float or None
        Exposure, s; None keeps the detector's setting.
    required : bool
        Refuse None (fly scans: the exposure sets the rotation speed).
    hint : str
        Appended to the message of a non-positive exposure (e.g. typical values).

    Examples
    --------
    >>> validate_exposure(0.5), validate_exposure(None)
    (0.5, None)
    """
    if exposure_time is None:
        if required:
            raise ValueError("Fly scans need an exposure_time (s): it sets the rotation speed.")
        return None
    if not (math.isfinite(exposure_time) and exposure_time > 0):
        raise ValueError(
            f"exposure_time must be a positive number of seconds, got {exposure_time!r}.{hint}"
        )
    return float(exposure_time)


def validate_count(name: str, value: Any, minimum: int = 1, unit: str = "") -> int:
    """Return ``int(value)`` if it is an integer of at least ``minimum``, else raise.

    A bool is refused (``True`` is not a count).

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : int
        The value given.
    minimum : int
        The smallest accepted count.
    unit : str
        What is counted (e.g. ``"pixels"``), for the message.

    Examples
    --------
    >>> validate_count("n_dark", 3)
    3
    >>> validate_count("nx", 1, minimum=2, unit="pixels")
    Traceback (most recent call last):
    ...
    ValueError: nx must be an integer >= 2 pixels, got 1.
    """
    if isinstance(value, bool) or int(value) != value or int(value) < minimum:
        what = f"{minimum} {unit}" if unit else f"{minimum}"
        raise ValueError(f"{name} must be an integer >= {what}, got {value!r}.")
    return int(value)
