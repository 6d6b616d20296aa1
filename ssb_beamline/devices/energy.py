"""Monochromator energy (eV): one EPICS motor record, e.g. ``{P}Mono:Energy``."""

from __future__ import annotations

from .axis import BeamlineAxis

__all__ = ["MonochromatorEnergy"]


class MonochromatorEnergy(BeamlineAxis):
    """The monochromator energy axis in eV; its limits (HLM/LLM) bound every scan.

    Plans move it with ``bps.mv(energy, 8340.0)`` and read its limits from
    ``low_limit_travel`` / ``high_limit_travel`` before anything moves.

    Parameters
    ----------
    prefix : str
        The energy motor record without a field (``"BL:Mono:Energy"``), in eV.
    name : str, default ""
        Device name (``"energy"`` on the TXM).

    Examples
    --------
    >>> MonochromatorEnergy("SSBSIM:Mono:Energy", name="energy").user_setpoint.source
    'ca://SSBSIM:Mono:Energy.VAL'
    """
