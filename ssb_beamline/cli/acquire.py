"""Acquisition commands: ``demo`` (TXM, EPICS, STXM, network), ``ioc``, ``check``, ``analyze``.

The ``demo`` variants and the IOC run in this process until done or Ctrl-C.
"""

from __future__ import annotations

import argparse

from ssb_beamline.cli._console import console

__all__ = ["cmd_analyze", "cmd_check", "cmd_demo", "cmd_ioc"]


def cmd_demo(args: argparse.Namespace) -> int:
    """``demo``: a simulated scan end to end (``--epics``, ``--stxm``, ``--network`` variants)."""
    from ssb_beamline.cli.servers import check_not_served

    # before importing the acquisition stack (tens of seconds on a loaded machine),
    # and before anything is made on disk
    _check_demo_inputs(args)
    if check_not_served(args):  # `ssb-beamline serve` on the data directory: say so, not wait
        _check_writable_data_dir(args)
    from bluesky.utils import RunEngineInterrupted

    from ssb_beamline.profiles.demo import run_demo

    if getattr(args, "epics", False):
        return _demo_epics(args)
    if getattr(args, "stxm", False):
        return _demo_stxm(args)
    if getattr(args, "network", False):
        from ssb_beamline.profiles.network3d import run_network_demo

        return run_network_demo(out_dir=args.out, tiled_uri=args.tiled, data_dir=args.data_dir,
                                seed=args.seed, console=console)  # fmt: skip
    # Ctrl-C during the scan: the RunEngine pauses at the next checkpoint (twice:
    # at once); leaving the session then aborts the paused run, so its stop document
    # and every frame taken so far are stored (SimulatedBeamline.close).
    try:
        return run_demo(
            out_dir=args.out,
            tiled_uri=args.tiled,
            data_dir=args.data_dir,
            preset=args.preset,
            size=args.size,
            seed=args.seed,
            console=console,
        )
    except RunEngineInterrupted as exc:
        uids = getattr(exc, "uids", ())
        run = f"run {', '.join(uids)}" if uids else "the run"
        console.print(
            f"[bold yellow]Interrupted (Ctrl-C):[/] the scan was stopped and {run} aborted "
            "cleanly; it is stored in tiled with exit_status 'abort' and every frame taken "
            "before the interruption. List it with `ssb-beamline runs`."
        )
        return 130


def _check_demo_inputs(args: argparse.Namespace) -> None:
    """The --out, --size and memory checks of the demo variant asked for."""
    from ssb_beamline.profiles import demo_checks

    if getattr(args, "stxm", False):
        demo_checks.check_stxm_inputs(out_dir=args.out, size=_stxm_size(args))
    elif getattr(args, "network", False):  # a fixed phantom: --size is not used
        demo_checks.check_output_folder(args.out)
    elif getattr(args, "epics", False):  # the client's analysis: as the plain demo's
        demo_checks.check_demo_inputs(out_dir=args.out, size=args.size, preset=args.preset,
                                      max_size=demo_checks.IOC_MAX_SIZE_PX,
                                      what="EPICS demo")  # fmt: skip
    else:
        demo_checks.check_demo_inputs(out_dir=args.out, size=args.size, preset=args.preset)


def _stxm_size(args: argparse.Namespace) -> int:
    return 48 if args.size == 512 else args.size  # the TXM default is not a raster size


def _check_writable_data_dir(args: argparse.Namespace) -> None:
    """Refuse a data directory the demo cannot write, before anything starts.

    A read-only one would otherwise fail only once the scan begins (its scan id).
    """
    import errno
    import os
    from pathlib import Path

    from ssb_beamline.private_files import check_own_folder
    from ssb_beamline.profiles.demo_checks import nearest_existing
    from ssb_beamline.storage.server_config import DataDirectoryError, default_data_dir

    root = Path(args.data_dir or default_data_dir()).expanduser().absolute()
    existing = nearest_existing(root) or root  # itself, or the folder it will be made in
    try:
        if not existing.is_dir():
            raise OSError(errno.ENOTDIR, "not a directory", str(existing))
        if not os.access(existing, os.W_OK):
            raise OSError(errno.EROFS, "not writable (read-only)", str(existing))
        if existing == root:  # the package's own: not another user's, not open to others
            check_own_folder(root)
    except OSError as exc:
        raise DataDirectoryError(root, exc) from exc


