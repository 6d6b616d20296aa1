"""One fused, chunked pass from an absorbance stack to all XANES maps."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Literal

import numpy as np

from ._fused import subtract_project, write_normalized
from ._jit import edge_window_uniform
from ._kernels import count_below, derivative_max_block, half_step_from_count, scratch
from ._maps import XanesMaps
from ._parallel import DEFAULT_CHUNK_PIXELS, run_chunks
from ._uniform import uniform_step
from ._validation import check_mask, check_stack, output_array
from .edge_fit import EDGE_WINDOW_EV, build_edge_fit, find_e0
from .edge_interp import estimator_record
from .joint_sums import JointFitSums, sums_to_coefficients
from .lcf import normalize_references, reference_matrix
from .masks import edge_jump_mask
from .soc import SocCalibration, soc_map

__all__ = ["XanesMaps", "analyse_xanes_stack"]

log = logging.getLogger(__name__)


def analyse_xanes_stack(
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
        :func:`edge_jump_mask`).
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
    if references is None:
        from ssb_beamline.reference_data import ni_k_edge_references

        references = ni_k_edge_references()
    refs = reference_matrix(references, e, reference_energies=reference_energies)
    if refs.shape[0] != 2:
        raise ValueError(
            f"analyse_xanes_stack fits exactly 2 references (reduced, oxidised); got "
            f"{refs.shape[0]}. Use lcf_map on normalize_stack(...).norm for K references."
        )
    names = tuple(str(getattr(r, "name", f"ref{k}")) for k, r in enumerate(references))
    if e0 is None:
        e0 = find_e0(e, mu2, mask=m_given)
    fit = build_edge_fit(e, float(e0), pre=pre, post=post, nnorm=nnorm, edge_window=edge_window)
    n, p = mu2.shape

    # The references are normalised with the *same* operators as the data, so a
    # mixture of them normalises to a mixture of the normalised references with
    # weights w_k ~ f_k * step_k; fractions are converted back with the steps.
    if calibration is None:
        ref_items = list(references) if not isinstance(references, np.ndarray) else [None, None]
        cal = replace(
            SocCalibration.from_references((refs[0], refs[1]), edge_fit=fit),
            reduced_name=names[0],
            oxidised_name=names[1],
            reduced_state=float(getattr(ref_items[0], "oxidation_state", 2.0)),
            oxidised_state=float(getattr(ref_items[1], "oxidation_state", 3.0)),
        )
    else:
        cal = calibration
    if normalization not in ("references", "edge_fit"):
        raise ValueError(
            f"normalization must be 'references' or 'edge_fit'; got {normalization!r}."
        )
    refs_full = refs
    refs, ref_steps = normalize_references(refs, fit)
    # LCF operators, K = 2 with sum-to-one: norm ~ r0 + w (r1 - r0)
    if lcf_range is None:
        fit_sl = slice(0, n)
    else:
        idx = np.flatnonzero((e >= lcf_range[0]) & (e <= lcf_range[1]))
        if idx.size < 3:
            raise ValueError(
                f"too few points: {idx.size} energies in lcf_range {lcf_range}. "
                "Widen lcf_range or measure more energies."
            )
        fit_sl = slice(int(idx[0]), int(idx[-1]) + 1)
    r0 = refs[0, fit_sl]
    d = refs[1, fit_sl] - r0
    dd = float(d @ d)
    if dd <= 0:
        raise ValueError(
            "the two references are identical over the LCF range; they cannot be unmixed. "
            "Pass distinct reduced and oxidised references."
        )
    xf = fit.x[fit_sl]
    nfit = xf.size
    # One matrix product per chunk gives every linear quantity (rows of ``weights``):
    # pre-line p0 (at e0) and slope p1, edge step, and the projections of the
    # spectrum on the LCF/residual basis [1, x, r0, d] over the fit range.
    basis = np.stack([np.ones_like(xf), xf, r0, d], axis=1)  # (nfit, 4)
    proj_rows = np.zeros((4, n))
    proj_rows[:, fit_sl] = basis.T
    # (8, N): the 8th (zero) row pads the product to a faster BLAS kernel shape
    weights = np.vstack([fit.weights, proj_rows, np.zeros((1, n))]).astype(np.float32)
    gram = basis.T @ basis
    sum_d, sum_dx, d_r0 = float(d.sum()), float(d @ xf), float(d @ r0)
    win = fit.window
    ew = e[win]
    xwin = fit.x[win]
    nwin = ew.size
    # threshold of the half step in mu units: p0 + p1 x + step / 2
    thr_w = np.stack([np.ones(nwin), xwin, np.full(nwin, 0.5)], axis=1).astype(np.float32)
    line_all = np.stack([np.ones(n), fit.x], axis=1).astype(np.float32)
    uniform_window = None
    h_win = uniform_step(ew)
    if h_win is not None and 6 <= nwin < 256 and uniform_step(xwin) is not None:
        uniform_window = (float(ew[0]), h_win, float(xwin[0]), float(xwin[1] - xwin[0]))

    by_refs = normalization == "references"
    if by_refs:
        # joint fit D = a + b x + c0 R0 + c1 R1 over the fit range (full-range refs)
        jb = np.stack([np.ones_like(xf), xf, refs_full[0, fit_sl], refs_full[1, fit_sl]], axis=1)
        jg = jb.T @ jb
        jw = np.zeros((4, n))
        jw[:, fit_sl] = np.linalg.solve(jg, jb.T)
        jw32 = jw.astype(np.float32)
        jg32 = jg.astype(np.float32)
        if joint_sums is not None:
            sums_to_coef = sums_to_coefficients(joint_sums, e, fit.e0, jg, fit_sl, p)
        if calibration is None and not isinstance(references, np.ndarray):
            # the edges of the end members under their own (full-range) normalisation
            own = SocCalibration.from_references(tuple(references))
            cal = replace(
                cal, reduced_edge_ev=own.reduced_edge_ev, oxidised_edge_ev=own.oxidised_edge_ev
            )
    elif joint_sums is not None:
        raise ValueError(
            "joint_sums apply to normalization='references' only; drop joint_sums or "
            "use the default normalization."
        )

    norm2 = None
    if return_norm or norm_out is not None:
        norm2 = output_array(norm_out, np.shape(mu), "norm_out").reshape(n, p)

    e0_map = np.empty(p, np.float32)
    step_map = np.empty(p, np.float32)
    edge_map = np.empty(p, np.float32)
    frac_ox = np.empty(p, np.float32)
    resid = np.empty(p, np.float32)
    ok_map = np.empty(p, bool)
    pre_edge = np.empty((2, p), np.float32)  # pre-edge line: absorbance at e0, slope

    def work(s: slice) -> None:
        xb = mu2[:, s]
        npx = xb.shape[1]
        # Work on D = mu - mu[first energy]: every quantity below is affine-equivariant
        # (only p0 shifts), and the small values keep the float32 sums accurate.
        if by_refs:
            if joint_sums is None:
                dblk, cj, ss = subtract_project(xb, jw32, fit_sl)
                dw = dblk[win]
                ref = xb[0]
            else:
                cj = np.matmul(sums_to_coef, joint_sums.projections[:, s]).astype(np.float32)
                ss = joint_sums.sum_squares[s].copy()
                ref = joint_sums.reference_frame[s]
                dw = np.subtract(xb[win], ref, out=scratch("window_minus_ref", (nwin, npx)))
                dblk = None
                if norm2 is not None:
                    dblk = np.subtract(xb, ref, out=scratch("mu_minus_ref", (n, npx)))
            p0, p1 = cj[0], cj[1]
            np.add(p0, ref, out=pre_edge[0, s])
            pre_edge[1, s] = p1
            step = cj[2] + cj[3]
            ok = np.isfinite(step) & (step > 0)
            inv = np.zeros(npx, np.float32)
            np.divide(1.0, step, out=inv, where=ok)
            frac_ox[s] = np.clip(cj[3] * inv, 0.0, 1.0)
            step_map[s] = step
            # RMS residual in closed form: |D|^2 - c^T G c (c = G^-1 B^T D)
            ss -= np.einsum("kp,kp->p", cj, jg32 @ cj).astype(np.float64)
            np.maximum(ss, 0.0, out=ss)
            resid[s] = np.sqrt(ss * (1.0 / nfit)) * inv
            c3 = np.stack([p0, p1, step])
            _edge_and_norm(s, dw, dblk, c3, p0, p1, inv, ok)
            return
        dblk, c, ss = subtract_project(xb, weights, fit_sl)
        p0, p1, step = c[0], c[1], c[2]
        np.add(p0, xb[0], out=pre_edge[0, s])
        pre_edge[1, s] = p1
        ok = np.isfinite(step) & (step > 0)
        inv = np.zeros(npx, np.float32)
        np.divide(1.0, step, out=inv, where=ok)
        # LCF weight of the oxidised reference (closed form, clipped to [0, 1])
        f = c[6] - p0 * np.float32(sum_d)
        f -= p1 * np.float32(sum_dx)
        f *= inv
        f -= np.float32(d_r0)
        f *= np.float32(1.0 / dd)
        np.clip(f, 0.0, 1.0, out=f)
        frac_ox[s] = f  # step-weighted; converted to atomic fractions after the pass
        step_map[s] = step
        # RMS residual |D - model|, model = p0 + p1 x + step (r0 + f d), in closed form:
        # |D|^2 - 2 c.(B^T D) + c^T G c with the projections B^T D from the product above
        cm = np.stack([p0, p1, step, step * f]).astype(np.float64)
        ss -= 2.0 * np.einsum("kp,kp->p", cm, c[3:7].astype(np.float64))
        ss += np.einsum("kp,kp->p", cm, gram @ cm)
        np.maximum(ss, 0.0, out=ss)
        resid[s] = np.sqrt(ss * (1.0 / nfit)) * inv
        _edge_and_norm(s, dblk[win], dblk, c[:3], p0, p1, inv, ok)

    def _edge_and_norm(s, dw, dblk, c3, p0, p1, inv, ok) -> None:
        npx = dw.shape[1]
        ok_map[s] = ok
        # edge window: half step (count of samples below pre_line + step / 2, then a
        # local line fit) and derivative maximum
        if uniform_window is not None:  # one compiled sweep over the window
            e_first, h, xl0, dxl = uniform_window
            edge, e0p = edge_map[s], e0_map[s]
            dwc = dw if dw.flags.c_contiguous else np.ascontiguousarray(dw)
            edge_window_uniform(
                dwc, p0, p1, c3[2], inv, xl0, dxl, e_first, h, derivative_e0, edge, e0p
            )
        else:
            thr = np.matmul(thr_w, c3, out=scratch("thr_win", (nwin, npx)))
            count = count_below(dw, thr)
            edge = half_step_from_count(count, dw, ew, line=(p0, p1, xwin, inv))
            edge_map[s] = edge
            if derivative_e0:
                e0p = derivative_max_block(dw, ew)
                e0_map[s] = e0p
        edge_map[s][~ok] = np.nan
        if derivative_e0:
            e0_map[s][~ok] = np.nan
        else:
            e0_map[s] = np.nan
        if norm2 is not None:
            write_normalized(dblk, line_all, c3[:2], inv, norm2[:, s])

    t_pass = time.perf_counter()
    run_chunks(work, p, chunk_pixels, workers)
    t_done = time.perf_counter()

    valid = ok_map  # finite, positive edge step
    if m_given is not None:
        msk = m_given & valid
        thr = float("nan")
    else:
        if mask_threshold is None or isinstance(mask_threshold, str):
            from .masks import otsu_threshold

            thr = otsu_threshold(step_map)
        else:
            thr = float(mask_threshold)
        msk = edge_jump_mask(step_map, thr) & valid
    # step-weighted weight w of the oxidised reference -> atomic fraction
    if not by_refs:  # the joint fit gives atomic fractions directly
        w = frac_ox
        s0, s1 = float(ref_steps[0]), float(ref_steps[1])
        with np.errstate(divide="ignore", invalid="ignore"):
            frac_ox = (w / s1) / ((1.0 - w) / s0 + w / s1)
    out_mask = ~msk
    edge_map[out_mask] = np.nan
    resid[out_mask] = np.nan
    frac_ox[out_mask] = np.nan
    fractions = np.stack([1.0 - frac_ox, frac_ox]).astype(np.float32)
    soc = soc_map(fractions=fractions, calibration=cal).soc
    soc_edge = soc_map(edge_map, calibration=cal).soc
    t_end = time.perf_counter()
    timings = {
        "setup": t_pass - t_start,
        "pass": t_done - t_pass,
        "finish": t_end - t_done,
        "total": t_end - t_start,
    }
    log.info(
        "analysed %s stack in %.3f s (e0=%.2f eV, %d/%d pixels in mask)",
        np.shape(mu), timings["total"], fit.e0, int(msk.sum()), p,
    )  # fmt: skip
    shp = spatial
    return XanesMaps(
        e0=e0_map.reshape(shp),
        edge_step=step_map.reshape(shp),
        edge_energy=edge_map.reshape(shp),
        fractions=fractions.reshape((2, *shp)),
        residual=resid.reshape(shp),
        soc=soc.reshape(shp),
        soc_edge=soc_edge.reshape(shp),
        mask=msk.reshape(shp),
        mask_threshold=thr,
        e0_global=fit.e0,
        pre_range=fit.pre_range,
        post_range=fit.post_range,
        nnorm=fit.nnorm,
        lcf_range=(float(e[fit_sl.start]), float(e[fit_sl.stop - 1])),
        calibration=cal,
        reference_names=names,
        norm=norm_out
        if norm_out is not None
        else (None if norm2 is None else norm2.reshape(np.shape(mu))),
        timings=timings,
        pre_edge=pre_edge.reshape((2, *shp)),
        edge_estimator=estimator_record(e, win),
    )
