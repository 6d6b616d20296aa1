"""One fused, chunked pass from an absorbance stack to all XANES maps.

The pass is three named steps, each testable alone:

1. :func:`~._xanes_setup.build_operators`: everything that does not depend on
   the pixels (references, edge fit, LCF / joint-fit weights, SOC calibration);
2. one chunk kernel per normalisation (:mod:`._xanes_chunks`:
   ``joint_fit_chunk`` / ``edge_fit_chunk``), run over pixel chunks by
   :func:`~._parallel.run_chunks`;
3. :func:`finish_maps`: the mask, atomic fractions and SOC maps, and the result.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Literal

import numpy as np

from ._jit import load_joint_pass
from ._maps import XanesMaps
from ._parallel import DEFAULT_CHUNK_PIXELS, run_chunks
from ._validation import check_mask, check_stack, output_array
from ._xanes_chunks import XanesOutputs, chunk_kernel, edge_fit_chunk, joint_fit_chunk
from ._xanes_setup import XanesOperators, XanesSettings, build_operators
from .edge_fit import EDGE_WINDOW_EV
from .edge_interp import estimator_record
from .joint_sums import JointFitSums
from .soc import SocCalibration, soc_map

__all__ = ["XanesMaps", "analyse_xanes_stack", "finish_maps"]

log = logging.getLogger(__name__)


def analyse_xanes_stack(  # noqa: PLR0913 -- keyword-only options of the public scientific API
    mu: np.ndarray,
    energies: np.ndarray,
    references: object = None,
    *,
    mask_threshold: float | str | None = None,
    mask: np.ndarray | None = None,
    e0: float | None = None,
    pre: tuple[float, float] | None = None,
    post: tuple[float, float] | None = None,
    nnorm: int | None = None,
    lcf_range: tuple[float, float] | None = None,
    reference_energies: np.ndarray | None = None,
    calibration: SocCalibration | None = None,
    return_norm: bool = False,
    norm_out: np.ndarray | None = None,
    edge_window: tuple[float, float] = EDGE_WINDOW_EV,
    normalization: Literal["references", "edge_fit"] = "references",
    chunk_pixels: int = DEFAULT_CHUNK_PIXELS,
    workers: int | None = None,
    derivative_e0: bool = True,
    joint_sums: JointFitSums | None = None,
) -> XanesMaps:
    """Normalise a XANES stack and compute every map in one chunked pass.

    Per pixel chunk (the stack viewed as (N, H*W)): one small matrix product
    gives the pre-edge line, edge step and the LCF projection; the half-step
    energy and the derivative e0 use only the edge window; the LCF residual is
    one more product.  Memory beyond the inputs/outputs is a few MB per worker.

    Parameters
    ----------
    mu : ndarray, shape (N, H, W)
        Absorbance stack (float32 preferred), energy along axis 0.
    energies : ndarray, shape (N,)
        Strictly increasing energies, eV.
    references : optional
        Two references, (reduced, oxidised), in any form accepted by
        :func:`~ssb_beamline.analysis.lcf.reference_matrix`.  Default: the
        shipped NiO / LiNiO2 (:func:`ni_k_edge_references`).
    mask_threshold : float or "otsu", optional
        Edge-step threshold of the mask (default Otsu, see
        :func:`edge_jump_mask`; an empty mask when no edge step is clearly above
        the noise).
    mask : ndarray of bool, optional
        Use this mask instead of thresholding the edge step.
    e0, pre, post, nnorm, edge_window :
        Normalisation options (see :func:`normalize_stack`).
    lcf_range : (float, float), optional
        Energy range of the LCF (default: all energies).
    reference_energies : ndarray, optional
        Energies of array references.
    calibration : SocCalibration, optional
        SOC calibration of ``soc_edge``.  Default: the half-step energies of
        the two references normalised exactly like the data
        (``SocCalibration.from_references(references, edge_fit=...)``), which
        removes the bias of the short normalisation range.  ``soc_edge``
        interpolates linearly between the end-member edges; the edge of a
        mixture is slightly non-linear in the fraction (up to ~0.05 in SOC for
        NiO/LiNiO2), so ``soc`` (from the LCF) is the primary SOC map.
    normalization : {"references", "edge_fit"}
        How the edge step, the normalised stack and the half-step edge energy
        are defined. ``"references"`` (default) fits every spectrum with the
        references as they were normalised over their own full measured range
        plus a line, ``mu = a + b (E - e0) + c0 R0 + c1 R1``: the edge step is
        ``c0 + c1``, the pre-edge line ``a + b (E - e0)`` and the oxidised
        fraction ``c1 / (c0 + c1)``. A scan over 8300-8450 eV is too short for a
        post-edge polynomial to find the full-range edge step (it comes out 5-15 %
        low and the half-step energy 0.1-0.5 eV low); the references carry the
        full-range normalisation instead. ``"edge_fit"`` uses the pre-/post-edge
        fits of :func:`normalize_stack` (xraylarch's definition over the measured
        range), with the LCF against references normalised the same way.
    return_norm : bool
        Also return the normalised stack (written into ``norm_out`` if given).
    norm_out : ndarray of float32, optional
        Preallocated (N, H, W) output for the normalised stack.
    chunk_pixels, workers : int
        Pixels per chunk and worker threads.
    derivative_e0 : bool
        Compute the per-pixel derivative-maximum ``e0`` map (about a quarter of
        the pass); False leaves ``e0`` all NaN.
    joint_sums : JointFitSums, optional
        The sums of the joint fit accumulated while the scan ran
        (:class:`~ssb_beamline.analysis.joint_sums.JointFitAccumulator`); with them
        only the edge window of the stack is read (and the whole stack only for
        the normalised output). Needs ``normalization="references"`` and the
        default ``lcf_range``; the maps equal those of the full pass within
        float32 rounding.

    Returns
    -------
    XanesMaps

    Examples
    --------
    >>> from ssb_beamline.reference_data import ni_k_edge_references
    >>> refs = ni_k_edge_references()
    >>> e = np.arange(8300.0, 8450.0, 1.0)
    >>> mix = 0.7 * refs[0].at(e) + 0.3 * refs[1].at(e)
    >>> mu = (0.2 + 0.5 * mix)[:, None, None] * np.ones((1, 2, 2))
    >>> maps = analyse_xanes_stack(mu.astype(np.float32), e, refs, mask=np.ones((2, 2), bool))
    >>> round(float(maps.soc[0, 0]), 2), round(float(maps.edge_step[0, 0]), 2)
    (0.3, 0.5)
    """
    t_start = time.perf_counter()
    mu2, e, spatial = check_stack(mu, energies, name="mu", min_points=5)
    m_given = check_mask(mask, spatial)
    norm2 = None
    if return_norm or norm_out is not None:
        norm2 = output_array(norm_out, np.shape(mu), "norm_out").reshape(mu2.shape)
    # first the outputs: in a new process their pages are mapped by background threads
    # (kernel work, no GIL) while the operators are built and the kernel loads
    out = XanesOutputs.allocate(mu2.shape[1], norm2)
    if normalization == "references" and joint_sums is None:  # the compiled pass is likely
        load_joint_pass()  # in a new process: loads while the outputs are mapped
    settings = XanesSettings(
        e0=e0, pre=pre, post=post, nnorm=nnorm, edge_window=edge_window, lcf_range=lcf_range,
        reference_energies=reference_energies, calibration=calibration,
        normalization=normalization, derivative_e0=derivative_e0,
    )  # fmt: skip
    ops = build_operators(mu2, e, references, settings, m_given, joint_sums)
    kernel = chunk_kernel(ops, mu2, norm2)
    # done by now on an idle machine; a pass overlapping the mapping cost more CPU
    # (both fault the same fresh pages: cold/warm CPU 1.19-1.28 against 1.01-1.15)
    out.wait_mapped()
    t_pass = time.perf_counter()
    blas = kernel in (joint_fit_chunk, edge_fit_chunk)  # the compiled pass has no products
    run_chunks(lambda s: kernel(ops, out, mu2, s), ops.p, chunk_pixels, workers, limit_blas=blas)
    t_done = time.perf_counter()
    maps = finish_maps(ops, out, spatial, mask=m_given, mask_threshold=mask_threshold)
    t_end = time.perf_counter()
    timings = {
        "setup": t_pass - t_start,
        "pass": t_done - t_pass,
        "finish": t_end - t_done,
        "total": t_end - t_start,
    }
    log.info(
        "analysed %s stack in %.3f s (e0=%.2f eV, %d/%d pixels in mask)",
        np.shape(mu), timings["total"], ops.fit.e0, int(maps.mask.sum()), ops.p,
    )  # fmt: skip
    if norm_out is not None:
        norm = norm_out
    else:
        norm = None if norm2 is None else norm2.reshape(np.shape(mu))
    return replace(maps, norm=norm, timings=timings)


def _weight_to_fraction(w: np.ndarray, s0: float, s1: float, tmp: np.ndarray) -> None:
    """Step-weighted LCF weights ``w`` -> atomic fractions, in place (``tmp``: scratch).

    ``f = (w / s1) / ((1 - w) / s0 + w / s1)`` for edge steps ``s0``, ``s1`` of the
    reduced and oxidised references.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        np.subtract(1.0, w, out=tmp)
        tmp /= s0
        w /= s1
        tmp += w
        np.divide(w, tmp, out=w)


