"""Beam monitors: the incident-flux monitor I0 and the storage-ring current."""

from __future__ import annotations

from ophyd_async.core import StandardReadable
from ophyd_async.core import StandardReadableFormat as Format
from ophyd_async.epics.core import epics_signal_r

__all__ = ["I0Monitor", "RingCurrent"]


class I0Monitor(StandardReadable):
    """Incident flux (ion chamber / scaler channel), PV e.g. ``{P}I0:Counts``.

    Read with every frame (``flux``; ``i0_flux`` when named ``"i0"``): the XANES
    analysis divides each image and flat by it, so only its ratio matters.

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
        with self.add_children_as_readables(Format.HINTED_UNCACHED_SIGNAL):
            self.flux = epics_signal_r(float, pv)
        super().__init__(name=name)


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
