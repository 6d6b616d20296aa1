"""bluesky plans: XANES energy scans, tomography (step and fly), 3D XANES, holotomography, STXM."""

from .energy_grids import NI_K_EDGE_PRESETS, edge_grid, ni_k_edge_grid, validate_energies
from .focus_models import (
    focus_model_names,
    get_focus_model,
    register_focus_model,
    resolve_focus,
)
from .holotomo import holotomo_scan, validate_distances
from .stxm import NI_L3_PEAKS_EV, ni_l3_stack_grid, stxm_ratio_scan, stxm_stack_scan
from .tomo import AngleRange, tomo_scan, validate_angles
from .xanes import FocusModel, xanes_scan
from .xanes_tomo import xanes_tomo_scan

__all__ = [
    "NI_K_EDGE_PRESETS",
    "NI_L3_PEAKS_EV",
    "AngleRange",
    "FocusModel",
    "edge_grid",
    "focus_model_names",
    "get_focus_model",
    "holotomo_scan",
    "ni_k_edge_grid",
    "ni_l3_stack_grid",
    "register_focus_model",
    "resolve_focus",
    "stxm_ratio_scan",
    "stxm_stack_scan",
    "tomo_scan",
    "validate_angles",
    "validate_distances",
    "validate_energies",
    "xanes_scan",
    "xanes_tomo_scan",
]
