"""Where drawn figures go: one file each (PNG/PDF), pages of one PDF, or kept for tests.

Every figure writer of this package hands its figures to a :class:`FigureSink`
instead of saving them itself, so that ``ssb-beamline report --format pdf`` can
put all the figures of a run into one multi-page PDF (matplotlib's
``PdfPages``) and the tests can inspect the matplotlib objects (axes labels,
colour bars, scale bars) rather than pixels.

Examples
--------
>>> import tempfile
>>> import matplotlib.pyplot as plt
>>> sink = FigureSink(tempfile.mkdtemp(), keep=True)
>>> fig, ax = plt.subplots()
>>> path = sink.save(fig, "empty", caption="nothing to show")
>>> path.name, list(sink.figures)
('empty.png', ['empty'])
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt

if TYPE_CHECKING:  # the PDF backend (and fontTools) only when a PDF is written
    from matplotlib.backends.backend_pdf import PdfPages

__all__ = ["FigureSink"]

logger = logging.getLogger(__name__)

#: Resolution of PNG files.
DPI = 110


def _add_caption(fig, caption: str) -> None:
    """``caption`` under the axes, wrapped to the figure's width, with room made for it."""
    import textwrap

    width_in, height_in = fig.get_size_inches()
    lines = textwrap.wrap(caption, width=max(40, int(width_in * 14)))
    height = (len(lines) * 11 + 6) / (height_in * 72)  # 8 pt italic lines, in figure units
    engine = fig.get_layout_engine()
    if engine is not None and hasattr(engine, "set") and "rect" in engine.get():
        engine.set(rect=(0, height, 1, 1 - height))
    else:
        fig.subplots_adjust(bottom=max(fig.subplotpars.bottom, height + 0.08))
    fig.text(0.5, 0.004, "\n".join(lines), ha="center", va="bottom", fontsize=8, style="italic")


class FigureSink:
    """Save figures as files ``<out_dir>/<name>.<fmt>``, or as pages of one PDF.

    Parameters
    ----------
    out_dir : path
        Folder (created if needed).
    fmt : {"png", "pdf"}
        File format of single-figure files.
    pdf : PdfPages, optional
        Append every figure as a page here instead of writing files.
    keep : bool
        Keep the figures open in :attr:`figures` (for tests), instead of closing them.
    """

    def __init__(
        self, out_dir: str | Path, fmt: str = "png", *, pdf: PdfPages | None = None,
        keep: bool = False,
    ) -> None:  # fmt: skip
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.fmt = fmt
        self.pdf = pdf
        self.keep = keep
        self.written: list[Path] = []
        self.figures: dict[str, Any] = {}

    def save(self, fig, name: str, *, caption: str = "") -> Path | None:
        """Save ``fig`` (with ``caption`` as one line under it); the file, or None for a page."""
        if caption:
            _add_caption(fig, caption)
        path: Path | None = None
        if self.pdf is not None:
            self.pdf.savefig(fig)
        else:
            path = self.out / f"{name}.{self.fmt}"
            fig.savefig(path, dpi=DPI)
            self.written.append(path)
            logger.info("wrote %s", path)
        if self.keep:
            self.figures[name] = fig
        else:
            plt.close(fig)
        return path
