"""Energy grids for XANES scans across an absorption edge.

A XANES grid is coarse below the edge (only the pre-edge line is needed there), fine
through the edge (where the chemistry is) and coarser above it (the post-edge
normalisation). :func:`ni_k_edge_grid` builds the named Ni K-edge presets.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = [
    "NI_K_EDGE_PRESETS",
    "NI_K_EDGE_REGIONS_EV",
    "edge_grid",
    "ni_k_edge_grid",
    "validate_energies",
]

#: Ni K-edge grid regions (eV): scan start, start and end of the fine edge region, scan end.
NI_K_EDGE_REGIONS_EV = (8300.0, 8328.0, 8360.0, 8450.0)

#: Presets: name -> points in (pre-edge, edge, post-edge).
NI_K_EDGE_PRESETS: dict[str, tuple[int, int, int]] = {
    "quick": (5, 11, 5),  # 21 points, 3.2 eV through the edge
    "standard": (8, 25, 8),  # 41 points, 1.33 eV
    "fine": (10, 41, 12),  # 63 points, 0.8 eV
    "full": (15, 65, 21),  # 101 points, 0.5 eV
}

PresetName = Literal["quick", "standard", "fine", "full"]


def edge_grid(
    start_ev: float,
    edge_start_ev: float,
    edge_stop_ev: float,
    stop_ev: float,
    *,
    n_pre: int,
    n_edge: int,
    n_post: int,
) -> np.ndarray:
    """Build a three-region energy grid (eV), strictly increasing.

    ``n_pre`` points evenly in ``[start, edge_start)``, ``n_edge`` in
    ``[edge_start, edge_stop]`` and ``n_post`` in ``(edge_stop, stop]``.

    Parameters
    ----------
    start_ev, stop_ev : float
        First and last energy of the grid, eV.
    edge_start_ev, edge_stop_ev : float
        The dense region across the edge, eV.
    n_pre, n_edge, n_post : int
        Points below, across and above the edge (at least 2, 3 and 2).

    Examples
    --------
    >>> edge_grid(8300, 8330, 8350, 8400, n_pre=3, n_edge=5, n_post=2).tolist()
    [8300.0, 8310.0, 8320.0, 8330.0, 8335.0, 8340.0, 8345.0, 8350.0, 8375.0, 8400.0]
    """
    if not start_ev < edge_start_ev < edge_stop_ev < stop_ev:
        raise ValueError(
            "Grid regions must satisfy start < edge_start < edge_stop < stop; got "
            f"{start_ev}, {edge_start_ev}, {edge_stop_ev}, {stop_ev} eV."
        )
    if n_pre < 2 or n_edge < 3 or n_post < 2:
        raise ValueError(
            f"Need at least 2 pre-edge, 3 edge and 2 post-edge points (got {n_pre}, "
            f"{n_edge}, {n_post}): the normalisation fits a line below and above the edge."
        )
    pre = np.linspace(start_ev, edge_start_ev, n_pre, endpoint=False)
    edge = np.linspace(edge_start_ev, edge_stop_ev, n_edge)
    post = np.linspace(edge_stop_ev, stop_ev, n_post + 1)[1:]
    return np.round(np.concatenate([pre, edge, post]), 3)


def ni_k_edge_grid(preset: PresetName | str = "standard") -> np.ndarray:
    """The Ni K-edge grid of a named preset (8300-8450 eV).

    Presets: ``quick`` (21 points), ``standard`` (41), ``fine`` (63), ``full`` (101).

    Parameters
    ----------
    preset : {"quick", "standard", "fine", "full"}
        Name of the preset.

    Examples
    --------
    >>> [len(ni_k_edge_grid(p)) for p in ("quick", "standard", "fine", "full")]
    [21, 41, 63, 101]
    """
    try:
        n_pre, n_edge, n_post = NI_K_EDGE_PRESETS[preset]
    except KeyError:
        raise ValueError(
            f"Unknown energy-grid preset {preset!r}; choose one of {sorted(NI_K_EDGE_PRESETS)}."
        ) from None
    return edge_grid(*NI_K_EDGE_REGIONS_EV, n_pre=n_pre, n_edge=n_edge, n_post=n_post)


def validate_energies(energies) -> np.ndarray:
    """Return ``energies`` as a float array, or raise if it cannot be scanned.

    Parameters
    ----------
    energies : sequence of float
        Energies to scan, eV.

    Raises
    ------
    ValueError
        If the list is empty, not one-dimensional, not finite, not positive, or not
        strictly increasing (duplicates included); the message names the offending
        entries.
    """
    try:
        arr = np.asarray(energies, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"Energies must be a flat list of numbers (eV), not {energies!r:.80}."
        ) from None
    if arr.ndim > 1:
        raise ValueError(
            f"Energies must be a flat list of numbers (eV); got a {arr.ndim}-D array of "
            f"shape {arr.shape}. Pass one energy per point, e.g. ni_k_edge_grid('standard')."
        )
    arr = arr.ravel() if arr.size else np.array([])
    if arr.size == 0:
        raise ValueError(
            "The energy list is empty. Pass energies in eV, e.g. ni_k_edge_grid('standard')."
        )
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr)).tolist()
        raise ValueError(f"Energies must be finite numbers (eV); entries {bad} are not.")
    if np.any(arr <= 0):
        bad = np.flatnonzero(arr <= 0).tolist()
        raise ValueError(
            f"Energies are photon energies in eV and must be positive; entries {bad} "
            f"({arr[bad[0]]} eV first) are not. The Ni K edge is at about 8333 eV."
        )
    steps = np.diff(arr)
    if np.any(steps == 0):
        i = int(np.flatnonzero(steps == 0)[0])
        raise ValueError(
            f"Energy {arr[i]} eV is listed twice (indices {i} and {i + 1}). "
            "Remove the duplicate: each energy is measured once."
        )
    if np.any(steps < 0):
        i = int(np.flatnonzero(steps < 0)[0])
        raise ValueError(
            f"Energies must be strictly increasing; they go down at index {i + 1} "
            f"({arr[i]} -> {arr[i + 1]} eV). Sort them (np.sort) before scanning."
        )
    return arr
