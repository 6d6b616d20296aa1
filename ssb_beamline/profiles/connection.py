"""Connect a beamline file's devices; say which PVs did not connect and where they came from.

ophyd-async reports a failed connection as nested ``NotConnectedError`` s whose
leaves name one PV each (``ca://BL:Mono:Energy.RBV``). `connection_report` flattens
them into one list, each PV with the beamline-file line of the device it belongs to.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

from bluesky.run_engine import RunEngine
from ophyd_async.core import Device, NotConnectedError
from ophyd_async.plan_stubs import ensure_connected

from ssb_beamline.devices.beamline_file import (
    LoadedBeamline,
    default_beamline_file,
    load_beamline_file,
)
from ssb_beamline.devices.txm import DEVICE_KEYS, make_epics_txm

__all__ = [
    "BeamlineConnectionError",
    "check_beamline",
    "close_ca_channels",
    "connect_devices",
    "connection_report",
    "missing_pvs",
]

logger = logging.getLogger(__name__)


class BeamlineConnectionError(ConnectionError):
    """Some PVs of the beamline file did not connect (the message lists each one).

    Attributes
    ----------
    missing : list of (str, str)
        ``(PV, "FILE, line N (key)")`` of each PV that did not connect.
    """

    def __init__(self, message: str, missing: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.missing = missing


def _leaves(error: BaseException, path: str) -> Iterator[tuple[str, str]]:
    """``(device path, PV or error text)`` of every failed signal below ``error``."""
    if isinstance(error, NotConnectedError):
        subs = error.sub_errors
        if not subs:
            yield path, str(error).strip()
            return
        for name, sub in subs.items():
            yield from _leaves(sub, name)
    else:
        yield path, f"{type(error).__name__}: {error}"


def missing_pvs(
    error: NotConnectedError, devices: Mapping[str, Device], loaded: LoadedBeamline
) -> list[tuple[str, str]]:
    """``(PV, "FILE, line N (key)")`` for every signal that did not connect.

    Parameters
    ----------
    error : ophyd_async.core.NotConnectedError
        The error ``ensure_connected`` raised (a tree of sub-errors per device).
    devices : mapping of str to Device
        The devices that were connected, by attribute name.
    loaded : LoadedBeamline
        The beamline file they came from.

    Returns
    -------
    list of (str, str)
        ``(PV, "FILE, line N (key)")``, one per signal that did not connect.
    """
    by_name = {device.name: attr for attr, device in devices.items()}
    missing = []
    for device_name, sub in error.sub_errors.items():
        where = loaded.where(DEVICE_KEYS.get(by_name.get(device_name, ""), "devices"))
        for _, text in _leaves(sub, device_name):
            missing.append((text.removeprefix("ca://"), where))
    return missing


def connection_report(missing: list[tuple[str, str]], loaded: LoadedBeamline) -> str:
    """One message listing every PV that did not connect, with its file line, and the fix.

    Parameters
    ----------
    missing : list of (str, str)
        ``(PV, "FILE, line N (key)")`` of each signal that did not connect.
    loaded : LoadedBeamline
        The beamline file (its path and prefix appear in the fix).

    Returns
    -------
    str
        The multi-line message.
    """
    lines = [f"  {pv}  <- {where}" for pv, where in missing]
    return (
        f"{len(missing)} PV(s) of {loaded.path} did not connect:\n"
        + "\n".join(lines)
        + "\nFix: start the IOC(s) serving them (for the simulated TXM: `ssb-beamline ioc "
        f"--prefix {loaded.config.prefix}`), or correct the prefix in the beamline file; "
        "check EPICS_CA_ADDR_LIST reaches the IOC host."
    )


def connect_devices(
    RE: RunEngine, devices: Mapping[str, Device], loaded: LoadedBeamline, timeout: float
) -> None:
    """Connect every device in the RunEngine's loop (in parallel, bounded by ``timeout``).

    Parameters
    ----------
    RE : bluesky.RunEngine
        The RunEngine whose event loop the devices belong to.
    devices : mapping of str to Device
        The devices to connect, by their attribute name in ``EpicsTXM``.
    loaded : LoadedBeamline
        The beamline file they came from (for the lines in the message).
    timeout : float
        How long to wait for all of them, s.

    Raises
    ------
    BeamlineConnectionError
        Listing every PV that did not connect and the beamline-file line it came from.
    """
    try:
        RE(ensure_connected(*devices.values(), timeout=timeout))
    except NotConnectedError as exc:
        missing = missing_pvs(exc, devices, loaded)
        raise BeamlineConnectionError(connection_report(missing, loaded), missing) from None


def close_ca_channels(RE: RunEngine, timeout: float = 10.0) -> None:
    """Close the Channel Access channels of the devices connected in ``RE``'s loop.

    aioca keeps each loop's channels open until the process exits; an IOC stopped
    before then makes libca print a "Virtual circuit disconnect" block on stderr.
    Only this loop's channels are closed (aioca's ``purge_channel_caches`` would
    close every session's), in the loop's own thread, where the CA context is
    attached. Best effort: a failure is logged, never raised.

    Parameters
    ----------
    RE : bluesky.RunEngine
        The RunEngine the devices were connected in (:func:`connect_devices`).
    timeout : float, default 10.0
        How long to wait for the loop to close them, s.
    """
    from aioca import _catools

    caches = getattr(getattr(_catools, "_Context", None), "_channel_caches", None)
    if not isinstance(caches, dict) or RE.loop not in caches:
        return  # nothing connected over CA in this loop (or an aioca without the cache)

    async def purge() -> None:
        cache = caches.pop(asyncio.get_running_loop(), None)
        if cache is not None:
            cache.purge()

    try:
        asyncio.run_coroutine_threadsafe(purge(), RE.loop).result(timeout)
    except Exception as exc:  # closing must never fail a session's close
        logger.warning("could not close the Channel Access channels: %s", exc)


def check_beamline(
    path: str | Path | None, *, prefix: str | None = None, timeout: float = 5.0
) -> tuple[LoadedBeamline, list[tuple[str, str]], int]:
    """Try to connect every device of a beamline file; nothing is moved or written.

    Parameters
    ----------
    path : str, pathlib.Path or None
        The beamline file; None: the shipped example (``sim-txm.yaml``).
    prefix : str, optional
        Replaces the file's common PV prefix (keyword only).
    timeout : float, default 5.0
        How long to wait for all devices to connect (in parallel), s.

    Returns
    -------
    (loaded file, [(PV, "FILE, line N (key)"), ...] that did not connect, number of devices)

    Raises
    ------
    BeamlineFileError
        If the file is missing or invalid (the message names key, line and fix).
    """
    from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider

    loaded = load_beamline_file(path or default_beamline_file(), prefix=prefix)
    provider = StaticPathProvider(
        UUIDFilenameProvider(), loaded.config.detector_files.ioc_directory
    )
    devices = make_epics_txm(loaded.config, provider).named_devices()
    RE = RunEngine({}, call_returns_result=False)
    try:
        connect_devices(RE, devices, loaded, timeout)
    except BeamlineConnectionError as exc:
        return loaded, exc.missing, len(devices)
    return loaded, [], len(devices)
