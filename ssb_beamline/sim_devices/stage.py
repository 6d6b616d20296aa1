"""Simulated TXM sample stage: x, y, z translations (um) and rotation (deg)."""

from __future__ import annotations

from ophyd_async.core import StandardReadable

from .motors import SimAxis

__all__ = ["SampleStage", "translation_axes"]


def translation_axes(
    xy_limits_um: tuple[float, float],
    z_limits_um: tuple[float, float],
    velocity_um_s: float,
    settle_time: float,
) -> tuple[SimAxis, SimAxis, SimAxis]:
    """The ``x``, ``y`` and ``z`` translation axes (um) of a sample stage, all at 0."""
    speed = {"velocity": velocity_um_s, "settle_time": settle_time}
    return (
        SimAxis(0.0, "um", limits=xy_limits_um, **speed),
        SimAxis(0.0, "um", limits=xy_limits_um, **speed),
        SimAxis(0.0, "um", limits=z_limits_um, **speed),
    )


class SampleStage(StandardReadable):
    """Sample stage with `SimAxis` children ``x``, ``y``, ``z`` (um) and ``rotation`` (deg).

    ``x``/``y`` shift the sample in the image plane (``x`` along image columns, ``y``
    along rows); moving ``|x|`` beyond the field of view takes the sample out of the
    beam for flat-field frames.

    Parameters
    ----------
    xy_limits_um, z_limits_um : tuple of float
        Travel limits, um.
    velocity_um_s : float
        Translation speed, um/s.
    rotation_velocity_deg_s : float
        Rotation speed, deg/s.
    settle_time : float
        Settle time after each move, s.
    name : str
        Device name.
    """

    def __init__(
        self,
        *,
        xy_limits_um: tuple[float, float] = (-5000.0, 5000.0),
        z_limits_um: tuple[float, float] = (-2000.0, 2000.0),
        velocity_um_s: float = 5000.0,
        rotation_velocity_deg_s: float = 90.0,
        settle_time: float = 0.005,
        name: str = "",
    ) -> None:
        with self.add_children_as_readables():
            self.x, self.y, self.z = translation_axes(
                xy_limits_um, z_limits_um, velocity_um_s, settle_time
            )
            self.rotation = SimAxis(
                0.0,
                "deg",
                limits=(-360.0, 360.0),
                velocity=rotation_velocity_deg_s,
                settle_time=settle_time,
            )
        super().__init__(name=name)
