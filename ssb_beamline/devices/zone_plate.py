"""Zone-plate stage: x, y (centring) and z (sample-to-zone-plate distance, mm)."""

from __future__ import annotations

from ophyd_async.core import StandardReadable

from .axis import BeamlineAxis

__all__ = ["ZonePlateStage"]


class ZonePlateStage(StandardReadable):
    """The zone plate's three motor records ``{prefix}X``, ``{prefix}Y``, ``{prefix}Z``.

    ``z`` is the distance ``p`` the focus model moves with the energy; named
    ``"zp"``, its readbacks are ``zp_x``, ``zp_y``, ``zp_z`` (the simulator's keys).

    Parameters
    ----------
    prefix : str
        PV prefix of the stage (``"BL:ZP:"``); the records are ``{prefix}X``,
        ``{prefix}Y`` and ``{prefix}Z`` (mm).
    name : str, default ""
        Device name (``"zp"`` gives the readbacks ``zp_x``, ``zp_y``, ``zp_z``).

    Examples
    --------
    >>> ZonePlateStage("SSBSIM:ZP:", name="zp").z.user_readback.source
    'ca://SSBSIM:ZP:Z.RBV'
    """

    def __init__(self, prefix: str, name: str = "") -> None:
        with self.add_children_as_readables():
            self.x = BeamlineAxis(f"{prefix}X")
            self.y = BeamlineAxis(f"{prefix}Y")
            self.z = BeamlineAxis(f"{prefix}Z")
        super().__init__(name=name)
