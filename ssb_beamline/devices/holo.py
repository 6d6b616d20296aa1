"""Holotomography propagation-distance axis (mm): one motor record, e.g. ``{P}Holo:Dist``."""

from __future__ import annotations

from .axis import BeamlineAxis

__all__ = ["PropagationDistance"]


class PropagationDistance(BeamlineAxis):
    """Focus-to-sample distance of holotomography, mm (``holotomo_scan`` steps it).

    Parameters
    ----------
    prefix : str
        The distance motor record without a field (``"BL:Holo:Dist"``), in mm.
    name : str, default ""
        Device name (``"holo_z"`` on the TXM).

    Examples
    --------
    >>> PropagationDistance("SSBSIM:Holo:Dist", name="holo_z").user_readback.source
    'ca://SSBSIM:Holo:Dist.RBV'
    """
