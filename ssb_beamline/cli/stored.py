"""Commands on stored runs: ``runs``, ``show``, ``report``, ``replay``, ``sync``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ssb_beamline.cli._console import console, progress_bar
from ssb_beamline.cli.servers import ensure_background, server_for_reading

__all__ = ["cmd_replay", "cmd_report", "cmd_runs", "cmd_show", "cmd_sync"]


def cmd_runs(args: argparse.Namespace) -> int:
    """``runs``: the table of stored runs (``--json``: the rows for scripts).

    On the embedded default the data directory's SQLite catalog is read directly
    (no server needed, :mod:`ssb_beamline.storage.run_table_sqlite`); otherwise, or
    if that catalog cannot be read so, the server is asked.
    """
    import json

    from ssb_beamline.storage.run_table import RunListError, list_runs

    found = _runs_in_catalog(args)
    if found is not None:
        (rows, total), where = found
    else:
        with server_for_reading(args) as (url, api_key, where, journal_dir):
            try:
                rows, total = list_runs(url, api_key, limit=args.limit, journal_dir=journal_dir)
            except RunListError as exc:
                raise _refused(exc, "Listing the runs") from exc
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=1))
        return 0
    if not rows:
        console.print(f"No runs stored yet in {where}. Try `ssb-beamline demo`.")
        return 0
    from ssb_beamline.report.runs_table import render_runs

    console.print(render_runs(rows, total=total, where=where))
    return 0


def _runs_in_catalog(args: argparse.Namespace):
    """``((rows, total), label)`` from the data directory's SQLite catalog, or None."""
    import os

    from ssb_beamline.storage.run_table import list_runs_in_catalog
    from ssb_beamline.storage.server_config import TILED_URI_ENV, default_data_dir

    if args.tiled or os.environ.get(TILED_URI_ENV) or os.environ.get("SSB_CATALOG_URI"):
        return None  # a named server, or a PostgreSQL catalog: ask the server
    root = Path(args.data_dir or default_data_dir()).expanduser().resolve()
    found = list_runs_in_catalog(
        root / "catalog.db", limit=args.limit, journal_dir=root / "journal"
    )
    return None if found is None else (found, str(root))


def _refused(exc: ConnectionError, what: str) -> ConnectionError:
    """A failed request as a usage error: what failed and what to check."""
    status = getattr(exc, "status", None)
    fix = "Check the API key ($SSB_TILED_API_KEY)" if status in (401, 403) else (
        "See the server's log")  # fmt: skip
    return ConnectionError(f"{what} failed: {exc}. {fix}.")


def _write_stored_figures(args: argparse.Namespace, draw) -> int:
    """Figures of a stored run's results: ``draw(folder, result, title)`` returns the files.

    On the embedded default the results are read from the data directory's
    catalog and files without a server (:mod:`ssb_beamline.storage.result_files`);
    otherwise, or if they are not as that reader expects, over tiled's HTTP API
    without the tiled client (:mod:`ssb_beamline.storage.result_reader`; results
    holding more than arrays and tables through the client), while the server
    runs. Arrays and tables are read when drawn.
    """
    from ssb_beamline.profiles.demo_checks import check_output_folder

    check_output_folder(args.out)  # before connecting: a file there fails at the end
    files = _figures_from_files(args, draw)
    if files is None:
        files = _figures_over_http(args, draw)
    for path in files:
        console.print(f"wrote {path}")
    return 0


def _figures_from_files(args: argparse.Namespace, draw):
    """The figures drawn from the data directory's catalog and files; None: ask a server."""
    import logging
    import os

    from ssb_beamline.storage.result_files import ResultFilesError, open_result_files
    from ssb_beamline.storage.server_config import TILED_URI_ENV, default_data_dir

    if args.tiled or os.environ.get(TILED_URI_ENV) or os.environ.get("SSB_CATALOG_URI"):
        return None  # a named server, or a PostgreSQL catalog: ask the server
    root = Path(args.data_dir or default_data_dir()).expanduser().resolve()
    catalog = open_result_files(root)
    if catalog is None:
        return None
    try:
        try:
            uid = catalog.resolve_uid(args.uid)
            result = catalog.read_results(uid, args.version)
        finally:
            catalog.close()  # the arrays and tables are read from their files
        return draw(args.out / uid[:8], result, f"run {uid[:8]} ({result.version})")
    except ResultFilesError as exc:
        logging.getLogger(__name__).info("%s: reading over HTTP instead", exc)
        return None


def _figures_over_http(args: argparse.Namespace, draw):
    """The figures drawn from results read over tiled's HTTP API (the server runs)."""
    from ssb_beamline.storage.result_reader import read_results_http, resolve_uid_http
    from ssb_beamline.storage.tiled_http import TiledHttp, TiledHttpError

    with server_for_reading(args) as (url, api_key, _, _):
        api = TiledHttp(url, api_key)
        try:
            uid = resolve_uid_http(api, args.uid)
            try:
                result = read_results_http(api, uid, args.version)
            except NotImplementedError:
                from ssb_beamline.storage import open_store, read_results

                with open_store(url, api_key=api_key, data_dir=args.data_dir) as store:
                    result = read_results(store.results, uid, args.version)
            return draw(args.out / uid[:8], result, f"run {uid[:8]} ({result.version})")
        except TiledHttpError as exc:
            raise _refused(exc, f"Reading run {args.uid!r}") from exc


