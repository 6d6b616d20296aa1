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
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_multiotsu, threshold_otsu

from ssb_beamline.reference_data import NI_K_EDGE_EV

from .phases import Phase

__all__ = [
    "MIN_CONTRAST_SIGMA",
    "PRE_EDGE_OFFSET_EV",
    "BelowEdgeImage",
    "below_edge_frames",
    "below_edge_image",
    "phases_from_absorbance",
]

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


def below_edge_frames(energies: np.ndarray) -> np.ndarray:
    """Which frames make the below-edge image: those more than 10 eV below the Ni K-edge.

    Parameters
    ----------
    energies : (N,) array
        Energies of the frames, eV.

    Returns
    -------
    numpy.ndarray of bool, shape (N,)
        True for the frames below ``NI_K_EDGE_EV - PRE_EDGE_OFFSET_EV``.

    Examples
    --------
    >>> below_edge_frames(np.array([8300.0, 8340.0, 8320.0])).tolist()
    [True, False, True]
    """
    return np.asarray(energies, float) < NI_K_EDGE_EV - PRE_EDGE_OFFSET_EV


@dataclass(frozen=True)
class BelowEdgeImage:
    """The below-edge absorbance of a run, made once its below-edge frames are in.

    It needs none of the frames at or above the edge, so a live analysis can make
    it while the scan runs and hand it to :func:`phases_from_absorbance`.

    Attributes
    ----------
    energies_ev : numpy.ndarray, shape (M,)
        Energies of the frames it averages, in stack order (checked against the
        frames :func:`phases_from_absorbance` is given).
    mean : numpy.ndarray, shape (H, W)
        NaN-mean of those frames (NaN where every frame is NaN).
    smooth : numpy.ndarray, shape (H, W)
        ``mean`` median-filtered 3 x 3, with NaN counted as 0.
    """

    energies_ev: np.ndarray
    mean: np.ndarray
    smooth: np.ndarray


def below_edge_image(absorbance: np.ndarray, energies: np.ndarray) -> BelowEdgeImage | None:
    """The below-edge image of a stack (None when no frame lies below the edge).

    Parameters
    ----------
    absorbance : (N, H, W) array
        Absorbance frames (all of a run's, or only those below the edge).
    energies : (N,) array
        Their energies, eV.

    Returns
    -------
    BelowEdgeImage or None
        Made from the frames of :func:`below_edge_frames`; None if there is none.

    Examples
    --------
    >>> image = below_edge_image(np.ones((3, 4, 4)), np.array([8300.0, 8310.0, 8350.0]))
    >>> image.energies_ev.tolist(), float(image.mean[0, 0]), image.smooth.shape
    ([8300.0, 8310.0], 1.0, (4, 4))
    """
    energies = np.asarray(energies, float)
    pre = below_edge_frames(energies)
    if not pre.any():
        return None
    mean = np.nanmean(np.asarray(absorbance)[pre], axis=0)
    smooth = ndi.median_filter(np.where(np.isfinite(mean), mean, 0.0), size=3)
    return BelowEdgeImage(energies[pre], mean, smooth)


def _given_below_edge(below_edge: BelowEdgeImage, energies: np.ndarray, shape) -> BelowEdgeImage:
    """``below_edge`` if it was made from the frames below the edge of ``energies``."""
    made_from = energies[below_edge_frames(energies)]
    if not np.array_equal(below_edge.energies_ev, made_from) or below_edge.mean.shape != shape:
        raise ValueError(
            f"below_edge was made from frames at {below_edge.energies_ev.tolist()} eV of shape "
            f"{below_edge.mean.shape}, these are at {made_from.tolist()} eV of shape {shape}; "
            "pass below_edge_image(absorbance, energies) of these frames, or None"
        )
    return below_edge


def phases_from_absorbance(
    absorbance: np.ndarray,
    energies: np.ndarray,
    labels: np.ndarray,
    *,
    carbon: bool = False,
    below_edge: BelowEdgeImage | None = None,
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
    below_edge : BelowEdgeImage, optional
        :func:`below_edge_image` of these frames, made beforehand (e.g. while
        the scan ran); the same phase map as without it, sooner.

    Returns
    -------
    phases, info
        ``phases`` is None when no frame lies below the edge; ``info`` holds the
        ``source``, thresholds, the noise and ``unresolved`` phases with reasons.
    """
    energies = np.asarray(energies, float)
    pre = below_edge_frames(energies)
    info: dict[str, Any] = {"source": "absorbance", "below_edge_frames": int(pre.sum())}
    if not pre.any():
        info["reason"] = (
            f"no frame below {NI_K_EDGE_EV - PRE_EDGE_OFFSET_EV:.0f} eV to tell the "
            "electrolyte from void"
        )
        return None, info
    if below_edge is None:
        below_edge = below_edge_image(absorbance, energies)
    else:
        below_edge = _given_below_edge(below_edge, energies, np.shape(labels))
    return _classified(below_edge, labels, carbon, info)


def _classified(below_edge: BelowEdgeImage, labels, carbon: bool, info: dict[str, Any]):
    """Phase map from the below-edge image: NMC at the labels, the rest split by Otsu."""
    finite = np.isfinite(below_edge.mean)
    smooth = below_edge.smooth
    nmc = labels > 0
    other = ~ndi.binary_dilation(nmc, iterations=2) & finite
    phases = np.full(labels.shape, Phase.VOID, np.uint8)
    phases[nmc] = Phase.NMC
    unresolved: dict[str, str] = {}
    info["unresolved"] = unresolved
    if not carbon:
        unresolved["carbon"] = _NO_CARBON
    if other.sum() < 16:
        unresolved["sse"] = "too few pixels outside the particles"
        return phases, info
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
    rest = ~nmc & finite
    phases[rest] = codes[rest]
    logger.debug("phase map from absorbance: %s", info)
    return phases, info
