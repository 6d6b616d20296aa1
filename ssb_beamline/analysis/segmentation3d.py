"""3D phase segmentation of a tomography / 3D XANES / holotomography run: NMC, SSE, carbon.

* **NMC** from the Ni K-edge jump: mean attenuation of the post-edge volumes minus
  that of the pre-edge volumes (only NMC holds Ni), Otsu threshold.
* **SSE and carbon** from their contrast away from the edge among the non-NMC
  voxels, two Otsu thresholds away from partial-volume bands (see ``_classify_others``):
  in *absorption* (pre-edge attenuation) the order is pore < carbon < SSE (carbon is
  light: ~0.0009 /um against SSE's ~0.012 /um at 8.3 keV, so it is only resolved
  in low-noise reconstructions; the metadata give its contrast-to-noise); in
  *electron density* alone (holotomography) pore < SSE (~480 e/nm3) < carbon (540-660).
* **Both** (a 3D XANES run and a registered holotomography run of the same field of
  view, the usual correlative measurement): pore against solid from the electron
  density (phase contrast sees carbon ~600 times more strongly than absorption does
  at 8 keV), then SSE against carbon from the *absorption per electron*
  ``mu / n_e`` (the XANES attenuation averaged over all its energies, since neither
  phase has an edge there, over the electron density): a material constant,
  ~2.5e-5 um^-1 nm^3 for Li6PS5Cl (S, Cl absorb) against ~1.4e-6 for carbon,
  that does not change where a voxel is only partly filled (pore dilutes both),
  so the blurred rims of SSE are not taken for carbon.  Otsu on ``mu / n_e`` (its
  1-99 % range: noise makes it negative in places).

Measured on the live reconstructions of the end-to-end network phantom (24 x 40 x 40
voxels of 0.1 um; 3D XANES of 11 energies x 21 angles, 0.02 s exposures, ~2e4 counts
per open-beam pixel): from absorption alone the Dice of NMC / SSE / carbon is
0.98 / 0.84 / 0.06 (carbon contrast to noise 1.4: one energy's FBP has a pore noise
of ~0.006 /um per voxel; averaging all 11 energies only brings carbon to 0.14);
a 181-angle tomogram at 5.5 keV (carbon 3.5x more absorbing, 0.0031 /um) gives a
contrast to noise of 5.7 after smoothing but a carbon Dice of 0.36 only (the rims
of SSE and the noise in the much larger pore volume); with a registered
holotomography run (61-181 angles) and the absorption per electron: 0.98 / 0.95 /
0.79, and 0.98 / 0.96 / 0.81 with ``band_voxels=2`` (the live network callback's
choice: NMC's absorption spills ~2 voxels into its neighbours, and with a 1-voxel
band 197 of the 347 NMC-carbon contact voxels read as SSE).

SSE pieces wholly inside the band around NMC are not SSE (see
:mod:`~ssb_beamline.analysis.segmentation3d_flecks`), nor is band SSE across a pore gap
(``band_rule="spill"``, :mod:`~ssb_beamline.analysis.segmentation3d_spill`).

Volumes are smoothed with a small Gaussian (``smooth_sigma`` voxels) first.  The
method, thresholds and energies used are returned as JSON-ready metadata, to be
stored next to the phase volume.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage as ndi
from skimage.filters import threshold_multiotsu, threshold_otsu

from .phases import Phase
from .segmentation3d_flecks import drop_band_flecks
from .segmentation3d_spill import drop_band_gaps

__all__ = ["PhaseVolume", "edge_jump_volumes", "segment_phases_3d"]

logger = logging.getLogger(__name__)

#: Default Ni K-edge, eV; pre-edge is below ``edge - 5``, post-edge above ``edge + 15``.
NI_K_EDGE_EV = 8333.0
PRE_MARGIN_EV, POST_MARGIN_EV = 5.0, 15.0
#: Carbon counts as resolved when its median exceeds the pore's by this many noise std.
MIN_CARBON_CNR = 3.0
_SAMPLE = 2_000_000  # voxels used to find thresholds (a strided subset of large volumes)


@dataclass
class PhaseVolume:
    """A segmented phase volume (``Phase`` codes, uint8) with how it was made.

    Attributes
    ----------
    phases : ndarray of uint8, shape (Z, Y, X)
        One :class:`~ssb_beamline.physics.Phase` code per voxel.
    voxel_size_um : float
        Voxel edge, µm.
    metadata : dict
        JSON-ready record of the method: contrast used, thresholds, energies (eV),
        smoothing and phase fractions (empty when the phases were given as is).
    """

    phases: NDArray[np.uint8]
    voxel_size_um: float
    metadata: dict[str, Any] = field(default_factory=dict)


def _subset(v: NDArray) -> NDArray:
    v = v[np.isfinite(v)]
    step = max(1, v.size // _SAMPLE)
    return v[::step]


def edge_jump_volumes(
    attenuation: ArrayLike, energies: ArrayLike, *, edge_ev: float = NI_K_EDGE_EV
) -> tuple[NDArray[np.float32], NDArray[np.float32], dict[str, Any]]:
    """Mean pre-edge and post-edge attenuation volumes of an ``(N, Z, Y, X)`` stack.

    Parameters
    ----------
    attenuation : array_like, shape (N, Z, Y, X)
        Reconstructed linear attenuation per energy (e.g. /µm), one volume each.
    energies : array_like, shape (N,)
        Energy of each volume, eV, in any order.
    edge_ev : float, optional
        Absorption edge, eV (default the Ni K-edge, 8333 eV): volumes below
        ``edge_ev - 5`` are pre-edge, above ``edge_ev + 15`` post-edge, those
        between are unused. A wrong edge puts the edge itself into one average.

    Returns
    -------
    pre, post : ndarray of float32, shape (Z, Y, X)
        Mean attenuation below and above the edge.
    metadata : dict
        ``pre_edge_ev`` and ``post_edge_ev`` (the energies averaged) and ``edge_ev``.

    Raises
    ------
    ValueError
        Wrong shapes, or no energy below ``edge - 5`` eV or above ``edge + 15`` eV.

    Examples
    --------
    >>> stack = np.stack([np.zeros((2, 2, 2)), np.ones((2, 2, 2))])
    >>> pre, post, meta = edge_jump_volumes(stack, [8300.0, 8400.0])
    >>> float((post - pre).max()), meta["post_edge_ev"]
    (1.0, [8400.0])
    """
    att = np.asarray(attenuation)
    e = np.asarray(energies, dtype=np.float64).ravel()
    if att.ndim != 4 or att.shape[0] != e.size:
        raise ValueError(
            f"attenuation has shape {att.shape} for {e.size} energies; pass the "
            "(energies, Z, Y, X) stack of a 3D XANES run with its energies"
        )
    pre, post = e < edge_ev - PRE_MARGIN_EV, e > edge_ev + POST_MARGIN_EV
    for ok, where, bound in ((pre, "below", edge_ev - PRE_MARGIN_EV),
                             (post, "above", edge_ev + POST_MARGIN_EV)):  # fmt: skip
        if not ok.any():
            raise ValueError(
                f"no energy {where} the Ni K-edge ({where} {bound:.0f} eV) in the run's "
                f"energies {e.round(1).tolist()}: the NMC edge jump needs one; rescan with "
                f"an energy {where} {bound:.0f} eV or take the phases from another "
                "registered tomography run"
            )
    pre_v = att[pre].mean(axis=0, dtype=np.float32)
    post_v = att[post].mean(axis=0, dtype=np.float32)
    meta = {"pre_edge_ev": e[pre].tolist(), "post_edge_ev": e[post].tolist(), "edge_ev": edge_ev}
    return pre_v, post_v, meta


def _otsu(values: NDArray, what: str) -> float:
    sample = _subset(values)
    if sample.size < 20 or np.ptp(sample) == 0:
        raise ValueError(
            f"{what}: too few or constant voxels ({sample.size}) to threshold; check that "
            "the volume holds the sample (not only pore)"
        )
    return float(threshold_otsu(sample))


def _band(mask: NDArray[np.bool_], width: int) -> NDArray[np.bool_]:
    if width <= 0:
        return np.zeros_like(mask)
    return ndi.binary_dilation(mask, iterations=width) & ~mask


def _classify_others(
    c: NDArray, nmc: NDArray[np.bool_], order: tuple[Phase, Phase, Phase], width: int
) -> tuple[NDArray[np.uint8], list[float]]:
    """Pore / middle / strongest class of the non-NMC voxels (see module docstring).

    Two Otsu thresholds, each on voxels away from the partial-volume bands that
    would mimic the middle class (around NMC, and between the strongest class and
    pore); band voxels then take the phase of the nearest classified voxel.
    """
    low, mid, high = order
    core = ~nmc & ~_band(nmc, width)
    out = np.zeros(c.shape, np.uint8)
    if mid == Phase.CARBON:  # absorption: pore < carbon << SSE
        t1 = _otsu(c[core], "SSE against pore/carbon")
        strong = core & (c > t1)
        light = core & ~strong & ~_band(strong, width)
        t2 = _otsu(c[light], "carbon against pore")
        out[strong], out[light & (c > t2)] = high, mid
        assigned = strong | light
    else:  # electron density: pore << SSE < carbon
        t1 = _otsu(c[core], "SSE/carbon against pore")
        solid = core & (c > t1)
        inner = solid & ~_band(core & ~solid, width)
        t2 = _otsu(c[inner], "carbon against SSE")
        out[inner] = np.where(c[inner] > t2, high, mid)
        assigned = (core & ~solid) | inner
    out[assigned & (out == 0)] = low
    out[nmc] = Phase.NMC
    todo = ~assigned & ~nmc
    if todo.any() and assigned.any():
        near = ndi.distance_transform_edt(todo | nmc, return_distances=False, return_indices=True)
        out[todo] = out[tuple(ix[todo] for ix in near)]
    return out, [t1, t2]


def _classify_per_electron(
    absorption: NDArray, density: NDArray, nmc: NDArray[np.bool_], width: int,
    band_rule: str = "spill",
) -> tuple[NDArray[np.uint8], list[float], NDArray]:  # fmt: skip
    """Pore / SSE / carbon from density (solid) and absorption per electron (see docstring).

    Returns the phases, ``[density threshold, absorption-per-electron threshold]``
    and the absorption-per-electron volume (NaN outside the solid).
    """
    core = ~nmc & ~_band(nmc, width)
    t1 = _otsu(density[core], "SSE/carbon against pore (electron density)")
    solid = core & (density > t1)
    ratio = np.full(density.shape, np.nan, np.float32)
    ratio[solid] = absorption[solid] / density[solid]
    lo, hi = np.percentile(_subset(ratio[solid]), [1, 99])  # noise tails (ratio < 0 too)
    t2 = _otsu(np.clip(ratio[solid], lo, hi), "SSE against carbon (absorption per electron)")
    out = np.zeros(density.shape, np.uint8)
    out[solid] = np.where(ratio[solid] > t2, Phase.SSE, Phase.CARBON)
    out[nmc] = Phase.NMC
    todo = ~core & ~nmc
    if todo.any() and core.any():
        near = ndi.distance_transform_edt(todo | nmc, return_distances=False, return_indices=True)
        out[todo] = out[tuple(ix[todo] for ix in near)]
    if band_rule == "spill":
        drop_band_gaps(out, density, nmc, width, t1)
    drop_band_flecks(out, nmc, width)
    return out, [t1, t2], ratio


def _per_electron_metadata(
    density: NDArray, ratio: NDArray, phases: NDArray, t: list[float], width: int
) -> dict[str, Any]:
    """How SSE / carbon were found with both channels; carbon contrast to noise in density."""
    med = {p.name: float(np.median(_subset(density[phases == p]))) if (phases == p).any() else None
           for p in (Phase.VOID, Phase.SSE, Phase.CARBON)}  # fmt: skip
    per_e = {}
    for p in (Phase.SSE, Phase.CARBON):
        r = ratio[(phases == p) & np.isfinite(ratio)]
        per_e[p.name] = float(np.median(_subset(r))) if r.size else None
    noise = float(np.std(_subset(density[phases == Phase.VOID]))) if (phases == 0).any() else 0.0
    others: dict[str, Any] = {
        "method": "pore/solid: Otsu of the electron density; SSE/carbon: Otsu of the "
                  "absorption per electron (1-99 % range); off the band around NMC",
        "thresholds": t, "threshold_units": ["e/nm^3", "1/um per (e/nm^3)"],
        "class_order": ["VOID", "SSE", "CARBON"], "band_voxels": width,
        "median": med, "median_absorption_per_electron": per_e, "pore_noise_std": noise,
    }  # fmt: skip
    if med["CARBON"] is not None and med["VOID"] is not None and noise > 0:
        cnr = abs(med["CARBON"] - med["VOID"]) / noise
        others["carbon_contrast_to_noise"] = cnr
        others["carbon_resolved"] = bool(cnr >= MIN_CARBON_CNR)
    return others


def _others_metadata(
    contrast: NDArray, phases: NDArray, order: tuple, t: list[float], width: int,
    contrast_name: str,
) -> dict[str, Any]:  # fmt: skip
    """How SSE / carbon were found: thresholds, medians, carbon contrast to noise."""
    medians = [float(np.median(_subset(contrast[phases == p]))) if (phases == p).any() else None
               for p in (Phase.VOID, Phase.SSE, Phase.CARBON)]  # fmt: skip
    noise = float(np.std(_subset(contrast[phases == Phase.VOID]))) if (phases == 0).any() else 0.0
    others = {
        "method": f"{contrast_name}, two Otsu thresholds off the partial-volume bands",
        "thresholds": t, "class_order": [p.name for p in order],
        "band_voxels": width,
        "median": dict(zip(("VOID", "SSE", "CARBON"), medians, strict=True)),
        "pore_noise_std": noise,
    }  # fmt: skip
    if medians[2] is not None and medians[0] is not None and noise > 0:
        cnr = abs(medians[2] - medians[0]) / noise
        others["carbon_contrast_to_noise"] = cnr
        others["carbon_resolved"] = bool(cnr >= MIN_CARBON_CNR)
        if cnr < MIN_CARBON_CNR:
            logger.warning(
                "carbon barely resolved (contrast to pore %.1f x the pore noise < %.0f): its "
                "voxels are unreliable; use the electron density of a holotomography run",
                cnr, MIN_CARBON_CNR,
            )  # fmt: skip
    return others


def _smooth(v: ArrayLike, sigma: float) -> NDArray[np.float32]:
    """float32 copy, NaN -> 0, Gaussian-smoothed when ``sigma > 0``."""
    v = np.nan_to_num(np.asarray(v, np.float32))
    return ndi.gaussian_filter(v, sigma) if sigma > 0 else v


def _nmc_from_edge_jump(attenuation, energies, edge_ev, sigma, meta) -> tuple[NDArray, NDArray]:
    """Smoothed pre-edge volume and the NMC mask (Otsu of the edge jump); fills ``meta``."""
    pre, post, meta["edge"] = edge_jump_volumes(attenuation, energies, edge_ev=edge_ev)
    pre, jump = _smooth(pre, sigma), _smooth(post - pre, sigma)
    t_nmc = float(threshold_otsu(_subset(jump)))
    meta["nmc"] = {"method": "Ni K-edge jump, Otsu", "threshold_per_um": t_nmc}
    return pre, jump > t_nmc


def segment_phases_3d(
    attenuation: ArrayLike | None = None,
    energies: ArrayLike | None = None,
    *,
    voxel_size_um: float,
    electron_density: ArrayLike | None = None,
    edge_ev: float = NI_K_EDGE_EV,
    smooth_sigma: float = 0.0,
    band_voxels: int = 1,
    band_rule: str = "spill",
) -> PhaseVolume:
    """Segment NMC, SSE, carbon and pore in 3D (see module docstring).

    Parameters
    ----------
    attenuation, energies : array_like, shapes (N, Z, Y, X) and (N,), optional
        Reconstructed attenuation per energy (3D XANES, eV), below and above the edge.
    voxel_size_um : float
        Voxel edge, um (stored with the phases).
    electron_density : array_like, shape (Z, Y, X), optional
        Holotomography electron density of the same grid (e/nm^3).  With an
        attenuation stack: pore / solid from it, SSE / carbon from the absorption
        per electron; alone: NMC, SSE and carbon from it.
    edge_ev : float
        Ni K-edge energy, eV.
    smooth_sigma : float
        Gaussian smoothing (voxels) before thresholding; 0 for none.  Not applied
        to ``electron_density`` when an attenuation stack is given.
    band_voxels : int
        Width of the partial-volume bands (around NMC, and between the strongest
        contrast and pore) whose voxels take the phase of the nearest voxel outside.
    band_rule : {"nearest", "spill"}
        With both channels: ``"spill"`` then makes pore the band SSE whose density
        without NMC's spill is pore-like (a pore gap between NMC and SSE).

    Returns
    -------
    PhaseVolume

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.choice(4, (6, 6, 6), p=[0.55, 0.15, 0.22, 0.08])
    >>> truth = truth.repeat(5, 0).repeat(5, 1).repeat(5, 2)  # 5-voxel blocks
    >>> mu_pre = np.choose(truth, [0.0, 0.027, 0.0118, 0.0009]) + rng.normal(0, 1e-5, truth.shape)
    >>> mu_post = mu_pre + 0.06 * (truth == 1)
    >>> pv = segment_phases_3d(np.stack([mu_pre, mu_post]), [8300, 8400],
    ...                        voxel_size_um=0.1, smooth_sigma=0)
    >>> bool(((pv.phases == 1) == (truth == 1)).all()), float((pv.phases == truth).mean()) > 0.9
    (True, True)
    """
    if voxel_size_um is None or not np.isfinite(voxel_size_um) or voxel_size_um <= 0:
        raise ValueError(f"voxel_size_um={voxel_size_um}; pass the voxel edge in um (> 0)")
    if band_rule not in ("nearest", "spill"):
        raise ValueError(f"band_rule={band_rule!r}; pass 'nearest' or 'spill'")
    if attenuation is None and electron_density is None:
        raise ValueError("pass an attenuation stack (3D XANES) and/or an electron density")
    meta: dict[str, Any] = {"smooth_sigma": smooth_sigma, "voxel_size_um": voxel_size_um}

    # with an attenuation stack the (phase-retrieved, already low-passed) density is
    # not smoothed again: that lifts the carbon Dice of the end-to-end run 0.74 -> 0.79
    density_sigma = smooth_sigma if attenuation is None else 0.0
    density = None if electron_density is None else _smooth(electron_density, density_sigma)
    if attenuation is not None:
        if energies is None:
            raise ValueError("attenuation needs its energies (eV), one per volume")
        pre, nmc = _nmc_from_edge_jump(attenuation, energies, edge_ev, smooth_sigma, meta)
        if density is not None and density.shape != pre.shape:
            raise ValueError(
                f"electron_density has shape {density.shape}, the attenuation volumes "
                f"{pre.shape}; register them to one grid first"
            )
    else:
        t_nmc = float(threshold_multiotsu(_subset(density), classes=4)[2])
        nmc = density > t_nmc
        meta["nmc"] = {"method": "electron density, 4-class multi-Otsu", "threshold": t_nmc}
        pre = None
    if density is not None and attenuation is not None:
        meta["contrast"] = "absorption per electron"
        absorption = _smooth(np.nanmean(np.asarray(attenuation, np.float32), axis=0), smooth_sigma)
        phases, t, ratio = _classify_per_electron(absorption, density, nmc, band_voxels, band_rule)
        meta["others"] = _per_electron_metadata(density, ratio, phases, t, band_voxels)
        meta["others"]["band_rule"] = band_rule
        meta["others"]["absorption_energies_ev"] = np.asarray(energies, float).ravel().tolist()
    else:
        if density is not None:
            contrast, meta["contrast"] = density, "electron density"
            order = (Phase.VOID, Phase.SSE, Phase.CARBON)
        else:
            contrast, meta["contrast"] = pre, "absorption"
            order = (Phase.VOID, Phase.CARBON, Phase.SSE)
        phases, t = _classify_others(contrast, nmc, order, band_voxels)
        meta["others"] = _others_metadata(contrast, phases, order, t, band_voxels,
                                          meta["contrast"])  # fmt: skip
    counts = np.bincount(phases.ravel(), minlength=4)
    meta["fractions"] = {p.name: float(counts[p] / phases.size) for p in Phase}
    logger.info("3D phases (%s): %s", meta["contrast"], meta["fractions"])
    return PhaseVolume(phases, float(voxel_size_um), meta)
