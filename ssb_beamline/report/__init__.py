"""Figures of stored or live results (matplotlib, written to files), and the runs table.

The drawing modules import matplotlib; this package imports them only when used,
so that ``ssb-beamline runs`` (:mod:`.runs_table`) starts at once.
"""

from __future__ import annotations

from typing import Any

__all__ = ["write_xanes_figures"]


def __getattr__(name: str) -> Any:
    if name == "write_xanes_figures":
        from .figures import write_xanes_figures

        return write_xanes_figures
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
