"""2D from 3D: the phase map of a 2D XANES run taken from a registered tomography run.

Carbon cannot be seen in 2D Ni K-edge absorption, so the 2D network model lacks
its e- distances.  A tomography run of the same field of view (registered: same
pixel grid, the 2D image being the projection at rotation angle 0) resolves the
phases in 3D (:func:`~ssb_beamline.analysis.segmentation3d.segment_phases_3d`,
stored as ``phases`` by :class:`~ssb_beamline.callbacks.network3d_live.Network3DLive`).
:func:`registered_phase_source` turns that volume into the ``phase_source`` of
:class:`~ssb_beamline.callbacks.particles_live.ParticleStatistics`:

* ``mode="projection"`` (default; a TXM image is a projection): along the beam
  (``axis``, the volume's Y at angle 0), a pixel is NMC if its ray crosses NMC
  (what the 2D edge-step map sees), else the phase, SSE or carbon, with more
  voxels on the ray (SSE on a tie), else pore;
* ``mode="slice"``: the volume's slice ``index`` across the beam (default the
  middle), for thin sections.

The mode, axis and index are stated in the run's metadata (``phases`` entry).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from ssb_beamline.analysis.phases import Phase
from ssb_beamline.analysis.segmentation3d import PhaseVolume

from .xanes_results import MapContext

__all__ = ["project_phases", "registered_phase_source"]

logger = logging.getLogger(__name__)


def project_phases(
    phases: np.ndarray, *, mode: Literal["projection", "slice"] = "projection", axis: int = 1,
    index: int | None = None,
) -> np.ndarray:  # fmt: skip
    """A 2D phase map from a 3D one (see module docstring).

    Parameters
    ----------
    phases : numpy.ndarray, shape (Z, Y, X)
        Phase codes per voxel (0 void, 1 NMC, 2 SSE, 3 carbon); another number of
        dimensions raises ``ValueError``.
    mode : {"projection", "slice"}, default "projection"
        ``"projection"``: along ``axis`` a pixel is NMC if its ray crosses NMC, else the
        more frequent of SSE and carbon (SSE on a tie), else pore; ``"slice"``: the
        volume's slice ``index`` across ``axis`` (thin sections). Another value raises
        ``ValueError`` (keyword only).
    axis : int, default 1
        Volume axis along the beam (1: Y, the beam direction at rotation angle 0).
    index : int, optional
        Slice index along ``axis`` for ``mode="slice"``; None: the middle slice. Out
        of range raises ``ValueError``.

    Returns
    -------
    numpy.ndarray of uint8
        The 2D phase map (the two axes other than ``axis``).

    Examples
    --------
    >>> v = np.zeros((2, 3, 2), np.uint8); v[0, 1, 0] = 1; v[1, 1:, 1] = 3; v[:, 0, :] = 2
    >>> project_phases(v).tolist(), project_phases(v, mode="slice", index=2).tolist()
    ([[1, 2], [2, 3]], [[0, 0], [0, 3]])
    """
    vol = np.asarray(phases)
    if vol.ndim != 3:
        raise ValueError(f"phases must be a (Z, Y, X) volume, got shape {vol.shape}")
    if mode == "slice":
        k = vol.shape[axis] // 2 if index is None else int(index)
        if not 0 <= k < vol.shape[axis]:
            raise ValueError(f"slice index {k} outside 0..{vol.shape[axis] - 1} along axis {axis}")
        return np.take(vol, k, axis=axis).astype(np.uint8)
    if mode != "projection":
        raise ValueError(f"mode={mode!r}; use 'projection' or 'slice'")
    n_sse = (vol == Phase.SSE).sum(axis=axis)
    n_carbon = (vol == Phase.CARBON).sum(axis=axis)
    out = np.full(n_sse.shape, Phase.VOID, np.uint8)
    out[(n_sse > 0) & (n_sse >= n_carbon)] = Phase.SSE
    out[n_carbon > n_sse] = Phase.CARBON
    out[(vol == Phase.NMC).any(axis=axis)] = Phase.NMC
    return out


def registered_phase_source(
    volume: PhaseVolume, *, mode: Literal["projection", "slice"] = "projection", axis: int = 1,
    index: int | None = None, tomo_uid: str | None = None,
) -> Callable[[MapContext], np.ndarray]:  # fmt: skip
    """``phase_source`` for ``ParticleStatistics`` from a registered 3D phase volume.

    The returned callable checks the run's pixel size against the volume's voxel
    size (a clear ``ValueError`` otherwise) and records ``mode``, ``axis``,
    ``index`` and ``tomo_uid`` in ``source.info`` (also logged).

    Parameters
    ----------
    volume : PhaseVolume
        The segmented phases of the registered tomography run and their voxel size
        (um), which must equal the 2D run's pixel size (within 0.1 %).
    mode : {"projection", "slice"}, default "projection"
        ``"projection"``: along ``axis`` a pixel is NMC if its ray crosses NMC, else the
        more frequent of SSE and carbon (SSE on a tie), else pore; ``"slice"``: the
        volume's slice ``index`` across ``axis`` (thin sections). Another value raises
        ``ValueError`` (keyword only).
    axis : int, default 1
        Volume axis along the beam (1: Y, the beam direction at rotation angle 0).
    index : int, optional
        Slice index along ``axis`` for ``mode="slice"``; None: the middle slice. Out
        of range raises ``ValueError``.
    tomo_uid : str, optional
        Uid of the tomography run the volume came from, recorded in the metadata.

    Returns
    -------
    callable
        ``source(context) -> phase map`` for the ``phase_source`` of
        ``ParticleStatistics``; it raises ``ValueError`` for a run whose pixel size
        differs from the voxel size.
    """
    plane = project_phases(volume.phases, mode=mode, axis=axis, index=index)
    info: dict[str, Any] = {"registered_from": tomo_uid, "mode": mode, "axis": axis,
                            "index": index, "voxel_size_um": volume.voxel_size_um}  # fmt: skip

    def source(context: MapContext) -> np.ndarray:
        px = context.start.get("pixel_size_um")
        if px is not None and not np.isclose(float(px), volume.voxel_size_um, rtol=1e-3):
            raise ValueError(
                f"the registered phase volume has {volume.voxel_size_um} um voxels but run "
                f"{context.run_uid} {px} um pixels; register a tomography run of this "
                "field of view at the same magnification"
            )
        logger.info("run %s: phase map from the 3D phases (%s)", context.run_uid, info)
        return plane

    source.info = info  # type: ignore[attr-defined]
    return source
