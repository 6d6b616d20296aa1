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
from ssb_beamline.profiles.demo_checks import check_demo_inputs
from ssb_beamline.profiles.simulated import simulated_beamline
from ssb_beamline.progress import progress_bar
from ssb_beamline.reference_data import ni_k_edge_references
from ssb_beamline.report import write_xanes_figures
from ssb_beamline.sim_devices.phantom import PhantomConfig
from ssb_beamline.storage import read_results

__all__ = ["run_demo", "scan_and_report"]

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
    """Run the demo; returns the exit code (0 when the live analysis succeeded).

    Parameters
    ----------
    out_dir : Path
        Folder for the figures.
    tiled_uri : str, optional
        A running tiled server (default: the embedded server).
    data_dir : Path, optional
        Data directory of the embedded server.
    preset : str
        Energy-grid preset (:func:`~ssb_beamline.plans.ni_k_edge_grid`).
    size : int
        Phantom size, pixels.
    seed : int
        Phantom seed.
    console : rich.console.Console, optional
        Where the progress and the table are printed.
    """
    console = console or Console(soft_wrap=True)
    check_demo_inputs(out_dir=out_dir, size=size, preset=preset)
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

    Parameters
    ----------
    beamline : SimulatedBeamline
        A connected session.
    truth : object
        The phantom's truth (see above).
    out_dir : Path
        Folder for the figures.
    preset : str
        Energy-grid preset.
    size : int
        Phantom size, pixels (for the table).
    console : rich.console.Console
        Where the progress and the table are printed.
    title : str
        Title of the figures.
    """
    with beamline, progress_bar(console) as progress:
        uid, scan_seconds = _run_with_progress(beamline, preset, progress)
        outcome = beamline.outcomes[-1] if beamline.outcomes else None
        journaled = beamline.journaled_only()
        stored_ok = uid not in journaled and outcome is not None and bool(outcome.stored_at)
        if outcome is None or outcome.maps is None:
            errors = outcome.errors if outcome else ["no live analysis ran"]
            console.print(f"[bold red]Live analysis failed for run {uid}:[/] {errors}")
            console.print(_where_data_are(beamline, uid, journaled, results=False))
            return 1
        # the maps as stored in tiled, else as computed (they are journaled for `sync`)
        arrays = read_results(beamline.store.results, uid).arrays if stored_ok else outcome.maps
        files = write_xanes_figures(
            out_dir,
            arrays,
            references=ni_k_edge_references(),
            truth={"soc": truth.truth_soc(), "edge_energy": truth.truth_edge_energy_map()},
            title=f"Simulated Ni K-edge XANES, run {uid[:8]}",
            pixel_size_um=getattr(truth, "pixel_size_um", None),
        )
        if not outcome.ok or not stored_ok:
            if outcome.errors:
                console.print(f"[bold red]Run {uid} had errors:[/] {outcome.errors}")
            unpublished = not outcome.stored_at  # computed, but journaled, not in tiled
            console.print(_where_data_are(beamline, uid, journaled, results=unpublished))
            console.print("figures of the maps: " + ", ".join(map(str, files)))
            return 1
        run = beamline.store.raw[uid]
        counts = {s: len(run[s]["seq_num"].read()) for s in ("dark", "flat", "primary")}
        rows = _report_rows(uid, arrays, truth, counts, outcome, size=size,
                            scan_seconds=scan_seconds)  # fmt: skip
    table = Table(title=f"ssb-beamline demo: {title}")
    table.add_column("quantity")
    table.add_column("value", justify="right", overflow="fold")  # uids and paths whole
    for name, value in [*rows, ("figures", ", ".join(str(f) for f in files))]:
        table.add_row(name, value)
    console.print(table)
    return 0


def _run_with_progress(beamline: Any, preset: str, progress: Any) -> tuple[str, float]:
    """Run the XANES scan of ``preset``, showing the live analysis in ``progress``.

    Returns the run's uid and the scan's wall time, s.
    """
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
    return uid, scan_seconds


def _report_rows(uid: str, arrays: Any, truth: Any, counts: dict[str, int], outcome: Any, *,
                 size: int, scan_seconds: float) -> list[tuple[str, str]]:  # fmt: skip
    """The rows of the demo's table: the run, its timing and its scores against ``truth``."""
    truth_mask = truth.phantom.labels > 0
    edge_score = score_map(arrays["edge_energy"], truth.truth_edge_energy_map(), truth_mask)
    soc_score = score_map(arrays["soc"], truth.truth_soc(), truth_mask)
    energies = np.asarray(arrays["energies"])
    edge = arrays["edge_energy"][arrays["mask"].astype(bool)]
    edge = edge[np.isfinite(edge)]
    frame_counts = f"{counts['dark']} / {counts['flat']} / {counts['primary']}"
    edge_range = f"{np.percentile(edge, 1):.2f}-{np.percentile(edge, 99):.2f} eV"
    return [
        ("run uid", uid),
        ("frames (dark / flat / image)", frame_counts),
        ("energies", f"{energies.size} points, {energies[0]:.1f}-{energies[-1]:.1f} eV"),
        ("field of view", f"{size} x {size} px, {truth.pixel_size_um:.3f} µm/px"),
        ("scan time", f"{scan_seconds:.1f} s"),
        ("last frame -> final maps", f"{outcome.final_seconds:.3f} s"),
        ("live ingest per frame (median)", f"{1e3 * np.median(outcome.ingest_seconds):.1f} ms"),
        ("edge energy (1st-99th pct)", edge_range),
        ("edge-energy error, median |dE| (NMC)", f"{edge_score.median_abs_error:.3f} eV"),
        ("edge-energy bias, mean dE (NMC)", f"{edge_score.bias:+.3f} eV"),
        ("SOC bias, mean signed (NMC)", f"{soc_score.bias:+.4f}"),
        ("SOC RMSE against truth (NMC)", f"{soc_score.rmse:.4f}"),
        ("results in tiled", outcome.stored_at or "-"),
    ]  # fmt: skip


def _where_data_are(beamline, uid: str, journaled: list[str], *, results: bool) -> str:
    """Where run ``uid``'s raw data (and results) really are, and what to do about it."""
    journal = beamline.journal.directory if beamline.journal is not None else None
    if uid in journaled:
        where = (
            f"[bold yellow]The raw data of run {uid} are only journaled[/] in {journal}, "
            f"not (completely) in tiled at {beamline.store.uri}."
        )
    else:
        where = f"The raw data of run {uid} are stored in tiled; see `ssb-beamline runs`."
    if results:
        where += (
            " The maps did not reach tiled; they are journaled in "
            f"{journal / 'results' if journal else 'the results journal'}."
        )
    if uid in journaled or results:
        where += (
            " Run `ssb-beamline sync` (same --tiled / --data-dir) once the server is back "
            "and the key can write."
        )
    return where
