"""The ``runs`` table on an 80-column terminal: whole words, nothing cut."""

from __future__ import annotations

import re

from rich.console import Console

from ssb_beamline.report.runs_table import render_runs
from ssb_beamline.storage.run_table import RunRow

SAMPLE = "NMC811 cathode particles, 30 wt% LPSCl, cycled 3x"


def test_an_80_column_table_wraps_samples_at_words_and_cuts_no_column():
    row = RunRow(
        uid="0123456789abcdef" * 2, scan_id=1234, plan="holotomo_scan", sample=SAMPLE,
        status="success", points_done=31, points_planned=31, time=1.7e9,
        results=(("v1", True), ("v2", False)),
    )  # fmt: skip
    console = Console(width=80, record=True, color_system=None)
    console.print(render_runs([row], total=1, where="/data"))
    lines = console.export_text().splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    cells = re.findall(r"\S+", " ".join(lines))
    for word in [*SAMPLE.split(), "holotomo_scan", "31/31", "(partial)", "results"]:
        assert word in cells, f"{word!r} was split or cut: {lines}"