def _drawer(args: argparse.Namespace, figures):
    """Draw a stored result: STXM results their own way, others with ``figures``."""

    def draw(folder, result, title):
        from ssb_beamline.report.stxm import is_stxm_result, write_stxm_figures

        if is_stxm_result(result.metadata):
            return write_stxm_figures(folder, result.arrays, result.tables, result.metadata,
                                      title=title, fmt=args.format)  # fmt: skip
        return figures(folder, result, title, fmt=args.format)

    return draw


def cmd_show(args: argparse.Namespace) -> int:
    """``show``: the figures of a stored run's results."""
    from ssb_beamline.report.run_figures import show_figures

    return _write_stored_figures(args, _drawer(args, show_figures))


def cmd_report(args: argparse.Namespace) -> int:
    """``report``: particle statistics (XANES) or the tomography report of a stored run."""
    from ssb_beamline.report.run_figures import report_figures

    # XANES: particle statistics; tomography / 3D XANES / holotomography: slices,
    # particles, Figure-5 statistics; --format pdf: all of them in one PDF
    return _write_stored_figures(args, _drawer(args, report_figures))


def cmd_replay(args: argparse.Namespace) -> int:
    """``replay``: stored runs through the live analysis again (results: a new version)."""
    ensure_background(args)  # first: a busy data directory is reported before the imports
    from ssb_beamline.profiles.replay import replay_runs
    from ssb_beamline.storage import open_store
    from ssb_beamline.storage.replay import select_runs
    from ssb_beamline.storage.run_checks import check_speed

    check_speed(args.speed)  # every run's: refused before the batch, not in each row

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
                row = _replayed_row(uid, lambda uid=uid: replay_runs(
                    store, [uid], speed=args.speed, fill=args.fill, store_results=not args.dry_run
                )[0])  # fmt: skip
                failed += not row[1].startswith("ok")
                table.add_row(*row)
                progress.advance(task)
    console.print(table)
    return 1 if failed else 0


def _replayed_row(uid: str, replay) -> tuple[str, str, str, str]:
    """One run's row of the replay table; a run that cannot be replayed is a failed row.

    The batch goes on: a run aborted before its images, or one whose stored data the
    server cannot read, does not stop the runs after it.
    """
    import httpx

    try:
        outcome = replay()
    except (ValueError, KeyError) as exc:
        return uid[:8], f"[red]failed: {exc.args[0] if exc.args else exc}", "-", "-"
    except httpx.HTTPStatusError as exc:
        status, url = exc.response.status_code, exc.request.url
        return uid[:8], f"[red]failed: HTTP {status} from {url}. See the server's log", "-", "-"
    return (
        uid[:8],
        "ok" if outcome.ok else f"[red]failed: {'; '.join(outcome.errors)}",
        outcome.stored_at.rsplit("/", 1)[-1] if outcome.stored_at else "-",
        f"{outcome.final_seconds:.3f}" if outcome.final_seconds else "-",
    )


def cmd_sync(args: argparse.Namespace) -> int:
    """``sync``: write journaled runs and results that did not reach tiled."""
    from ssb_beamline.storage import open_store
    from ssb_beamline.storage.journal import DocumentJournal
    from ssb_beamline.storage.server_config import default_data_dir
    from ssb_beamline.storage.sync import sync_all

    ensure_background(args)
    # The journal lives in the data directory whichever server is used, so an empty
    # one is answered before any server starts (that took 8-33 s).  A data directory
    # that does not exist (or is not a directory) goes to open_store, which says why.
    data_dir = Path(args.data_dir or default_data_dir()).expanduser()
    if data_dir.is_dir() and not any(_journaled_entries(data_dir / "journal")):
        return _say_nothing_to_sync(data_dir / "journal")
    with open_store(args.tiled, data_dir=args.data_dir) as store:
        pending, results_pending = _journaled_entries(store.journal_dir)
        if not pending and not results_pending:
            return _say_nothing_to_sync(store.journal_dir)
        with console.status(
            f"Writing {len(pending)} run(s) and {len(results_pending)} result(s) to {store.uri}..."
        ):
            journal = DocumentJournal(store.journal_dir)
            report = sync_all(store.raw, journal, results=store.results)
    return _print_sync_report(report)


def _journaled_entries(journal_dir: Path) -> tuple[list, list]:
    """The pending runs and results of a journal folder (none if it does not exist)."""
    from ssb_beamline.storage.journal import DocumentJournal
    from ssb_beamline.storage.result_journal import ResultJournal

    if not journal_dir.is_dir():
        return [], []
    return DocumentJournal(journal_dir).pending(), ResultJournal(journal_dir / "results").pending()


def _say_nothing_to_sync(journal_dir: Path) -> int:
    """Tell the user the journal in ``journal_dir`` has nothing pending; exit status 0."""
    console.print(f"Nothing to sync: every journaled run and result in {journal_dir} is in tiled.")
    return 0


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
