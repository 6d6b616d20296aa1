"""Devices whose chosen signals stay monitored from connection on.

An ophyd-async signal with no subscriber answers each read with a Channel Access
get (one round trip); with a subscriber it answers from the cache its monitor
keeps.  :class:`KeepsMonitors` subscribes a do-nothing callback to the signals a
device names, once, right after it connects, so that a move's checks and each
event's reading come from the monitors (as an EPICS operator screen would see
them).  ophyd-async has no switch for this, hence this small mixin.  Set
``keep_monitors = False`` (class or instance) for the stock behaviour, e.g. to
benchmark the difference.
"""

from __future__ import annotations

from collections.abc import Iterable

from ophyd_async.core import DEFAULT_TIMEOUT, DeviceMock, SignalR

__all__ = ["KeepsMonitors"]


def _keep_cache(reading: object) -> None:
    """A monitor callback that keeps the signal's cache alive and does nothing else."""


class KeepsMonitors:
    """Mixin (before the ophyd-async device class): monitor `monitored_signals` once connected."""

    #: False: the stock behaviour (a CA get per value).
    keep_monitors = True
    _monitoring = False

    def monitored_signals(self) -> Iterable[SignalR]:
        """The signals to keep monitored (override)."""
        return ()

    def monitors_started(self) -> None:
        """Hook run once, after the monitors are subscribed (override)."""

    async def connect(self, mock: bool | DeviceMock = False, timeout: float = DEFAULT_TIMEOUT,
                      force_reconnect: bool = False) -> None:  # fmt: skip
        """Connect as the device class does, then start the monitors once.

        Parameters
        ----------
        mock : bool or DeviceMock
            As for :meth:`ophyd_async.core.Device.connect`.
        timeout : float
            Seconds to wait for the connection.
        force_reconnect : bool
            Reconnect even if already connected.
        """
        await super().connect(mock=mock, timeout=timeout, force_reconnect=force_reconnect)  # type: ignore[misc]
        if self.keep_monitors and not self._monitoring:
            for signal in self.monitored_signals():
                signal.subscribe_reading(_keep_cache)
            self.monitors_started()
            self._monitoring = True
