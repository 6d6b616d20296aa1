"""The ``ssb-beamline`` command: demo, runs, show, report, serve."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress

logger = logging.getLogger("ssb_beamline")
console = Console(soft_wrap=True)  # error lines keep paths whole: no hard breaks inserted


def _configure_logging(verbosity: int) -> None:
    from rich.logging import RichHandler

    level = logging.WARNING - 10 * min(verbosity, 2)
    handler = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)
    for noisy in ("httpx", "tiled", "uvicorn", "bluesky", "ophyd_async", "ophyd"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tiled",
        metavar="URI",
        help="a running tiled server (default: $SSB_TILED_URI, else the embedded server)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="data directory of the embedded server (default: $SSB_DATA_DIR or "
        "~/.local/share/ssb_beamline)",
    )


def _beamline_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--beamline", type=Path, help="beamline file (default: the packaged sim-txm.yaml)"
    )
    parser.add_argument("--prefix", help="replace the beamline file's PV prefix (e.g. 'SSBSIM:')")


def _cmd_demo(args: argparse.Namespace) -> int:
    from bluesky.utils import RunEngineInterrupted

    from ssb_beamline.profiles.demo import run_demo

    if getattr(args, "epics", False):
        return _cmd_demo_epics(args)
    if getattr(args, "stxm", False):
        return _cmd_demo_stxm(args)
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


def _cmd_demo_stxm(args: argparse.Namespace) -> int:
    from ssb_beamline.profiles.stxm_demo import run_stxm_demo

    size = 48 if args.size == 512 else args.size  # the TXM default is not a raster size
    return run_stxm_demo(out_dir=args.out, tiled_uri=args.tiled, data_dir=args.data_dir,
                         size=size, seed=args.seed, console=console)  # fmt: skip


def _cmd_demo_epics(args: argparse.Namespace) -> int:
    from ssb_beamline.profiles.demo_epics import run_epics_demo

    return run_epics_demo(
        out_dir=args.out, beamline_file=args.beamline, prefix=args.prefix,
        tiled_uri=args.tiled, data_dir=args.data_dir, preset=args.preset, size=args.size,
        seed=args.seed, ca_port=args.ca_port, console=console,
    )  # fmt: skip


def _cmd_ioc(args: argparse.Namespace) -> int:
    from ssb_beamline.devices.beamline_file import default_beamline_file, load_beamline_file
    from ssb_beamline.private_files import make_private_dir
    from ssb_beamline.sim_devices.ioc import serve_sim_txm_ioc
    from ssb_beamline.sim_devices.ioc.frames import SimConfig

    loaded = load_beamline_file(args.beamline or default_beamline_file(), prefix=args.prefix)
    prefix = loaded.config.prefix
    data_dir = args.data_dir or loaded.config.detector_files.local_directory
    make_private_dir(data_dir)
    console.print(
        f"Simulated TXM IOC {prefix} on 127.0.0.1:{args.port} (Channel Access); clients need "
        f"EPICS_CA_ADDR_LIST=127.0.0.1:{args.port} EPICS_CA_AUTO_ADDR_LIST=NO. Ctrl-C stops it."
    )
    try:
        serve_sim_txm_ioc(prefix, port=args.port, data_dir=data_dir,
                          config=SimConfig(size=args.size, seed=args.seed))  # fmt: skip
    except KeyboardInterrupt:
        console.print(f"IOC {prefix} stopped")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
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


def _cmd_runs(args: argparse.Namespace) -> int:
    import json

    from ssb_beamline.storage.run_table import RunListError, list_runs

    with _server_for_reading(args) as (url, api_key, where, journal_dir):
        try:
            rows, total = list_runs(url, api_key, limit=args.limit, journal_dir=journal_dir)
        except RunListError as exc:
            fix = "Check the API key ($SSB_TILED_API_KEY)" if exc.status in (401, 403) else (
                "See the server's log")  # fmt: skip
            raise ConnectionError(f"Listing the runs failed: {exc}. {fix}.") from exc
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=1))
        return 0
    if not rows:
        console.print(f"No runs stored yet in {where}. Try `ssb-beamline demo`.")
        return 0
    from ssb_beamline.report.runs_table import render_runs

    console.print(render_runs(rows, total=total, where=where))
    return 0


@contextmanager
def _server_for_reading(args: argparse.Namespace):
    """``(url, api_key, label, journal dir)`` of the store a read-only command reads.

    ``--tiled`` / ``$SSB_TILED_URI``: that server. Else the data directory's
    background server, started if needed (``$SSB_BACKGROUND_SERVER=0``: an embedded
    server for this command only, stopped at its end).
    """
    import os

    from ssb_beamline.storage.server_config import (
        TILED_API_KEY_ENV,
        TILED_URI_ENV,
        DataLayout,
        default_data_dir,
        load_or_create_api_key,
    )

    data_dir = Path(args.data_dir or default_data_dir()).expanduser()
    uri = args.tiled or os.environ.get(TILED_URI_ENV)
    if uri:
        from ssb_beamline.storage.connect import check_tiled_uri

        check_tiled_uri(uri)
        yield uri, os.environ.get(TILED_API_KEY_ENV), uri, data_dir / "journal"
        return
    service = _ensure_background(args)
    if service is not None:
        key = load_or_create_api_key(DataLayout(service.data_dir))
        yield service.url, key, str(service.data_dir), service.data_dir / "journal"
        return
    from ssb_beamline.storage import open_store

    with open_store(None, data_dir=data_dir) as store:
        key = store.server.api_key if store.server is not None else None
        yield store.uri, key, str(data_dir), store.journal_dir


def _ensure_background(args: argparse.Namespace):
    """The data directory's background server (started if needed), or None when not used."""
    import os

    from ssb_beamline.storage.server_config import TILED_URI_ENV, default_data_dir
    from ssb_beamline.storage.service import background_enabled, ensure_service, running_service

    if args.tiled or os.environ.get(TILED_URI_ENV) or not background_enabled():
        return None
    data_dir = args.data_dir or default_data_dir()
    if (found := running_service(data_dir)) is not None:
        return found
    with console.status(
        "Starting the background tiled server for this data directory (once; later "
        "commands use it; `ssb-beamline serve --stop` stops it)..."
    ):
        return ensure_service(data_dir)


