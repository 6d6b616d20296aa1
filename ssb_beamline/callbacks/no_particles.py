"""The check that the end-of-run maps hold particles before they are stored as results."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["NO_PARTICLES_FIX", "require_particles"]

#: What to do about a field without particles, in the message of ``require_particles``.
NO_PARTICLES_FIX = (
    "Check that the sample is in the beam at the scanned position and out of it for the "
    "flats; for the simulated demo use a larger --size or another --seed."
)


def require_particles(
    maps: Any, mask: np.ndarray, *, where: str = "field of view", fix: str = NO_PARTICLES_FIX
) -> None:
    """Raise a ``ValueError`` naming the problem and its fix when ``mask`` selects no pixel.

    Maps with an empty mask are all NaN: nothing is worth storing as a result.  The
    message says whether the field holds no particles (no edge-step population
    clearly above the noise, :func:`~ssb_beamline.analysis.edge_jump_contrast`) or
    whether the pixels were lost otherwise (invalid in some frame, threshold).

    Parameters
    ----------
    maps : XanesMaps
        The end-of-run maps of :func:`~ssb_beamline.analysis.analyse_xanes_stack`.
    mask : numpy.ndarray of bool
        The mask to publish (``result_arrays(maps, valid)[0]["mask"]``).
    where, fix : str
        Where the particles were looked for, and what to check, in the message.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> noise = np.random.default_rng(0).normal(0.0, 0.01, (16, 16))
    >>> maps = SimpleNamespace(edge_step=noise, mask=np.zeros((16, 16), bool),
    ...                        mask_threshold=float("inf"))
    >>> require_particles(maps, maps.mask)
    Traceback (most recent call last):
    ...
    ValueError: no Ni-containing particles in the field of view: the edge jump nowhere ...
    """
    if mask.any():
        return
    from ssb_beamline.analysis.masks import EDGE_JUMP_SNR_MIN, edge_jump_contrast

    step = np.asarray(maps.edge_step)
    c = edge_jump_contrast(step) if np.isfinite(step).any() else None
    if c is not None and not c.has_particles:
        raise ValueError(
            f"no Ni-containing particles in the {where}: the edge jump nowhere clearly "
            f"exceeds the noise (max {c.max_step:.3g} vs noise {c.noise:.3g} absorbance; "
            f"the steps above Otsu's threshold average {c.snr:.1f} x the noise, particles "
            f"need {EDGE_JUMP_SNR_MIN:g} x). {fix}"
        )
    n_maps = int(np.count_nonzero(maps.mask))
    raise ValueError(
        f"the particle mask is empty: {n_maps} of {mask.size} pixels have an edge step above "
        f"the threshold {float(maps.mask_threshold):.3g}, none of them valid in every frame. "
        "Check the flats and the detector (saturated or dead pixels), or pass a mask."
    )
