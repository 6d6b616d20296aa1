"""The demo: a simulated Ni K-edge XANES scan, analysed live, stored, scored, drawn."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from ssb_beamline.analysis.scoring import score_map
from ssb_beamline.callbacks import LiveUpdate
from ssb_beamline.profiles.simulated import simulated_beamline
from ssb_beamline.reference_data import ni_k_edge_references
from ssb_beamline.report import write_xanes_figures
from ssb_beamline.sim_devices.phantom import PhantomConfig
from ssb_beamline.storage import read_results

logger = logging.getLogger(__name__)


def run_demo(
    *,
    out_dir: Path,
    tiled_uri: str | None = None,
    data_dir: Path | None = None,
    preset: str = "standard",
    size: int = 512,
    seed: int = 0,
    console: Console | None = None,
) -> int:
    """Run the demo; returns the exit code (0 when the live analysis succeeded)."""
    console = console or Console()
    phantom = PhantomConfig(shape=(size, size), seed=seed)
    with console.status("Starting tiled and the simulated TXM..."):
        beamline = simulated_beamline(tiled_uri=tiled_uri, data_dir=data_dir, phantom=phantom)
    return scan_and_report(
        beamline, beamline.txm, out_dir=out_dir, preset=preset, size=size, console=console,
        title="simulated TXM XANES scan",
    )  # fmt: skip


def scan_and_report(
    beamline: Any,
    truth: Any,
    *,
    out_dir: Path,
    preset: str,
    size: int,
    console: Console,
    title: str,
) -> int:
    """Run the XANES scan of ``beamline``, score its maps against ``truth``, print the table.

    ``truth`` has ``phantom``, ``truth_soc()``, ``truth_edge_energy_map()`` and
    ``pixel_size_um`` (a `SimTXM`, or the phantom of a simulated IOC).
    """
    from ssb_beamline.cli import progress_bar

    with beamline, progress_bar() as progress:
        plan = beamline.xanes(preset)
        task = progress.add_task("XANES scan", total=None, status="darks, flats")

        def on_update(update: LiveUpdate) -> None:
            edge = (
                f"edge ~ {update.edge_energy_median_ev:.2f} eV"
                if update.edge_energy_median_ev is not None
                else "edge: waiting for post-edge"
            )
            progress.update(
                task,
                completed=update.frames_done,
                total=update.frames_total,
                status=f"{update.energy_ev:.1f} eV | {edge}",
            )

        beamline.on_update = on_update
        t0 = time.perf_counter()
        (uid,) = beamline.run(plan)
        scan_seconds = time.perf_counter() - t0
        progress.update(task, status="done")
        outcome = beamline.outcomes[-1] if beamline.outcomes else None
        if outcome is None or not outcome.ok:
            errors = outcome.errors if outcome else ["no live analysis ran"]
            console.print(f"[bold red]Live analysis failed for run {uid}:[/] {errors}")
            console.print("The raw data are stored; see `ssb-beamline runs`.")
            return 1
        stored = read_results(beamline.store.results, uid)
        run = beamline.store.raw[uid]
        txm = truth
        truth_mask = txm.phantom.labels > 0
        edge_score = score_map(
            stored.arrays["edge_energy"], txm.truth_edge_energy_map(), truth_mask
        )
        soc_score = score_map(stored.arrays["soc"], txm.truth_soc(), truth_mask)
        counts = {s: len(run[s]["seq_num"].read()) for s in ("dark", "flat", "primary")}
        energies = np.asarray(stored.arrays["energies"])
        edge = stored.arrays["edge_energy"][stored.arrays["mask"].astype(bool)]
        edge = edge[np.isfinite(edge)]
        files = write_xanes_figures(
            out_dir,
            stored.arrays,
            references=ni_k_edge_references(),
            truth={"soc": txm.truth_soc(), "edge_energy": txm.truth_edge_energy_map()},
            title=f"Simulated Ni K-edge XANES, run {uid[:8]}",
        )
    table = Table(title=f"ssb-beamline demo: {title}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    frame_counts = f"{counts['dark']} / {counts['flat']} / {counts['primary']}"
    edge_range = f"{np.percentile(edge, 1):.2f}-{np.percentile(edge, 99):.2f} eV"
    rows = [
        ("run uid", uid),
        ("frames (dark / flat / image)", frame_counts),
        ("energies", f"{energies.size} points, {energies[0]:.1f}-{energies[-1]:.1f} eV"),
        ("field of view", f"{size} x {size} px, {txm.pixel_size_um:.3f} um/px"),
        ("scan time", f"{scan_seconds:.1f} s"),
        ("last frame -> final maps", f"{outcome.final_seconds:.3f} s"),
        ("live ingest per frame (median)", f"{1e3 * np.median(outcome.ingest_seconds):.1f} ms"),
        ("edge energy (1st-99th pct)", edge_range),
        ("edge-energy error, median |dE| (NMC)", f"{edge_score.median_abs_error:.3f} eV"),
        ("SOC RMSE against truth (NMC)", f"{soc_score.rmse:.4f}"),
        ("results in tiled", outcome.stored_at or "-"),
        ("figures", ", ".join(str(f) for f in files)),
    ]  # fmt: skip
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    return 0
