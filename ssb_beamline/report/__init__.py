"""Figures of stored or live results (matplotlib, written to files)."""

from .figures import write_xanes_figures

__all__ = ["write_xanes_figures"]
