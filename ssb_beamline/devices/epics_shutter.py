"""An EPICS shutter: write the command PV, wait for the status PV to agree.

ophyd-async has no shutter class; this is the usual pattern (``Cmd``/``Sts`` pair,
as in the NSLS-II and APS shutters), written as a `StandardReadable` + `Movable` so
``bps.mv(shutter, "Closed")`` works exactly as on the simulated shutter. The wait
for the readback is bounded: a shutter that does not follow raises
:class:`ShutterTimeoutError` naming the status PV.
"""

from __future__ import annotations

from bluesky.protocols import Movable
from ophyd_async.core import AsyncStatus, StandardReadable, soft_signal_rw, wait_for_value
from ophyd_async.core import StandardReadableFormat as Format
from ophyd_async.epics.core import epics_signal_r, epics_signal_w

from .shutter import ShutterState, is_open

__all__ = ["EpicsShutter", "ShutterTimeoutError"]


class ShutterTimeoutError(TimeoutError):
    """The shutter's status PV did not reach the commanded state in time."""


def _state(value: ShutterState | str) -> ShutterState:
    if isinstance(value, ShutterState):
        return value
    text = str(value).strip().lower()
    for state in ShutterState:
        if state.value.lower() == text:
            return state
    raise ValueError(
        f"Unknown shutter position {value!r}: use one of "
        f"{', '.join(repr(s.value) for s in ShutterState)}."
    )


class EpicsShutter(StandardReadable, Movable[ShutterState | str]):
    """Shutter with command PV ``{prefix}Cmd`` and status PV ``{prefix}Sts``.

    Parameters
    ----------
    prefix : str
        PV prefix, e.g. ``"BL:Shtr:Ph:"``.
    timeout : float
        Longest wait for the status to follow a command, s (a config signal).
    name : str
        Device name; the status reads as ``<name>_state`` (``_`` separator).

    Examples
    --------
    >>> shutter = EpicsShutter("SSBSIM:Shtr:Ph:", name="shutter")
    >>> shutter.state.source, shutter.command.source
    ('ca://SSBSIM:Shtr:Ph:Sts', 'ca://SSBSIM:Shtr:Ph:Cmd')
    """

    def __init__(self, prefix: str, timeout: float = 10.0, name: str = "") -> None:
        with self.add_children_as_readables(Format.HINTED_SIGNAL):
            self.state = epics_signal_r(ShutterState, f"{prefix}Sts")
        with self.add_children_as_readables(Format.CONFIG_SIGNAL):
            self.timeout = soft_signal_rw(float, timeout, units="s")
        self.command = epics_signal_w(ShutterState, f"{prefix}Cmd")
        super().__init__(name=name)

    @AsyncStatus.wrap
    async def set(self, value: ShutterState | str) -> None:
        """Command ``value`` ("Open"/"Closed"), then wait until the status agrees."""
        target = _state(value)
        timeout = await self.timeout.get_value()
        sts = self.state.source.removeprefix("ca://")
        try:
            await self.command.set(target, timeout=timeout)
            await wait_for_value(self.state, target, timeout=timeout)
        except TimeoutError as exc:
            raise ShutterTimeoutError(
                f"Shutter {self.name!r}: {sts} did not read {target.value!r} within "
                f"{timeout:g} s of the command to {self.command.source.removeprefix('ca://')}. "
                "Check the shutter's interlocks (beamline permit, vacuum) and its IOC."
            ) from exc

    async def is_open(self) -> bool:
        """True if the status PV reads "Open"."""
        return is_open(await self.state.get_value())
