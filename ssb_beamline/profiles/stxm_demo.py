"""``ssb-beamline demo --stxm``: a simulated Ni L3 STXM ratio scan, analysed live, scored, drawn."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from ssb_beamline.profiles.demo_checks import check_stxm_inputs
from ssb_beamline.profiles.stxm import simulated_stxm
from ssb_beamline.report.stxm import write_stxm_figures
from ssb_beamline.sim_devices.phantom import PhantomConfig
from ssb_beamline.storage import read_results

__all__ = ["run_stxm_demo"]

logger = logging.getLogger(__name__)


def run_stxm_demo(
    *,
    out_dir: Path,
    tiled_uri: str | None = None,
    data_dir: Path | None = None,
    size: int = 48,
    seed: int = 3,
    console: Console | None = None,
) -> int:
    """Run the STXM demo; returns the exit code (0 when the live analysis succeeded).

    ``size`` is the raster (``size`` x ``size`` pixels of 0.2 um); the phantom covers
    it with a margin at 0.1 um per pixel.

    Parameters
    ----------
    out_dir : pathlib.Path
        Folder for the figures (``<out_dir>/<uid[:8]>/``); must be writable.
    tiled_uri : str, optional
        A running tiled server's API address; None: ``$SSB_TILED_URI``, else a
        local server on ``data_dir``.
    data_dir : pathlib.Path, optional
        Data directory of the local server (default: the user's data folder).
    size : int, default 48
        Raster width and height, pixels of 0.2 um; 8 to 512 (``ValueError``
        otherwise).
    seed : int, default 3
        Phantom seed.
    console : rich.console.Console, optional
        Where progress and the score table are printed; None: a new console.

    Returns
    -------
    int
        Exit code: 0 when the live analysis succeeded, 1 otherwise.
    """
    console = console or Console(soft_wrap=True)
    check_stxm_inputs(out_dir=out_dir, size=size)
    side = max(64, 2 * size + 32)
    n_particles = max(3, side * side // 2400)
    phantom = PhantomConfig(shape=(side, side), pixel_size_um=0.1, seed=seed,
                            n_particles=n_particles, radius_range_um=(0.8, 2.0))  # fmt: skip
    with console.status("Starting tiled and the simulated STXM..."):
        session = simulated_stxm(tiled_uri=tiled_uri, data_dir=data_dir, phantom=phantom)
    with session:
        with console.status(f"STXM ratio scan, {size} x {size} pixels at 853 / 855.5 eV..."):
            (uid,) = session.run(session.ratio_scan(nx=size, ny=size, step_um=0.2))
        outcome = session.outcomes[-1]
        if not outcome.ok:
            console.print(f"[red]live STXM analysis failed:[/] {'; '.join(outcome.errors)}")
            return 1
        start = session.store.raw[uid].metadata["start"]
        x, y = np.array(start["raster"]["x_um"]), np.array(start["raster"]["y_um"])
        s = session.stxm
        true_ratio = s.truth_ratio_map(853.0, 855.5, x, y)
        true_fraction = s.truth_fraction_map(x, y)
        rel = np.abs(outcome.maps["ratio"] - true_ratio) / true_ratio
        frac = np.abs(outcome.maps["ni3_fraction"] - true_fraction)
        result = read_results(session.store.results, uid)
        files = write_stxm_figures(out_dir / uid[:8], result.arrays, result.tables,
                                   result.metadata, title=f"STXM run {uid[:8]}")  # fmt: skip
    table = Table(title=f"Simulated STXM ratio scan {uid[:8]} against the phantom")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("particles found", str(len(outcome.tables["particles"])))
    table.add_row("ratio map: median relative error", f"{np.nanmedian(rel):.4f}")
    table.add_row("Ni3+ fraction: median abs error", f"{np.nanmedian(frac):.4f}")
    table.add_row("results", outcome.stored_at or "-")
    console.print(table)
    for path in files:
        console.print(f"wrote {path}")
    return 0
