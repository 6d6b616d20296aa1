"""Shutter positions and how to read them, for EPICS and simulated shutters alike."""

from __future__ import annotations

from typing import Any

from ophyd_async.core import StrictEnum

__all__ = ["ShutterState", "is_open"]


class ShutterState(StrictEnum):
    """Shutter positions."""

    OPEN = "Open"
    CLOSED = "Closed"


def is_open(value: Any) -> bool:
    """Interpret a shutter readback: "Open" (any case) or a truthy number.

    Parameters
    ----------
    value : ShutterState or str or int
        A shutter reading.

    Examples
    --------
    >>> is_open("Open"), is_open(" closed "), is_open(1), is_open(ShutterState.OPEN)
    (True, False, True, True)
    """
    if isinstance(value, str):
        return value.strip().lower() == "open"
    return bool(value)
