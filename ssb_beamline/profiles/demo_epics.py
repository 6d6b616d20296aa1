"""The demo over Channel Access: the simulated TXM IOC, the beamline profile, scored.

``ssb-beamline demo --epics`` runs today's demo through EPICS: it uses a simulated
TXM IOC already serving the beamline file's prefix (``ssb-beamline ioc``), or
starts one as a child process on a free loopback port, then runs the XANES scan
through :func:`~ssb_beamline.profiles.beamline.beamline_session` and scores the
maps against the phantom the IOC simulates (same size and seed).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console

from ssb_beamline.devices.beamline_file import default_beamline_file, load_beamline_file
from ssb_beamline.private_files import make_private_dir
from ssb_beamline.profiles.beamline import beamline_session
from ssb_beamline.profiles.demo import scan_and_report
from ssb_beamline.sim_devices.ioc.frames import txm_phantom_config
from ssb_beamline.sim_devices.phantom import Phantom, make_phantom
from ssb_beamline.sim_devices.xray_physics import truth_edge_energy_map
from ssb_beamline.storage import open_store

__all__ = ["PhantomTruth", "run_epics_demo", "sim_ioc_for"]

logger = logging.getLogger(__name__)

#: CA port of an IOC started by hand (``ssb-beamline ioc``): the EPICS default.
DEFAULT_CA_PORT = 5064


@dataclass
class PhantomTruth:
    """The ground truth of the phantom a simulated IOC images (for scoring).

    Attributes
    ----------
    phantom : Phantom
        The phantom the simulated IOC images (same size and seed), whose SOC and
        edge-energy maps the recovered maps are scored against.
    """

    phantom: Phantom
    _edge: np.ndarray | None = field(default=None, repr=False)

    @property
    def pixel_size_um(self) -> float:
        """Pixel size at the sample, um."""
        return float(self.phantom.config.pixel_size_um)

    def truth_soc(self) -> np.ndarray:
        """SOC map, NaN outside NMC particles, (H, W) float32."""
        return np.where(self.phantom.labels > 0, self.phantom.soc, np.nan).astype(np.float32)

    def truth_edge_energy_map(self) -> np.ndarray:
        """Half-step Ni K-edge energy map (eV), NaN outside NMC, (H, W) float32."""
        if self._edge is None:
            self._edge = truth_edge_energy_map(self.phantom)
        return self._edge


@contextlib.contextmanager
def sim_ioc_for(
    prefix: str,
    *,
    data_dir: Path,
    size: int,
    seed: int,
    port: int | None = None,
) -> Iterator[str]:
    """Use the simulated IOC answering ``prefix`` on ``port``, or start one; yield how.

    Sets ``EPICS_CA_ADDR_LIST`` (loopback) before any Channel Access context exists.
    A child IOC is stopped on exit.

    Parameters
    ----------
    prefix : str
        PV prefix of the simulated TXM (``"SSBSIM:"``).
    data_dir : pathlib.Path
        Folder where a child IOC writes its HDF5 files (keyword only).
    size : int
        Detector width and height of a child IOC, pixels.
    seed : int
        Phantom seed of a child IOC.
    port : int, optional
        Port of an IOC already running; None: ``$EPICS_CA_SERVER_PORT`` or 5064.

    Yields
    ------
    str
        How the IOC is reached (for a status line).
    """
    from ssb_beamline.sim_devices.ioc import start_sim_ioc
    from ssb_beamline.sim_devices.ioc.launch import ca_search

    port = port or int(os.environ.get("EPICS_CA_SERVER_PORT", DEFAULT_CA_PORT))
    if ca_search(prefix + "Ring:Current", port, timeout=1.0):
        os.environ.update(
            {"EPICS_CA_ADDR_LIST": f"127.0.0.1:{port}", "EPICS_CA_AUTO_ADDR_LIST": "NO"}
        )
        yield f"the IOC serving {prefix} on 127.0.0.1:{port}"
        return
    handle = start_sim_ioc(
        prefix, data_dir=data_dir, args=["--size", str(size), "--phantom-seed", str(seed)]
    )
    try:
        yield f"a child IOC {prefix} on 127.0.0.1:{handle.port} (log {handle.log_path})"
    finally:
        handle.stop()


def run_epics_demo(
    *,
    out_dir: Path,
    beamline_file: Path | None = None,
    prefix: str | None = None,
    tiled_uri: str | None = None,
    data_dir: Path | None = None,
    preset: str = "standard",
    size: int = 512,
    seed: int = 0,
    ca_port: int | None = None,
    console: Console | None = None,
) -> int:
    """Run the demo over Channel Access; returns the exit code (0: analysis succeeded).

    Parameters
    ----------
    out_dir : pathlib.Path
        Folder for the figures and the score table (created; must be writable).
    beamline_file : pathlib.Path, optional
        The beamline file; None: the shipped ``sim-txm.yaml``.
    prefix : str, optional
        PV prefix replacing the file's; None keeps it.
    tiled_uri : str, optional
        A running tiled server's API address; None: ``$SSB_TILED_URI``, else the
        local background server, else an embedded one on ``data_dir``.
    data_dir : pathlib.Path, optional
        Data directory of that local server (default: the user's data folder).
    preset : str, default "standard"
        Energy-grid preset of the XANES scan (``"quick"``, ``"standard"``,
        ``"fine"``, ``"full"``).
    size : int, default 512
        Phantom width and height, pixels (the IOC's detector size).
    seed : int, default 0
        Phantom seed (the IOC and the truth use the same one).
    ca_port : int, optional
        Channel Access server port of an IOC already running; None:
        ``$EPICS_CA_SERVER_PORT`` or 5064. Without an IOC answering there, a child
        IOC is started on a free loopback port.
    console : rich.console.Console, optional
        Where progress and tables are printed; None: a new console on stdout.

    Returns
    -------
    int
        Exit code: 0 when the analysis succeeded and was scored.
    """
    console = console or Console()
    path = Path(beamline_file) if beamline_file else default_beamline_file()
    loaded = load_beamline_file(path, prefix=prefix)
    prefix = loaded.config.prefix
    truth = PhantomTruth(make_phantom(txm_phantom_config(size, seed)))  # what the IOC images
    store = open_store(tiled_uri, data_dir=data_dir)
    try:
        folder = Path(store.detector_dir or loaded.config.detector_files.local_directory)
        make_private_dir(folder)
        with sim_ioc_for(prefix, data_dir=folder, size=size, seed=seed, port=ca_port) as how:
            with console.status(f"Connecting to {how}..."):
                session = beamline_session(path, prefix=prefix, store=store, detector_dir=folder)
            store = None  # the session closes it
            return scan_and_report(
                session, truth, out_dir=out_dir, preset=preset, size=size, console=console,
                title=f"XANES scan over Channel Access ({prefix})",
            )  # fmt: skip
    finally:
        if store is not None:
            store.close()