def _demo_stxm(args: argparse.Namespace) -> int:
    from ssb_beamline.profiles.stxm_demo import run_stxm_demo

    return run_stxm_demo(out_dir=args.out, tiled_uri=args.tiled, data_dir=args.data_dir,
                         size=_stxm_size(args), seed=args.seed, console=console)  # fmt: skip


def _demo_epics(args: argparse.Namespace) -> int:
    from ssb_beamline.profiles.demo_epics import run_epics_demo

    return run_epics_demo(
        out_dir=args.out, beamline_file=args.beamline, prefix=args.prefix,
        tiled_uri=args.tiled, data_dir=args.data_dir, preset=args.preset, size=args.size,
        seed=args.seed, ca_port=args.ca_port, console=console,
    )  # fmt: skip


def cmd_ioc(args: argparse.Namespace) -> int:
    """``ioc``: serve the simulated TXM over Channel Access until Ctrl-C.

    Every input is checked (and the IOC built) before the banner says it serves.
    """
    from ssb_beamline.devices.beamline_file import default_beamline_file, load_beamline_file
    from ssb_beamline.private_files import make_private_dir
    from ssb_beamline.sim_devices.ioc import SimTXMIOC, serve_sim_txm_ioc
    from ssb_beamline.sim_devices.ioc.frames import SimConfig

    loaded = load_beamline_file(args.beamline or default_beamline_file(), prefix=args.prefix)
    prefix = loaded.config.prefix
    config = SimConfig(size=args.size, seed=args.seed)  # "--size must be 16..4096 pixels"
    data_dir = args.data_dir or loaded.config.detector_files.local_directory
    given = "--data-dir" if args.data_dir else f"detector_files of {loaded.path}"
    try:  # a file, or a folder of another user or open to others, is refused
        make_private_dir(data_dir)
    except OSError as exc:
        raise ValueError(f"{given}: {exc}") from exc
    ioc = SimTXMIOC(prefix, config=config, data_dir=data_dir)
    console.print(
        f"Simulated TXM IOC {prefix} on 127.0.0.1:{args.port} (Channel Access); clients need "
        f"EPICS_CA_ADDR_LIST=127.0.0.1:{args.port} EPICS_CA_AUTO_ADDR_LIST=NO. Ctrl-C stops it."
    )
    try:
        serve_sim_txm_ioc(prefix, port=args.port, ioc=ioc)
    except KeyboardInterrupt:
        console.print(f"IOC {prefix} stopped")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """``check``: list every PV of a beamline file that does not connect; 1 if any."""
    from rich.table import Table
    from rich.text import Text

    from ssb_beamline.profiles.connection import check_beamline

    loaded, missing, total = check_beamline(args.beamline, prefix=args.prefix, timeout=args.timeout)
    table = Table(title=f"PVs of {loaded.path} that did not connect")
    table.add_column("PV")
    table.add_column("from (file, line, key)")
    for pv, where in missing:
        table.add_row(Text(pv), Text(where))  # Text: no markup or emoji codes in PV names
    if missing:
        console.print(table)
        devices = len({where for _, where in missing})
        console.print(
            Text(f"{len(missing)} PV(s) of {devices} of the {total} devices did not connect. "
                 "Start their IOC(s) or correct the beamline file at the lines shown.",
                 style="bold red")
        )  # fmt: skip
        return 1
    console.print(Text(f"All {total} devices of {loaded.path} connected ({loaded.config.prefix})."))
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    """``analyze``: the live analysis as its own process, on documents from a 0MQ proxy."""
    from ssb_beamline.profiles.worker import run_worker

    def ready(endpoint: str, uri: str) -> None:
        console.print(
            f"analysis worker listening on {endpoint}, storing results in {uri} "
            "(Ctrl-C stops it; runs in progress are finished from tiled at the next start)"
        )

    run_worker(
        args.zmq, tiled_uri=args.tiled, data_dir=args.data_dir, state_dir=args.state_dir,
        connect_timeout_s=args.connect_timeout, recover_last=args.recover_last, on_ready=ready,
    )  # fmt: skip
    return 0
