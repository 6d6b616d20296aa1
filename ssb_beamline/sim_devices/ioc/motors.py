"""Motor-record PVs of one simulated axis (the fields ophyd-async's ``Motor`` uses).

`MotorRecord` serves ``<prefix>.VAL``, ``.RBV``, ``.DMOV``, ``.MOVN``, ``.STOP``,
``.HLM``/``.LLM`` (and the dial ``.DHLM``/``.DLLM``), ``.VELO``, ``.VMAX``,
``.ACCL``, ``.EGU``, ``.PREC``, ``.DESC``, ``.OFF``, ``.SET``, ``.FOFF``, ``.MRES``,
... like an EPICS motor record, with the behaviour clients rely on:

- a put to ``.VAL`` completes (CA put-callback) when the move is done, so
  ``await motor.set(x)`` waits for the axis, as on a real motor record;
- a ``.VAL`` outside ``[LLM, HLM]`` is refused (the put fails, ``.LVIO`` = 1,
  nothing moves);
- ``.STOP`` = 1 stops the axis where it is;
- ``.VELO`` is clipped to ``.VMAX`` and sets the speed of the next move;
- ``.DLY`` (readback settle time, s) holds ``DMOV`` at 0 that long after the axis
  arrives, as the motor record does: the in-process simulated axes settle too
  (`~ssb_beamline.sim_devices.factory.MotionConfig`), so a move takes the same
  time over Channel Access as in process.

caproto's own ``caproto.ioc_examples.fake_motor_record`` polls at 10 Hz, does
not hold the put-callback until the end of the move and has no limit check or
stall, so the record is written here on its `AxisMotion` model.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from caproto import ChannelType
from caproto.server import PVGroup, pvproperty

from .motion import AxisMotion

__all__ = ["AxisSpec", "MotorLimitError", "MotorRecord"]

logger = logging.getLogger(__name__)


class MotorLimitError(ValueError):
    """A requested position outside the axis soft limits (HLM/LLM)."""


@dataclass(frozen=True)
class AxisSpec:
    """Static description of one axis.

    Parameters
    ----------
    suffix : str
        Record name after the IOC prefix, e.g. ``"Mono:Energy"``.
    units : str
        Engineering units (``.EGU``).
    limits : tuple of float
        ``(LLM, HLM)`` user soft limits.
    initial : float
        Start position.
    velocity, max_velocity : float
        ``.VELO`` and ``.VMAX``, units/s.
    precision : int
        ``.PREC``.
    description : str
        ``.DESC`` (at most 40 characters).
    settle : float
        ``.DLY``, s: how long ``DMOV`` stays 0 after the axis arrived (>= 0).
    """

    suffix: str
    units: str
    limits: tuple[float, float]
    initial: float = 0.0
    velocity: float = 1.0
    max_velocity: float = 0.0
    precision: int = 4
    description: str = ""
    settle: float = 0.0

    def __post_init__(self) -> None:
        if not self.settle >= 0:
            raise ValueError(f"{self.suffix}: settle (DLY) must be >= 0 s, got {self.settle}")
        low, high = self.limits
        if not low < high:
            raise ValueError(f"{self.suffix}: limits must be (low, high) with low < high")
        if not low <= self.initial <= high:
            raise ValueError(f"{self.suffix}: start {self.initial} outside {self.limits}")


def _f(name: str, value: float = 0.0, **kw) -> pvproperty:
    return pvproperty(name=name, value=value, dtype=ChannelType.DOUBLE, **kw)


def _i(name: str, value: int = 0, **kw) -> pvproperty:
    return pvproperty(name=name, value=value, dtype=ChannelType.LONG, **kw)


class MotorRecord(PVGroup):
    """The PVs of one motor record, driven by an `AxisMotion`.

    Parameters
    ----------
    spec : AxisSpec
        Units, limits, start position and speed.
    prefix : str
        Full record name including the IOC prefix, e.g. ``"SSBSIM:Mono:Energy"``.
    """

    val = _f(".VAL", precision=4)
    rbv = _f(".RBV", read_only=True, precision=4)
    drbv = _f(".DRBV", read_only=True, precision=4)
    dmov = _i(".DMOV", 1, read_only=True)
    movn = _i(".MOVN", 0, read_only=True)
    stop = _i(".STOP", 0)
    lvio = _i(".LVIO", 0, read_only=True)
    hlm = _f(".HLM")
    llm = _f(".LLM")
    dhlm = _f(".DHLM")
    dllm = _f(".DLLM")
    velo = _f(".VELO")
    vmax = _f(".VMAX", read_only=True)
    accl = _f(".ACCL", 0.0)
    dly = _f(".DLY", 0.0)
    egu = pvproperty(name=".EGU", value="", dtype=ChannelType.STRING, read_only=True)
    prec = _i(".PREC", 4, read_only=True)
    desc = pvproperty(name=".DESC", value="", dtype=ChannelType.STRING)
    off = _f(".OFF", 0.0)
    mres = _f(".MRES", 1e-5, read_only=True)
    eres = _f(".ERES", 1e-5, read_only=True)
    urev = _f(".UREV", 1.0, read_only=True)
    srev = _i(".SREV", 200, read_only=True)
    rdbd = _f(".RDBD", 0.0, read_only=True)
    hls = _i(".HLS", 0, read_only=True)
    lls = _i(".LLS", 0, read_only=True)
    out = pvproperty(name=".OUT", value="sim", dtype=ChannelType.STRING, read_only=True)
    set_ = pvproperty(name=".SET", value="Use", enum_strings=("Use", "Set"),
                      dtype=ChannelType.ENUM)  # fmt: skip
    foff = pvproperty(name=".FOFF", value="Variable", enum_strings=("Variable", "Frozen"),
                      dtype=ChannelType.ENUM)  # fmt: skip

    def __init__(self, spec: AxisSpec, prefix: str, **kwargs) -> None:
        super().__init__(prefix=prefix, **kwargs)
        self.spec = spec
        vmax = spec.max_velocity or spec.velocity
        self.axis = AxisMotion(position=spec.initial, velocity=min(spec.velocity, vmax))
        self._move_id = 0
        low, high = spec.limits
        resolution = 10.0 ** -(spec.precision + 1)
        initial = {self.val: spec.initial, self.rbv: spec.initial, self.drbv: spec.initial,
                   self.hlm: high, self.llm: low, self.dhlm: high, self.dllm: low,
                   self.velo: self.axis.velocity, self.vmax: vmax, self.egu: spec.units,
                   self.prec: spec.precision, self.desc: spec.description[:39],
                   self.mres: resolution, self.eres: resolution, self.rdbd: resolution,
                   self.dly: spec.settle}  # fmt: skip
        for prop, value in initial.items():
            prop._data["value"] = value
        for prop in (self.val, self.rbv, self.drbv, self.hlm, self.llm, self.dhlm, self.dllm):
            prop._data["units"] = spec.units
            prop._data["precision"] = spec.precision

    async def _publish(self, position: float, t: float) -> None:
        """Post the readback, time-stamped with the instant the axis held it."""
        await self.rbv.write(position, timestamp=t)
        await self.drbv.write(position, timestamp=t)

    @val.putter
    async def val(self, instance, value: float) -> float:
        """Move to ``value``; the put completes when the axis arrives (or stops)."""
        low, high = self.llm.value, self.hlm.value
        if not low <= value <= high:
            await self.lvio.write(1)
            logger.info(
                "%s.VAL %s refused: outside LLM %s .. HLM %s", self.prefix, value, low, high
            )
            raise MotorLimitError(
                f"{self.prefix}.VAL={value} is outside the soft limits "
                f"LLM={low} .. HLM={high} {self.spec.units}"
            )
        await self.lvio.write(0)
        self._move_id += 1
        move_id = self._move_id
        await self.dmov.write(0)
        await self.movn.write(1)
        try:
            if await self.axis.move(float(value), self._publish) and self.dly.value > 0:
                await asyncio.sleep(float(self.dly.value))  # DLY: the readback settles
        finally:
            if move_id == self._move_id:  # a newer move keeps DMOV at 0
                await self.movn.write(0)
                await self.dmov.write(1)
        return value

    @stop.putter
    async def stop(self, instance, value: int) -> int:
        """``.STOP`` = 1 stops the axis where it is; the field resets to 0."""
        if value:
            self.axis.stop()
        return 0

    @velo.putter
    async def velo(self, instance, value: float) -> float:
        """Speed of the next move, clipped to ``(0, VMAX]``."""
        if value <= 0:
            raise ValueError(f"{self.prefix}.VELO must be > 0, got {value}")
        value = min(float(value), self.vmax.value)
        self.axis.velocity = value
        return value

    @dly.putter
    async def dly(self, instance, value: float) -> float:
        """Readback settle time after each move, s (>= 0)."""
        if not value >= 0:
            raise ValueError(f"{self.prefix}.DLY must be >= 0 s, got {value}")
        return float(value)

    @hlm.putter
    async def hlm(self, instance, value: float) -> float:
        """User high limit; the dial limit follows (no offset, positive direction)."""
        await self.dhlm.write(value)
        return value

    @llm.putter
    async def llm(self, instance, value: float) -> float:
        """User low limit; the dial limit follows."""
        await self.dllm.write(value)
        return value
