"""The ``ssb-beamline runs`` table (rich): one row per run, nothing cut.

Sample names wrap within their column instead of being cut; uids show their
first 8 characters (a unique prefix is enough for ``show``/``report``/``replay``);
``points`` is done/planned (``?`` while unknown: an open run, a plan that does not
say); a results version cut short during its upload is marked ``(partial)``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # rows come from the storage layer; drawing them needs no import of it
    from ssb_beamline.storage.run_table import RunRow

__all__ = ["STATUS_STYLES", "render_runs"]

#: Colour of each exit status.
STATUS_STYLES = {
    "success": "green",
    "abort": "yellow",
    "fail": "bold red",
    "open": "cyan",
    "syncing": "magenta",
}


def _points(row: RunRow) -> str:
    done = "?" if row.points_done is None else str(row.points_done)
    planned = "?" if row.points_planned is None else str(row.points_planned)
    return f"{done}/{planned}"


def render_runs(rows: Sequence[RunRow], *, total: int, where: str) -> Table:
    """A table of ``rows`` (oldest first) of the ``total`` runs stored in ``where``."""
    shown = f"newest {len(rows)} of {total}" if len(rows) < total else f"{len(rows)}"
    table = Table(title=f"Runs in {where} ({shown})", title_justify="left", box=None,
                  header_style="bold underline", padding=(0, 1, 0, 0), pad_edge=False)  # fmt: skip
    table.add_column("uid", no_wrap=True, min_width=8)
    table.add_column("scan", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True, min_width=7)
    table.add_column("plan", no_wrap=True, min_width=10)
    table.add_column("sample", overflow="fold", ratio=2, min_width=12)  # whole words at 80
    table.add_column("points", justify="right", no_wrap=True, min_width=7)
    table.add_column("start UTC", no_wrap=True, min_width=11)
    table.add_column("results", overflow="fold", min_width=9, ratio=1)
    for row in rows:
        table.add_row(
            row.uid[:8],
            "" if row.scan_id is None else str(row.scan_id),
            Text(row.status, style=STATUS_STYLES.get(row.status, "")),
            Text(row.plan),
            Text(row.sample),  # Text: a sample name is not rich markup
            _points(row),
            time.strftime("%m-%d %H:%M", time.gmtime(row.time)) if row.time else "-",
            Text(row.results_text(), style="yellow" if "partial" in row.results_text() else ""),
        )
    return table
