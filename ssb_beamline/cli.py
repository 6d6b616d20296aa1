"""The ``ssb-beamline`` command: demo, runs, show, serve."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

logger = logging.getLogger("ssb_beamline")
console = Console()


def _configure_logging(verbosity: int) -> None:
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


def _cmd_demo(args: argparse.Namespace) -> int:
    from ssb_beamline.demo import run_demo

    return run_demo(
        out_dir=args.out,
        tiled_uri=args.tiled,
        data_dir=args.data_dir,
        preset=args.preset,
        size=args.size,
        seed=args.seed,
        console=console,
    )


def _cmd_runs(args: argparse.Namespace) -> int:
    from ssb_beamline.storage import open_store, result_versions

    with open_store(args.tiled, data_dir=args.data_dir) as store:
        table = Table(title=f"Runs in {store.uri}")
        for column in ("uid", "scan", "plan", "sample", "points", "time (UTC)", "results"):
            table.add_column(column)
        runs = store.raw
        keys = list(runs)[-args.limit :]
        for uid in keys:
            start = runs[uid].metadata.get("start", {})
            sample = start.get("sample", {})
            table.add_row(
                uid[:8],
                str(start.get("scan_id", "")),
                str(start.get("plan_name", "")),
                str(sample.get("name", "") if isinstance(sample, dict) else sample)[:40],
                str(start.get("num_points", "")),
                time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start.get("time", 0))),
                ", ".join(result_versions(store.results, uid)) or "-",
            )
        console.print(table if keys else "No runs stored yet. Try `ssb-beamline demo`.")
    return 0


def _resolve_uid(runs, partial: str) -> str:
    if partial in runs:
        return partial
    matches = [uid for uid in runs if uid.startswith(partial)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise KeyError(
            f"No stored run has a uid starting with {partial!r}; see `ssb-beamline runs`."
        )
    raise KeyError(f"{partial!r} matches {len(matches)} runs; give more of the uid.")


def _cmd_show(args: argparse.Namespace) -> int:
    from ssb_beamline.reference_data import ni_k_edge_references
    from ssb_beamline.report import write_xanes_figures
    from ssb_beamline.storage import open_store, read_results

    with open_store(args.tiled, data_dir=args.data_dir) as store:
        uid = _resolve_uid(store.raw, args.uid)
        result = read_results(store.results, uid, args.version)
        files = write_xanes_figures(
            args.out / uid[:8],
            result.arrays,
            references=ni_k_edge_references(),
            title=f"run {uid[:8]} ({result.version})",
            fmt=args.format,
        )
    for path in files:
        console.print(f"wrote {path}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from ssb_beamline.storage.server import serve_forever
    from ssb_beamline.storage.server_config import default_data_dir

    data_dir = args.data_dir or default_data_dir()
    console.print(
        f"tiled server for {data_dir} on http://{args.host}:{args.port}/api/v1 "
        f"(API key in {data_dir / '.api_key'} or $SSB_TILED_API_KEY); Ctrl-C stops it."
    )
    serve_forever(data_dir, host=args.host, port=args.port)
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
    demo.set_defaults(func=_cmd_demo)

    runs = sub.add_parser("runs", help="list stored runs")
    _store_options(runs)
    runs.add_argument("--limit", type=int, default=50, help="show the newest N runs")
    runs.set_defaults(func=_cmd_runs)

    show = sub.add_parser("show", help="write the figures of a stored run")
    _store_options(show)
    show.add_argument("uid", help="run uid (a unique prefix is enough)")
    show.add_argument("--version", help="results version (default: the latest)")
    show.add_argument("--out", type=Path, default=Path("figures"), help="figure folder")
    show.add_argument("--format", default="png", choices=["png", "pdf"])
    show.set_defaults(func=_cmd_show)

    serve = sub.add_parser("serve", help="run the persistent tiled server in the foreground")
    serve.add_argument("--data-dir", type=Path, help="data directory")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=_cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``ssb-beamline``; returns the exit code."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    from ssb_beamline.storage import TiledUnavailableError

    try:
        return int(args.func(args) or 0)
    except (TiledUnavailableError, KeyError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        console.print(f"[bold red]error:[/] {message}")
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130


def progress_bar() -> Progress:
    """The progress bar the CLI shows during a scan."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    )


if __name__ == "__main__":
    sys.exit(main())
