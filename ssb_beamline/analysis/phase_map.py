"""Phase map of a TXM XANES run from its absorbance frames (used by :mod:`.particle_statistics`).

NMC is where the particles are (segmented on the Ni edge step). The other pixels
are split by their **below-edge** absorbance (mean of the frames more than 10 eV
below the Ni K-edge, median-filtered 3 x 3): Otsu separates void from the solid
electrolyte (Li6PS5Cl, about 0.012 /um at 8.3 keV). A class is kept only when its
contrast to void exceeds ``MIN_CONTRAST_SIGMA`` times the noise of the filtered
image (estimated from neighbouring-pixel differences); otherwise the phase is
reported as not resolved.

Carbon (about 0.0008 /um at 8.3 keV: a 0.5 um fibre absorbs 4e-4) is not
resolved by absorption contrast at the Ni K-edge with TXM counting statistics, so
by default it is reported as unavailable; pass a phase map from another
measurement (nano-tomography: morphology, phase contrast) to
:class:`~ssb_beamline.callbacks.particles_live.ParticleStatistics` (``phase_source``) for the e- and
combined-impedance maps. ``carbon=True`` tries a three-class split (void < carbon
< SSE) with the same contrast test.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_multiotsu, threshold_otsu

from ssb_beamline.reference_data import NI_K_EDGE_EV

from .phases import Phase

__all__ = ["MIN_CONTRAST_SIGMA", "PRE_EDGE_OFFSET_EV", "phases_from_absorbance"]

logger = logging.getLogger(__name__)

#: Frames below ``NI_K_EDGE_EV - PRE_EDGE_OFFSET_EV`` make the below-edge image.
PRE_EDGE_OFFSET_EV = 10.0
#: A phase is resolved when its median contrast to void exceeds this many sigma.
MIN_CONTRAST_SIGMA = 5.0

_NO_CARBON = (
    "carbon is not resolved by absorption contrast at the Ni K-edge (mu about 0.0008/um); "
    "give ParticleStatistics a phase_source (e.g. a nano-tomography phase map)"
)


def _noise_sigma(image: np.ndarray, where: np.ndarray) -> float:
    """Per-pixel noise from horizontal neighbour differences (robust MAD)."""
    diff = image[:, 1:] - image[:, :-1]
    ok = where[:, 1:] & where[:, :-1] & np.isfinite(diff)
    if ok.sum() < 10:
        return float("nan")
    d = diff[ok]
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0))


def phases_from_absorbance(
    absorbance: np.ndarray,
    energies: np.ndarray,
    labels: np.ndarray,
    *,
    carbon: bool = False,
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Phase map (``uint8`` Phase codes) and how it was made (with reasons).

    Parameters
    ----------
    absorbance : (N, H, W) array
        Absorbance frames of the run.
    energies : (N,) array
        Their energies, eV.
    labels : (H, W) int array
        NMC particle labels (0 = not NMC).
    carbon : bool
        Try to resolve carbon too.

    Returns
    -------
    phases, info
        ``phases`` is None when no frame lies below the edge; ``info`` holds the
        ``source``, thresholds, the noise and ``unresolved`` phases with reasons.
    """
    energies = np.asarray(energies, float)
    pre = energies < NI_K_EDGE_EV - PRE_EDGE_OFFSET_EV
    info: dict[str, Any] = {"source": "absorbance", "below_edge_frames": int(pre.sum())}
    if not pre.any():
        info["reason"] = (
            f"no frame below {NI_K_EDGE_EV - PRE_EDGE_OFFSET_EV:.0f} eV to tell the "
            "electrolyte from void"
        )
        return None, info
    below = np.nanmean(np.asarray(absorbance)[pre], axis=0)
    nmc = labels > 0
    other = ~ndi.binary_dilation(nmc, iterations=2) & np.isfinite(below)
    phases = np.full(labels.shape, Phase.VOID, np.uint8)
    phases[nmc] = Phase.NMC
    unresolved: dict[str, str] = {}
    info["unresolved"] = unresolved
    if not carbon:
        unresolved["carbon"] = _NO_CARBON
    if other.sum() < 16:
        unresolved["sse"] = "too few pixels outside the particles"
        return phases, info
    smooth = ndi.median_filter(np.where(np.isfinite(below), below, 0.0), size=3)
    sigma = _noise_sigma(smooth, other)
    info["noise_absorbance"] = sigma
    values = smooth[other]
    classes = [Phase.VOID, Phase.CARBON, Phase.SSE] if carbon else [Phase.VOID, Phase.SSE]
    try:
        if len(classes) == 3:
            t = np.asarray(threshold_multiotsu(values, classes=3))
        else:
            t = np.array([threshold_otsu(values)])
    except ValueError as exc:  # constant image
        unresolved["sse"] = f"the below-edge absorbance cannot be split: {exc}"
        return phases, info
    info["thresholds_absorbance"] = t
    codes = np.asarray(classes, np.uint8)[np.digitize(smooth, t)]
    k = np.digitize(values, t)
    medians = [
        float(np.median(values[k == i])) if np.any(k == i) else np.nan for i in range(t.size + 1)
    ]
    for i, phase in enumerate(classes[1:], start=1):
        contrast = medians[i] - medians[0]
        if not contrast > MIN_CONTRAST_SIGMA * sigma:
            unresolved[phase.name.lower()] = (
                f"{phase.name} class contrast {contrast:.2g} is below "
                f"{MIN_CONTRAST_SIGMA:g} x noise {sigma:.2g} (absorbance)"
            )
            codes[codes == phase] = Phase.VOID
    rest = ~nmc & np.isfinite(below)
    phases[rest] = codes[rest]
    logger.debug("phase map from absorbance: %s", info)
    return phases, info
