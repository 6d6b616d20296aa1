"""Beam monitors: the incident-flux monitor I0 and the storage-ring current."""

from __future__ import annotations

from ophyd_async.core import SignalR, StandardReadable
from ophyd_async.core import StandardReadableFormat as Format
from ophyd_async.epics.core import epics_signal_r

from .monitored import KeepsMonitors

__all__ = ["I0Monitor", "RingCurrent"]


class I0Monitor(KeepsMonitors, StandardReadable):
    """Incident flux (ion chamber / scaler channel), PV e.g. ``{P}I0:Counts``.

    Read with every frame (``flux``; ``i0_flux`` when named ``"i0"``): the XANES
    analysis divides each image and flat by it, so only its ratio matters.

    The PV is kept monitored from connection on and each reading is the value the IOC
    last posted, as a CA get would return it (an ion chamber or scaler record posts
    each new value it processes), without a round trip per frame. On the simulated
    TXM the camera posts I0 before the frame's ``NumCaptured``, which the trigger
    waits for on its own monitor: monitors arrive in the order posted, so the reading
    after a trigger is that frame's flux.

    Parameters
    ----------
    pv : str
        Full PV of the incident-flux reading (float), e.g. ``"BL:I0:Counts"``.
    name : str, default ""
        Device name; the reading is ``<name>_flux``.

    Examples
    --------
    >>> I0Monitor("SSBSIM:I0:Counts", name="i0").flux.source
    'ca://SSBSIM:I0:Counts'
    """

    def __init__(self, pv: str, name: str = "") -> None:
        with self.add_children_as_readables(Format.HINTED_SIGNAL):
            self.flux = epics_signal_r(float, pv)
        super().__init__(name=name)

    def monitored_signals(self) -> list[SignalR]:
        """The flux PV: readings come from its monitor (see :mod:`.monitored`)."""
        return [self.flux]


class RingCurrent(StandardReadable):
    """Storage-ring current (mA), PV e.g. ``{P}Ring:Current``; the suspenders watch it.

    Named ``"ring"``, the reading is ``ring_current`` (as on the simulator).

    Parameters
    ----------
    pv : str
        Full PV of the storage-ring current, mA, e.g. ``"BL:Ring:Current"``.
    name : str, default ""
        Device name; the reading is ``<name>_current``.

    Examples
    --------
    >>> RingCurrent("SSBSIM:Ring:Current", name="ring").current.source
    'ca://SSBSIM:Ring:Current'
    """

    def __init__(self, pv: str, name: str = "") -> None:
        with self.add_children_as_readables(Format.HINTED_SIGNAL):
            self.current = epics_signal_r(float, pv)
        super().__init__(name=name)
