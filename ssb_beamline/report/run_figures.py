"""The figures of one stored run, for every kind of run: ``show``, ``report``, the PDF.

XANES (2-D) runs: ``show`` draws the maps and spectra, ``report`` the particle
statistics. Tomography and 3D XANES runs: orthogonal slices for both.
Holotomography: ``show`` the slices and particle projections, ``report`` those and
the statistics. 3D network models (the network version of a 3D XANES run): the
network figure for both. ``report --format pdf`` writes all of a run's figures, after a
title page, into one multi-page PDF to attach to a logbook.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .pages import FigureSink

__all__ = ["pixel_size_of_result", "report_figures", "show_figures"]

logger = logging.getLogger(__name__)


def pixel_size_of_result(result: Any) -> float | None:
    """Pixel size (µm) of a stored result: its ``x`` coordinate, else its metadata."""
    x = getattr(result, "coords", {}).get("x")
    if x is not None and np.size(x) > 1:
        return float(abs(np.asarray(x)[1] - np.asarray(x)[0]))
    md = result.metadata
    for source in (md, md.get("particles") or {}, md.get("parameters") or {}):
        if source.get("pixel_size_um"):
            return float(source["pixel_size_um"])
    return None


def _kind(result: Any) -> str:
    from .network3d import is_network3d_result
    from .tomo import is_tomography_result

    if is_network3d_result(result.metadata):
        return "network3d"
    if "electron_density" in result.arrays:
        return "holotomography"
    if is_tomography_result(result.arrays, result.metadata):
        return "tomography"
    return "xanes"


def _draw(result: Any, sink: FigureSink, title: str, *, report: bool) -> None:
    kind = _kind(result)
    if kind == "network3d":  # the 3D conductive-network model of a 3D XANES run
        from .network3d import write_network3d_result_figures

        write_network3d_result_figures(sink.out, result, title=title, sink=sink)
        return
    px = pixel_size_of_result(result)
    if kind != "xanes":
        from .tomo import write_tomo_figures

        metadata = dict(result.metadata)
        if px is not None:
            metadata.setdefault("pixel_size_um", px)
        only = None if report or kind == "tomography" else ("holo_slices", "holo_particles")
        write_tomo_figures(sink.out, result.arrays, result.tables, metadata, title=title,
                           sink=sink, only=only)  # fmt: skip
        return
    if not report or sink.pdf is not None:
        from ssb_beamline.reference_data import ni_k_edge_references

        from .figures import write_xanes_figures

        write_xanes_figures(sink.out, result.arrays, references=ni_k_edge_references(),
                            title=title, pixel_size_um=px, sink=sink)  # fmt: skip
    if report:
        from .particles import write_particle_figures

        write_particle_figures(sink.out, result.arrays, result.tables, result.metadata,
                               title=title, sink=sink, pixel_size_um=px)  # fmt: skip


def show_figures(folder: str | Path, result: Any, title: str, fmt: str = "png") -> list[Path]:
    """The maps of a stored result (any kind of run), one file each; the files."""
    sink = FigureSink(folder, fmt)
    _draw(result, sink, title, report=False)
    return sink.written


def report_figures(folder: str | Path, result: Any, title: str, fmt: str = "png") -> list[Path]:
    """A stored result's report: files (PNG/PDF each), or with ``fmt="pdf"`` one PDF."""
    if fmt != "pdf":
        sink = FigureSink(folder, fmt)
        _draw(result, sink, title, report=True)
        return sink.written
    from matplotlib.backends.backend_pdf import PdfPages

    path = Path(folder) / f"report_{result.run_uid[:8]}_{result.version}.pdf"
    path.parent.mkdir(parents=True, exist_ok=True)
    with PdfPages(path) as pdf:
        info = pdf.infodict()
        info["Title"] = f"ssb_beamline report of run {result.run_uid} ({result.version})"
        _title_page(pdf, result, _kind(result))
        _draw(result, FigureSink(folder, "pdf", pdf=pdf), title, report=True)
    logger.info("wrote %s", path)
    return [path]


def _title_page(pdf, result: Any, kind: str) -> None:
    import matplotlib.pyplot as plt

    md: Mapping[str, Any] = result.metadata
    lines = [
        f"Run {result.run_uid}",
        f"results version {result.version} ({kind})",
        f"computed {md.get('created', '?')} by {md.get('software', '?')}",
        f"source: {md.get('source', '?')}",
        f"pixel size: {pixel_size_of_result(result) or '?'} µm",
        f"arrays: {', '.join(sorted(result.arrays))}",
        f"tables: {', '.join(sorted(result.tables)) or '-'}",
        f"report written {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
    ]
    fig = plt.figure(figsize=(8.27, 11.69))
    fig.text(0.08, 0.92, "ssb_beamline run report", fontsize=18, weight="bold")
    for i, line in enumerate(lines):
        fig.text(0.08, 0.86 - 0.03 * i, line, fontsize=10, family="monospace", wrap=True)
    pdf.savefig(fig)
    plt.close(fig)
