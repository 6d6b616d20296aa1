"""bluesky plans: XANES energy scans (tomography and holotomography to come)."""

from .energy_grids import NI_K_EDGE_PRESETS, edge_grid, ni_k_edge_grid, validate_energies
from .xanes import FocusModel, xanes_scan

__all__ = [
    "NI_K_EDGE_PRESETS",
    "FocusModel",
    "edge_grid",
    "ni_k_edge_grid",
    "validate_energies",
    "xanes_scan",
]