def _resolve_uid(runs, partial: str) -> str:
    from ssb_beamline.storage.replay import resolve_uid

    return resolve_uid(runs, partial)


def _positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (argparse prints the message and exits 2)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _count(text: str) -> int:
    """argparse type: a whole number >= 0 (argparse prints the message and exits 2)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return value


def _write_stored_figures(args: argparse.Namespace, draw) -> int:
    """Figures of a stored run's results: ``draw(folder, result, title)`` returns the files."""
    from ssb_beamline.profiles.demo_checks import check_output_folder
    from ssb_beamline.storage import open_store, read_results

    check_output_folder(args.out)  # before connecting: a file there fails at the end
    _ensure_background(args)
    with open_store(args.tiled, data_dir=args.data_dir) as store:
        uid = _resolve_uid(store.raw, args.uid)
        result = read_results(store.results, uid, args.version)
        files = draw(args.out / uid[:8], result, f"run {uid[:8]} ({result.version})")
    for path in files:
        console.print(f"wrote {path}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from ssb_beamline.report.run_figures import show_figures

    def draw(folder, result, title):
        from ssb_beamline.report.stxm import is_stxm_result, write_stxm_figures

        if is_stxm_result(result.metadata):
            return write_stxm_figures(folder, result.arrays, result.tables, result.metadata,
                                      title=title, fmt=args.format)  # fmt: skip
        return show_figures(folder, result, title, fmt=args.format)

    return _write_stored_figures(args, draw)


def _cmd_replay(args: argparse.Namespace) -> int:
    from ssb_beamline.profiles.replay import replay_runs
    from ssb_beamline.storage import open_store
    from ssb_beamline.storage.replay import select_runs

    _ensure_background(args)
    with open_store(args.tiled, data_dir=args.data_dir) as store:
        uids = select_runs(
            store.raw, args.uids, scan_id=args.scan_id, plan_name=args.plan,
            sample=args.sample, since=args.since, until=args.until,
        )  # fmt: skip
        from rich.table import Table

        table = Table(title=f"Replayed {len(uids)} run(s) from {store.uri}")
        for column in ("uid", "result", "results version", "maps (s)"):
            table.add_column(column)
        failed = 0
        with progress_bar() as progress:
            task = progress.add_task("replay", total=len(uids), status="")
            for uid in uids:
                progress.update(task, status=uid[:8])
                (outcome,) = replay_runs(
                    store, [uid], speed=args.speed, fill=args.fill, store_results=not args.dry_run
                )
                failed += not outcome.ok
                table.add_row(
                    uid[:8],
                    "ok" if outcome.ok else f"[red]failed: {'; '.join(outcome.errors)}",
                    outcome.stored_at.rsplit("/", 1)[-1] if outcome.stored_at else "-",
                    f"{outcome.final_seconds:.3f}" if outcome.final_seconds else "-",
                )
                progress.advance(task)
    console.print(table)
    return 1 if failed else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from ssb_beamline.report.run_figures import report_figures

    def draw(folder, result, title):
        from ssb_beamline.report.stxm import is_stxm_result, write_stxm_figures

        if is_stxm_result(result.metadata):
            return write_stxm_figures(folder, result.arrays, result.tables, result.metadata,
                                      title=title, fmt=args.format)  # fmt: skip
        # XANES: particle statistics; tomography / 3D XANES / holotomography: slices,
        # particles, Figure-5 statistics; --format pdf: all of them in one PDF
        return report_figures(folder, result, title, fmt=args.format)

    return _write_stored_figures(args, draw)


def _cmd_sync(args: argparse.Namespace) -> int:
    from ssb_beamline.storage import open_store
    from ssb_beamline.storage.journal import DocumentJournal
    from ssb_beamline.storage.result_journal import ResultJournal
    from ssb_beamline.storage.sync import sync_all

    _ensure_background(args)
    with open_store(args.tiled, data_dir=args.data_dir) as store:
        journal = DocumentJournal(store.journal_dir)
        results_journal = ResultJournal(journal.directory / "results")
        pending, results_pending = journal.pending(), results_journal.pending()
        if not pending and not results_pending:
            console.print(
                f"Nothing to sync: every journaled run and result in {journal.directory} "
                "is in tiled."
            )
            return 0
        with console.status(
            f"Writing {len(pending)} run(s) and {len(results_pending)} result(s) to {store.uri}..."
        ):
            report = sync_all(store.raw, journal, results=store.results)
    return _print_sync_report(report)


def _print_sync_report(report) -> int:
    """Print what ``sync`` did, every failure with its file; 1 if any entry failed."""
    from rich.markup import escape

    for uid in report.runs:
        console.print(f"synced {uid}")
    for path in report.results:
        console.print(f"uploaded {path}")
    for uid in report.busy:
        console.print(f"skipped {uid}: still being acquired (its writer syncs it at the end)")
    for failure in report.failures:
        console.print(f"[bold red]not synced:[/] {escape(str(failure))}", highlight=False)
    total = len(report.runs) + len(report.results) + len(report.failures)
    if report.failures:
        console.print(
            f"{len(report.failures)} of {total} journal entries failed and stay pending "
            "(listed above); the others are in tiled."
        )
        return 1
    console.print(f"{len(report.runs)} run(s) and {len(report.results)} result(s) written.")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from ssb_beamline.storage.server_config import default_data_dir

    data_dir = args.data_dir or default_data_dir()
    if args.stop or args.background:
        return _serve_background(args, data_dir)
    from ssb_beamline.storage.server import serve_forever

    banner = (
        f"tiled server for {data_dir} on http://{args.host}:{args.port}/api/v1 "
        f"(API key in {data_dir / '.api_key'} or $SSB_TILED_API_KEY); Ctrl-C stops it."
    )
    # the banner only once the catalog and the data directory passed their checks
    serve_forever(data_dir, host=args.host, port=args.port, catalog=args.catalog,
                  announce=lambda: console.print(banner))  # fmt: skip
    return 0


def _serve_background(args: argparse.Namespace, data_dir: Path) -> int:
    """``serve --stop`` / ``serve --background``: the data directory's background server."""
    from ssb_beamline.storage.service import ensure_service, stop_service

    if args.stop:
        pid = stop_service(data_dir)
        if pid is None:
            console.print(f"No background tiled server runs for {data_dir}.")
        else:
            console.print(f"Stopped the background tiled server of {data_dir} (process {pid}).")
        return 0
    with console.status(f"Starting the background tiled server for {data_dir}..."):
        service = ensure_service(data_dir)
    console.print(
        f"Background tiled server for {data_dir} at {service.url} (process {service.pid}); "
        "commands use it; `ssb-beamline serve --stop` stops it."
    )
    return 0


class _DefaultsFormatter(argparse.HelpFormatter):
    """Help that shows each option's default (unless None/False or already stated)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "default" not in text
            and not any(action.default is v for v in (None, False, True, argparse.SUPPRESS))
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


def _cmd_analyze(args: argparse.Namespace) -> int:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssb-beamline",
        description="X-ray spectro-microscopy of solid-state battery cathodes: "
        "acquire, analyse live, store in tiled.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run a simulated Ni K-edge XANES scan end to end")
    _store_options(demo)
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="figure folder")
    demo.add_argument(
        "--preset", default="standard", choices=["quick", "standard", "fine", "full"],
        help="energy grid: quick 21, standard 41, fine 63, full 101 points",
    )  # fmt: skip
    demo.add_argument("--size", type=int, default=512, help="field of view, pixels")
    demo.add_argument("--seed", type=int, default=0, help="phantom seed")
    demo.add_argument(
        "--epics", action="store_true",
        help="run over Channel Access: use the simulated IOC serving the prefix, or start one",
    )  # fmt: skip
    demo.add_argument(
        "--network", action="store_true",
        help="3D XANES of a cathode with SSE and carbon, then the 3D conductive-network model",
    )  # fmt: skip
    _beamline_options(demo)
    demo.add_argument("--ca-port", type=int, help="CA port of a running IOC (default 5064)")
    demo.add_argument(
        "--stxm", action="store_true",
        help="a simulated Ni L3 STXM ratio scan instead (--size: raster pixels, default 48)",
    )  # fmt: skip
    demo.set_defaults(func=_cmd_demo)

    ioc = sub.add_parser("ioc", help="serve the simulated TXM over Channel Access until stopped")
    _beamline_options(ioc)
    ioc.add_argument("--port", type=int, default=5064, help="CA server port (loopback)")
    ioc.add_argument("--size", type=int, default=512, help="phantom size, pixels")
    ioc.add_argument("--seed", type=int, default=0, help="phantom seed")
    ioc.add_argument(
        "--data-dir", type=Path,
        help="folder the HDF5 plugin writes to (default: the beamline file's ioc_directory)",
    )  # fmt: skip
    ioc.set_defaults(func=_cmd_ioc)

    check = sub.add_parser("check", help="list every PV of a beamline file that does not connect")
    _beamline_options(check)
    check.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for PVs")
    check.set_defaults(func=_cmd_check)

    runs = sub.add_parser("runs", help="list stored runs")
    _store_options(runs)
    runs.add_argument(
        "--limit", type=_count, default=50, help="show the newest N runs (0: every run)"
    )
    runs.add_argument(
        "--json", action="store_true", help="print the rows as JSON (for scripts), no table"
    )
    runs.set_defaults(func=_cmd_runs)

    show = sub.add_parser("show", help="write the figures of a stored run")
    _store_options(show)
    show.add_argument("uid", help="run uid (a unique prefix is enough)")
    show.add_argument("--version", help="results version (default: the latest)")
    show.add_argument("--out", type=Path, default=Path("figures"), help="figure folder")
    show.add_argument("--format", default="png", choices=["png", "pdf"], help="file format")
    show.set_defaults(func=_cmd_show)

    replay = sub.add_parser(
        "replay", help="replay stored runs through the live analysis (results: a new version)"
    )
    _store_options(replay)
    replay.add_argument("uids", nargs="*", help="run uids (unique prefixes); or select below")
    replay.add_argument("--plan", help="runs of this plan (e.g. xanes_scan)")
    replay.add_argument("--sample", help="runs whose sample name contains this text")
    replay.add_argument("--scan-id", type=int, help="the run with this scan id")
    replay.add_argument("--since", help="runs started at or after this ISO time (UTC)")
    replay.add_argument("--until", help="runs started at or before this ISO time (UTC)")
    replay.add_argument(
        "--speed", type=float, help="1.0 replays with the recorded timing; default: at once"
    )
    replay.add_argument(
        "--fill", default="auto", choices=["auto", "always", "never"],
        help="fetch frames from tiled instead of the detector files (auto: when unreadable)",
    )  # fmt: skip
    replay.add_argument("--dry-run", action="store_true", help="analyse, store nothing")
    replay.set_defaults(func=_cmd_replay)

    report = sub.add_parser(
        "report", help="write the particle-statistics (or tomography) figures of a stored run"
    )
    _store_options(report)
    report.add_argument("uid", help="run uid (a unique prefix is enough)")
    report.add_argument("--version", help="results version (default: the latest)")
    report.add_argument("--out", type=Path, default=Path("report"), help="figure folder")
    report.add_argument(
        "--format", default="png", choices=["png", "pdf"],
        help="png: one file per figure; pdf: one multi-page PDF of the run for a logbook",
    )  # fmt: skip
    report.set_defaults(func=_cmd_report)

    sync = sub.add_parser("sync", help="write journaled runs that did not reach tiled")
    _store_options(sync)
    sync.set_defaults(func=_cmd_sync)

    analyze = sub.add_parser(
        "analyze", help="run the live analysis as its own process, on documents from 0MQ"
    )
    _store_options(analyze)
    analyze.add_argument(
        "--zmq", required=True, metavar="HOST:PORT",
        help="output port of the 0MQ proxy (`bluesky-0MQ-proxy IN OUT`: OUT)",
    )  # fmt: skip
    analyze.add_argument("--state-dir", type=Path, help="default: <data dir>/worker")
    analyze.add_argument(
        "--connect-timeout", type=float, default=3.0, help="seconds to wait for the proxy"
    )
    analyze.add_argument(
        "--recover-last", type=int, default=20,
        help="on start, analyse those of the newest N runs that have no results",
    )  # fmt: skip
    analyze.set_defaults(func=_cmd_analyze)

    serve = sub.add_parser(
        "serve",
        help="run the persistent tiled server in the foreground; or stop the background one",
    )
    serve.add_argument(
        "--data-dir", type=Path,
        help="data directory (default: $SSB_DATA_DIR or ~/.local/share/ssb_beamline)",
    )  # fmt: skip
    serve.add_argument(
        "--host", default="127.0.0.1",
        help="address to listen on; another machine's clients need this host's address "
        "(0.0.0.0: every interface; keep the API key private)",
    )  # fmt: skip
    serve.add_argument("--port", type=int, default=8000, help="TCP port")
    serve.add_argument(
        "--stop", action="store_true",
        help="stop the background server that commands started for the data directory",
    )  # fmt: skip
    serve.add_argument(
        "--background", action="store_true",
        help="start the background server for the data directory (if needed) and return",
    )  # fmt: skip
    serve.add_argument(
        "--catalog",
        default=os.environ.get("SSB_CATALOG_URI"),
        help="PostgreSQL catalog, postgresql://USER@HOST:PORT/DB (password in $PGPASSWORD "
        "or ~/.pgpass; default: $SSB_CATALOG_URI, else SQLite in the data directory)",
    )
    serve.set_defaults(func=_cmd_serve)
    for command in sub.choices.values():
        command.formatter_class = _DefaultsFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``ssb-beamline``; returns the exit code."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    # the package's usage errors (TiledUnavailableError, ReplayError, JournalCorruptError,
    # DataDirectoryError, ...) derive from these; not imported here, for a fast start
    except (KeyError, ValueError, ConnectionError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        console.print(f"[bold red]error:[/] {message}")
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130


def progress_bar() -> Progress:
    """The progress bar the CLI shows during a scan (see :mod:`ssb_beamline.progress`)."""
    from ssb_beamline.progress import progress_bar as bar

    return bar(console)


if __name__ == "__main__":
    sys.exit(main())
