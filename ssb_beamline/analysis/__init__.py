"""XANES image analysis: pure numpy/scipy/scikit-image functions over whole arrays.

Typical live use::

    from ssb_beamline.analysis import absorbance, analyse_xanes_stack
    mu = absorbance(frames, dark, flat).values          # per frame
    maps = analyse_xanes_stack(mu_stack, energies, ni_k_edge_references())
"""

# --- XANES maps (absorbance, normalisation, edge, LCF, SOC, masks, alignment) ---
from ._jit import warm_up as warm_up_kernels
from ._maps import normalized_stack
from .absorbance import (
    AbsorbanceResult,
    CountTable,
    OpenBeam,
    absorbance,
    absorbance_with_open_beam,
    open_beam,
)
from .align import AlignResult, align_stack, registration_features
from .edge import WhiteLineResult, edge_energy_map, white_line_map
from .edge_fit import EdgeFit, NoEdgeContrastError, build_edge_fit, find_e0
from .fly_angles import angles_from_monitor
from .joint_sums import JointFitAccumulator, JointFitSums
from .lcf import LCFResult, lcf_map, reference_matrix
from .masks import (
    EdgeJumpContrast,
    RoiSpectra,
    auto_edge_threshold,
    edge_jump_contrast,
    edge_jump_mask,
    otsu_mask,
    otsu_threshold,
    roi_spectra,
)
from .mixture import GaussianComponents, histogram_components
from .normalize import NormalizedStack, normalize_stack
from .pipeline import XanesMaps, analyse_xanes_stack
from .ratio import ratio_map
from .soc import SocCalibration, SocResult, soc_map

__all__ = [
    "AbsorbanceResult",
    "AlignResult",
    "CountTable",
    "EdgeFit",
    "EdgeJumpContrast",
    "GaussianComponents",
    "JointFitAccumulator",
    "JointFitSums",
    "LCFResult",
    "NoEdgeContrastError",
    "NormalizedStack",
    "OpenBeam",
    "RoiSpectra",
    "SocCalibration",
    "SocResult",
    "WhiteLineResult",
    "XanesMaps",
    "absorbance",
    "absorbance_with_open_beam",
    "align_stack",
    "analyse_xanes_stack",
    "angles_from_monitor",
    "auto_edge_threshold",
    "build_edge_fit",
    "edge_energy_map",
    "edge_jump_contrast",
    "edge_jump_mask",
    "find_e0",
    "histogram_components",
    "lcf_map",
    "normalize_stack",
    "normalized_stack",
    "open_beam",
    "otsu_mask",
    "otsu_threshold",
    "ratio_map",
    "reference_matrix",
    "registration_features",
    "roi_spectra",
    "soc_map",
    "warm_up_kernels",
    "white_line_map",
]
# --- end XANES maps block ---

# --- particle statistics & diffusion-distance model (particles/phases/diffusion) ---
# Owned by the particle-analysis engineer (binning helpers live in impedance.py and
# are re-exported by diffusion.py).
from .diffusion import (
    DiffusionMaps,
    DistanceMap2D,
    diffusion_distance_maps,
    distance_map_2d,
    impedance_bins,
)
from .particles import particle_table, segment_particles, size_statistics
from .particles3d import holotomo_statistics, segment_particles_3d

# --- tomography and phase retrieval ---
from .phase_retrieval import (
    ctf_phase,
    delta_from_electron_density,
    electron_density_from_delta,
    paganin_phase,
    paganin_thickness,
    phase_to_delta_projection,
    wavelength_m,
)
from .phases import Phase, segment_phases
from .rotation_center import find_rotation_center, opposed_pair_center
from .tomography import (
    check_angles,
    flat_field_projections,
    reconstruct_fbp,
    reconstruct_sirt,
)

__all__ += [
    "DiffusionMaps",
    "DistanceMap2D",
    "Phase",
    "diffusion_distance_maps",
    "distance_map_2d",
    "holotomo_statistics",
    "impedance_bins",
    "particle_table",
    "segment_particles",
    "segment_particles_3d",
    "segment_phases",
    "size_statistics",
]
# --- end particle statistics block ---

__all__ += [
    "check_angles",
    "ctf_phase",
    "delta_from_electron_density",
    "electron_density_from_delta",
    "find_rotation_center",
    "flat_field_projections",
    "opposed_pair_center",
    "paganin_phase",
    "paganin_thickness",
    "phase_to_delta_projection",
    "reconstruct_fbp",
    "reconstruct_sirt",
    "wavelength_m",
]
