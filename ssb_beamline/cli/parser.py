"""The argument parser of ``ssb-beamline``: one ``_add_<command>`` per sub-command.

Every option's help shows its default (:class:`DefaultsFormatter`). The command
functions live in :mod:`.acquire`, :mod:`.stored` and :mod:`.servers`; they import
their heavy dependencies only when they run.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ssb_beamline.cli.acquire import cmd_analyze, cmd_check, cmd_demo, cmd_ioc
from ssb_beamline.cli.servers import cmd_serve
from ssb_beamline.cli.stored import cmd_replay, cmd_report, cmd_runs, cmd_show, cmd_sync

__all__ = ["DefaultsFormatter", "build_parser"]

_DATA_DIR_DEFAULT = "$SSB_DATA_DIR or ~/.local/share/ssb_beamline"


class DefaultsFormatter(argparse.HelpFormatter):
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


def _count(text: str) -> int:
    """argparse type: a whole number >= 0 (argparse prints the message and exits 2)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return value


def _port(text: str, lowest: int = 1) -> int:
    """argparse type: a TCP/UDP port number, 1 (or ``lowest``) to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not lowest <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number {lowest}-65535, got {text!r}")
    return value


def _port_or_any(text: str) -> int:
    """argparse type: a port number, or 0 for any free port."""
    return _port(text, lowest=0)


def _seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tiled",
        metavar="URI",
        help="a running tiled server (default: $SSB_TILED_URI, else the embedded server)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help=f"data directory of the embedded server (default: {_DATA_DIR_DEFAULT})",
    )


def _beamline_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--beamline", type=Path, help="beamline file (default: the packaged sim-txm.yaml)"
    )
    parser.add_argument("--prefix", help="replace the beamline file's PV prefix (e.g. 'SSBSIM:')")


def _add_demo(sub) -> None:
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
    demo.add_argument("--ca-port", type=_port, help="CA port of a running IOC (default 5064)")
    demo.add_argument(
        "--stxm", action="store_true",
        help="a simulated Ni L3 STXM ratio scan instead (--size: raster pixels, default 48)",
    )  # fmt: skip
    demo.set_defaults(func=cmd_demo)


def _add_beamline_tools(sub) -> None:
    ioc = sub.add_parser("ioc", help="serve the simulated TXM over Channel Access until stopped")
    _beamline_options(ioc)
    ioc.add_argument("--port", type=_port, default=5064, help="CA server port (loopback)")
    ioc.add_argument("--size", type=int, default=512, help="phantom size, pixels")
    ioc.add_argument("--seed", type=int, default=0, help="phantom seed")
    ioc.add_argument(
        "--data-dir", type=Path,
        help="folder the HDF5 plugin writes to (default: the beamline file's ioc_directory)",
    )  # fmt: skip
    ioc.set_defaults(func=cmd_ioc)

    check = sub.add_parser("check", help="list every PV of a beamline file that does not connect")
    _beamline_options(check)
    check.add_argument("--timeout", type=_seconds, default=5.0, help="seconds to wait for PVs")
    check.set_defaults(func=cmd_check)


def _add_runs_show(sub) -> None:
    runs = sub.add_parser("runs", help="list stored runs")
    _store_options(runs)
    runs.add_argument(
        "--limit", type=_count, default=50, help="show the newest N runs (0: every run)"
    )
    runs.add_argument(
        "--json", action="store_true", help="print the rows as JSON (for scripts), no table"
    )
    runs.set_defaults(func=cmd_runs)

    show = sub.add_parser("show", help="write the figures of a stored run")
    _store_options(show)
    show.add_argument("uid", help="run uid (a unique prefix is enough)")
    show.add_argument("--version", help="results version (default: the latest)")
    show.add_argument("--out", type=Path, default=Path("figures"), help="figure folder")
    show.add_argument("--format", default="png", choices=["png", "pdf"], help="file format")
    show.set_defaults(func=cmd_show)


def _add_replay(sub) -> None:
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
    replay.set_defaults(func=cmd_replay)


def _add_report_sync(sub) -> None:
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
    report.set_defaults(func=cmd_report)

    sync = sub.add_parser("sync", help="write journaled runs that did not reach tiled")
    _store_options(sync)
    sync.set_defaults(func=cmd_sync)


def _add_analyze(sub) -> None:
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
        "--connect-timeout", type=_seconds, default=3.0, help="seconds to wait for the proxy"
    )
    analyze.add_argument(
        "--recover-last", type=_count, default=20,
        help="on start, analyse those of the newest N runs that have no results",
    )  # fmt: skip
    analyze.set_defaults(func=cmd_analyze)


def _add_serve(sub) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the persistent tiled server in the foreground; or stop the background one",
    )
    serve.add_argument(
        "--data-dir", type=Path, help=f"data directory (default: {_DATA_DIR_DEFAULT})"
    )
    serve.add_argument(
        "--host", default="127.0.0.1",
        help="address to listen on; another machine's clients need this host's address "
        "(0.0.0.0: every interface; keep the API key private)",
    )  # fmt: skip
    serve.add_argument("--port", type=_port_or_any, default=8000, help="TCP port (0: any free one)")
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
    serve.set_defaults(func=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    """The ``ssb-beamline`` parser; each sub-command's ``func`` runs it.

    Examples
    --------
    >>> args = build_parser().parse_args(["runs", "--limit", "5"])
    >>> args.limit, args.func.__name__
    (5, 'cmd_runs')
    """
    parser = argparse.ArgumentParser(
        prog="ssb-beamline",
        description="X-ray spectro-microscopy of solid-state battery cathodes: "
        "acquire, analyse live, store in tiled.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_demo, _add_beamline_tools, _add_runs_show, _add_replay, _add_report_sync,
                _add_analyze, _add_serve):  # fmt: skip
        add(sub)
    for command in sub.choices.values():
        command.formatter_class = DefaultsFormatter
    return parser
