"""Detector stage: z, the zone-plate-to-detector distance ``q`` (mm)."""

from __future__ import annotations

from ophyd_async.core import StandardReadable

from .axis import BeamlineAxis

__all__ = ["DetectorStage"]


class DetectorStage(StandardReadable):
    """The camera's z motor record ``{prefix}Z`` (named ``"det"``: readback ``det_z``).

    Parameters
    ----------
    prefix : str
        PV prefix of the stage (``"BL:Det:"``); the motor record is ``{prefix}Z``
        (zone-plate-to-detector distance, mm).
    name : str, default ""
        Device name (``"det"`` gives the readback ``det_z``).

    Examples
    --------
    >>> DetectorStage("SSBSIM:Det:", name="det").z.user_readback.source
    'ca://SSBSIM:Det:Z.RBV'
    """

    def __init__(self, prefix: str, name: str = "") -> None:
        with self.add_children_as_readables():
            self.z = BeamlineAxis(f"{prefix}Z")
        super().__init__(name=name)
