"""Sample stage: x, y, z translations and the rotation axis of tomography."""

from __future__ import annotations

from ophyd_async.core import StandardReadable

from .axis import BeamlineAxis

__all__ = ["SampleStage"]


class SampleStage(StandardReadable):
    """Motor records ``{prefix}X``, ``{prefix}Y``, ``{prefix}Z`` and ``{prefix}Rot``.

    The translations are in the units of the record (um on the simulated TXM); the
    rotation is in degrees, and its ``velocity`` (VELO) and ``max_velocity`` (VMAX)
    are what fly scans set and check. Named ``"sample"``, the readbacks are
    ``sample_x`` ... ``sample_rotation``, as on the simulator.

    Parameters
    ----------
    prefix : str
        PV prefix of the stage (``"BL:Smpl:"``); the records are ``{prefix}X``,
        ``{prefix}Y``, ``{prefix}Z`` and ``{prefix}Rot``.
    name : str, default ""
        Device name (``"sample"`` gives the readbacks ``sample_x`` ...).

    Examples
    --------
    >>> stage = SampleStage("SSBSIM:Smpl:")
    >>> stage.set_name("sample", child_name_separator="_")
    >>> stage.rotation.velocity.source, stage.rotation.name
    ('ca://SSBSIM:Smpl:Rot.VELO', 'sample_rotation')
    """

    def __init__(self, prefix: str, name: str = "") -> None:
        with self.add_children_as_readables():
            self.x = BeamlineAxis(f"{prefix}X")
            self.y = BeamlineAxis(f"{prefix}Y")
            self.z = BeamlineAxis(f"{prefix}Z")
            self.rotation = BeamlineAxis(f"{prefix}Rot")
        super().__init__(name=name)
