"""A beamline session from a beamline file: EPICS devices, RunEngine, tiled, live analysis.

:func:`beamline_session` is :func:`~ssb_beamline.profiles.simulated.simulated_beamline`
for a real (or simulated-over-Channel-Access) microscope: the same session class
(`EpicsBeamline` is a `SimulatedBeamline` with ``txm`` an `EpicsTXM`), the same
journaled tiled writer, live XANES analysis and suspenders (wired by the shared
:func:`~ssb_beamline.profiles.session_wiring.wire_session`). Two additions:

* every plan the RunEngine runs closes the photon shutter at its end, also after a
  failure (a ``RE.preprocessors`` wrapper; best effort and bounded when the IOC is
  gone);
* the energy list and focus positions are checked against the file's ``limits``
  before the plan is built (the EPICS HLM/LLM are checked by the plan itself).

Examples
--------
>>> from ssb_beamline.profiles.beamline import beamline_session   # doctest: +SKIP
>>> with beamline_session("my-txm.yaml") as session:              # doctest: +SKIP
...     (uid,) = session.run(session.xanes("standard"))
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider, generate_directory_uri

from ssb_beamline.callbacks import LiveUpdate
from ssb_beamline.devices.beamline_file import LoadedBeamline, load_beamline_file
from ssb_beamline.devices.shutter import ShutterState
from ssb_beamline.devices.txm import EpicsTXM, make_epics_txm
from ssb_beamline.plans import ni_k_edge_grid, xanes_scan
from ssb_beamline.plans.focus_models import register_focus_model
from ssb_beamline.plans.stubs import check_within_limits
from ssb_beamline.plans.suspenders import checkpoint_after_each_event
from ssb_beamline.private_files import make_private_dir
from ssb_beamline.profiles.beamline_tomo import holotomo_plan, tomo_plan, xanes_tomo_plan
from ssb_beamline.profiles.connection import close_ca_channels, connect_devices
from ssb_beamline.profiles.focus_model import ZonePlateFocusModel
from ssb_beamline.profiles.session_wiring import attach_tomo_analysis, wire_session
from ssb_beamline.profiles.simulated import SimulatedBeamline, new_run_engine
from ssb_beamline.storage import TiledStore, open_store

__all__ = ["EpicsBeamline", "beamline_session", "close_shutter_at_end"]

logger = logging.getLogger(__name__)


def close_shutter_at_end(shutter: Any) -> Callable[[Any], Any]:
    """A RunEngine preprocessor: close ``shutter`` when any plan ends, however it ends.

    A failure to close (e.g. the IOC is gone) is logged, never raised over the
    plan's own outcome; the shutter's own timeout bounds the wait.

    Parameters
    ----------
    shutter : Movable
        The photon shutter (set to ``ShutterState.CLOSED``), e.g. ``txm.shutter``;
        a device that cannot take that value only logs the failure.

    Returns
    -------
    callable
        A preprocessor to append to ``RE.preprocessors``.
    """

    def close() -> Any:
        try:
            yield from bps.mv(shutter, ShutterState.CLOSED)
        except Exception:
            logger.exception("Could not close %s at the end of the plan", shutter.name)

    def preprocessor(plan: Any) -> Any:
        return bpp.finalize_wrapper(plan, close())

    return preprocessor


@dataclass
class EpicsBeamline(SimulatedBeamline):
    """A session on EPICS devices (``txm`` is an `EpicsTXM`); see `SimulatedBeamline`.

    Made by :func:`beamline_session`, which connects and wires everything.

    Attributes
    ----------
    RE : bluesky.RunEngine
        Closes the shutter after every plan; writer and live analysis subscribed.
    txm : EpicsTXM
        The connected microscope devices of the beamline file.
    store : TiledStore
        The tiled store the runs and results go to.
    outcomes : list of LiveOutcome
        One per analysed run, newest last.
    on_update : callable or None
        Called with a :class:`~ssb_beamline.callbacks.LiveUpdate` after each analysed image.
    writer, live : BackgroundCallback or None
        The tiled writer and the live analysis, each on its own thread (None when
        switched off).
    journal : DocumentJournal or None
        The local journal of every document (replayed by ``sync`` after an outage).
    faults : None
        Always None: faults are injected into the simulator only (see `inject_faults`).
    aborted : list of str
        Start uids of the runs aborted in this session.
    own_runs : set of str
        Start uids of the runs this session took.
    publisher : bluesky.callbacks.zmq.Publisher or None
        The 0MQ publisher, when documents go to an analysis worker.
    beamline : LoadedBeamline
        The beamline file (validated config, path, key lines).
    focus : ZonePlateFocusModel
        The file's focus model (named ``beamline.config.focus.name``).
    """

    beamline: LoadedBeamline | None = None
    focus: ZonePlateFocusModel | None = None

    def close(self) -> None:
        """Close as `SimulatedBeamline` does, then the devices' Channel Access channels.

        An IOC stopped after this (the EPICS demo's child IOC) leaves no libca
        "Virtual circuit disconnect" block on the user's terminal.
        """
        try:
            super().close()
        finally:
            close_ca_channels(self.RE)

    def inject_faults(self, schedule: Any) -> None:
        """Only the simulator injects faults; at a beamline nothing can be scheduled."""
        if schedule is not None:
            raise ValueError(
                "Fault schedules drive the in-process simulator only; over EPICS, stop "
                "or disturb the IOC itself."
            )

    def check_limits(self, energies: Sequence[float], track_focus: bool = True) -> None:
        """Raise ``ValueError`` (nothing moved) if an energy or focus position leaves the
        file's ``limits``; the message names the file line."""
        assert self.beamline is not None and self.focus is not None
        limits, where = self.beamline.config.limits, self.beamline.where
        check_within_limits(
            f"energy (limits.energy_ev in {where('limits.energy_ev')})",
            list(energies), limits.energy_ev, "eV",
        )  # fmt: skip
        if not track_focus:
            return
        positions = [self.focus(e) for e in energies]
        for index, key in ((0, "zp_z_mm"), (1, "det_z_mm")):
            bounds = getattr(limits, key)
            if bounds is not None:
                check_within_limits(
                    f"{('zp_z', 'det_z')[index]} (limits.{key} in {where('limits.' + key)})",
                    [p[index] for p in positions], bounds, "mm",
                )  # fmt: skip

    def tomo_scan(self, *args: Any, **kwargs: Any):
        """A ``tomo_scan`` plan (see :func:`~ssb_beamline.profiles.beamline_tomo.tomo_plan`)."""
        return tomo_plan(self, *args, **kwargs)

    def xanes_tomo(self, *args: Any, **kwargs: Any):
        """A ``xanes_tomo_scan`` plan (see :func:`.beamline_tomo.xanes_tomo_plan`)."""
        return xanes_tomo_plan(self, *args, **kwargs)

    def holotomo(self, *args: Any, **kwargs: Any):
        """A ``holotomo_scan`` plan (see :func:`.beamline_tomo.holotomo_plan`)."""
        return holotomo_plan(self, *args, **kwargs)

    def xanes(
        self,
        energies: Any = "standard",
        *,
        track_focus: bool = True,
        exposure_time: float | None = None,
        n_dark: int = 5,
        flat_every: int = 1,
        sample: Mapping[str, Any] | None = None,
        md: Mapping[str, Any] | None = None,
    ):
        """A ``xanes_scan`` plan on this beamline (``energies``: a preset name or a list, eV)."""
        assert self.beamline is not None and self.focus is not None
        txm: EpicsTXM = self.txm  # type: ignore[assignment]
        grid = list(ni_k_edge_grid(energies) if isinstance(energies, str) else energies)
        self.check_limits([float(e) for e in grid], track_focus)
        config = self.beamline.config
        return xanes_scan(
            txm.detector, txm.energy, txm.zp_z, txm.det_z, txm.sample.x, txm.shutter, txm.i0,
            grid, sample_out=config.sample_out_x, focus=self.focus if track_focus else None,
            exposure_time=exposure_time, n_dark=n_dark, flat_every=flat_every,
            sample=dict(sample or {"name": f"sample on {config.name}"}),
            optics={
                "magnification": config.focus.magnification,
                "pixel_size_um": config.focus.pixel_size_um,
                "focus_model": self.focus.name,
                "beamline_file": str(self.beamline.path),
                "simulated": False,
            },
            baseline=[txm.sample, txm.shutter,
                      *(d for d in (txm.ring_current, txm.fe_shutter) if d is not None)],
            md=md,
        )  # fmt: skip


def _path_provider(loaded: LoadedBeamline, detector_dir: str | Path | None) -> StaticPathProvider:
    files = loaded.config.detector_files
    if detector_dir is not None:  # the IOC runs on this machine: one path for both
        ioc_dir, local = str(Path(detector_dir).resolve()), Path(detector_dir).resolve()
    else:
        ioc_dir, local = files.ioc_directory, files.local_directory
    # the beamline file's folder may be the facility's (its detector IOC's account owns
    # it, its group writes it): only made if missing; the simulated IOC checks its own
    make_private_dir(local, check_existing=detector_dir is not None)
    uri = generate_directory_uri(local)  # file://localhost/<the folder as seen here>/
    return StaticPathProvider(UUIDFilenameProvider(), ioc_dir, directory_uri=uri)


def beamline_session(
    beamline_file: str | Path,
    *,
    prefix: str | None = None,
    tiled_uri: str | None = None,
    data_dir: str | Path | None = None,
    detector_dir: str | Path | None = None,
    on_update: Callable[[LiveUpdate], None] | None = None,
    live_analysis: bool = True,
    write_to_tiled: bool = True,
    suspenders: bool = True,
    suspender_options: Mapping[str, float] | None = None,
    connect_timeout: float = 10.0,
    store: TiledStore | None = None,
    analysis: Literal["xanes", "tomo"] = "xanes",
) -> EpicsBeamline:
    """Load a beamline file, connect its devices and wire a session.

    Parameters
    ----------
    beamline_file : path
        The beamline file (see :mod:`ssb_beamline.devices.beamline_file`).
    prefix : str, optional
        Replaces the file's common PV prefix (e.g. a test IOC's unique prefix).
    tiled_uri, data_dir, on_update, live_analysis, write_to_tiled, suspenders,
    suspender_options
        As for :func:`~ssb_beamline.profiles.simulated.simulated_beamline`.
    detector_dir : path, optional
        One folder for the IOC and the analysis (an IOC on this machine), instead of
        the file's ``detector_files``; default: the file's folders.
    connect_timeout : float
        Seconds to wait for every PV.
    analysis : {"xanes", "tomo"}
        The live analysis: 2D XANES maps, or tomography / 3D XANES / holotomography
        (``tomo_live_factory``, as in the simulated tomography session).
    store : TiledStore, optional
        An open store to use (closed with the session, left open if this fails);
        default: ``open_store(tiled_uri, data_dir=data_dir)``.

    Raises
    ------
    BeamlineFileError
        For a malformed file (file, key, line, fix).
    BeamlineConnectionError
        Listing every PV that did not connect, with its file line.
    """
    loaded = load_beamline_file(beamline_file, prefix=prefix)
    owned = store is None
    store = store or open_store(tiled_uri, data_dir=data_dir)
    try:
        txm = make_epics_txm(loaded.config, _path_provider(loaded, detector_dir))
        RE = new_run_engine(store)  # scan ids persist per data directory / server
        connect_devices(RE, txm.named_devices(), loaded, connect_timeout)
        RE.preprocessors.append(checkpoint_after_each_event)
        RE.preprocessors.append(close_shutter_at_end(txm.shutter))
        focus = ZonePlateFocusModel.from_calibration(loaded.config.focus)
        register_focus_model(focus.name, focus)  # plans through the queue take focus=name
        session = EpicsBeamline(
            RE, txm, store, on_update=on_update, beamline=loaded,  # type: ignore[arg-type]
            focus=focus,
        )  # fmt: skip
        wire_session(
            session, store, txm.ring_current, txm.fe_shutter,
            live_analysis=live_analysis and analysis == "xanes", write_to_tiled=write_to_tiled,
            suspenders=suspenders, suspender_options=suspender_options,
        )  # fmt: skip
        if live_analysis and analysis == "tomo":
            attach_tomo_analysis(session, store, write_to_tiled)
    except BaseException:
        if owned:
            store.close()
        raise
    logger.info("Beamline %s (%s) connected", loaded.config.name, loaded.path)
    return session