def finish_maps(
    ops: XanesOperators,
    out: XanesOutputs,
    spatial: tuple[int, ...],
    *,
    mask: np.ndarray | None = None,
    mask_threshold: float | str | None = None,
) -> XanesMaps:
    """The mask, atomic fractions and SOC maps from the outputs of the pass.

    The mask is ``mask`` (or the edge step thresholded at ``mask_threshold``,
    default Otsu) where the edge step is finite and positive; the maps are NaN
    outside it.  The edge-fit path's step-weighted LCF weights become atomic
    fractions here (the joint fit gives them directly).

    Parameters
    ----------
    ops : XanesOperators
        The operators the pass used (``build_operators``): energies, references,
        global edge fit and SOC calibration.
    out : XanesOutputs
        The flat (P,) per-pixel outputs of the pass; edited in place (NaN outside
        the mask).
    spatial : tuple of int
        Spatial shape of the stack, e.g. ``(H, W)``; its product must be P, or the
        reshape raises ``ValueError``.
    mask : ndarray of bool, optional
        Given mask of ``spatial`` shape (already checked by ``check_mask``);
        ``mask_threshold`` is then ignored and the map's threshold is NaN.
    mask_threshold : float or str, optional
        Edge-step threshold, absorbance units; ``None`` or any string means Otsu's
        threshold of the edge step, or +inf (an empty mask) when the steps above it
        are not clearly above the noise (:func:`~.masks.auto_edge_threshold`: no
        particle in the field). Too high a value empties the mask (all maps NaN).
    """
    valid = out.ok  # finite, positive edge step
    msk = out.mask
    if mask is not None:
        np.logical_and(np.asarray(mask, bool).reshape(-1), valid, out=msk)
        thr = float("nan")
    else:
        if mask_threshold is None or isinstance(mask_threshold, str):
            from .masks import auto_edge_threshold

            thr = auto_edge_threshold(out.step)  # +inf: no particles, an empty mask
        else:
            thr = float(mask_threshold)
        with np.errstate(invalid="ignore"):  # as edge_jump_mask: NaN steps are out
            np.greater(out.step, thr, out=msk)
        msk &= valid
    fractions = out.fractions
    frac_ox = out.frac_ox
    if not ops.by_refs:  # step-weighted weight w of the oxidised reference -> atomic fraction
        _weight_to_fraction(frac_ox, float(ops.ref_steps[0]), float(ops.ref_steps[1]), fractions[0])
    out_mask = ~msk
    nan = np.float32(np.nan)
    for a in (out.edge, out.resid, frac_ox):
        np.copyto(a, nan, where=out_mask)
    np.subtract(np.float32(1.0), frac_ox, out=fractions[0])
    cal = ops.calibration
    soc = soc_map(fractions=fractions, calibration=cal, out=out.soc).soc
    soc_edge = soc_map(out.edge, calibration=cal, out=out.soc_edge).soc
    fit, e, shp = ops.fit, ops.e, spatial
    return XanesMaps(
        e0=out.e0.reshape(shp),
        edge_step=out.step.reshape(shp),
        edge_energy=out.edge.reshape(shp),
        fractions=fractions.reshape((2, *shp)),
        residual=out.resid.reshape(shp),
        soc=soc.reshape(shp),
        soc_edge=soc_edge.reshape(shp),
        mask=msk.reshape(shp),
        mask_threshold=thr,
        e0_global=fit.e0,
        pre_range=fit.pre_range,
        post_range=fit.post_range,
        nnorm=fit.nnorm,
        lcf_range=(float(e[ops.fit_sl.start]), float(e[ops.fit_sl.stop - 1])),
        calibration=cal,
        reference_names=ops.names,
        norm=None,
        timings={},
        pre_edge=out.pre_edge.reshape((2, *shp)),
        edge_estimator=estimator_record(e, ops.win),
    )
