"""Step 2 of :func:`~ssb_beamline.analysis.pipeline.analyse_xanes_stack`: the chunk kernels.

One kernel per normalisation, each turning a pixel chunk ``mu2[:, s]`` of the
``(N, P)`` stack into the per-pixel quantities of :class:`XanesOutputs`:

* :func:`joint_fit_chunk` (``normalization="references"``): the joint fit
  ``mu = a + b x + c0 R0 + c1 R1`` from one product (or from the sums
  accumulated during the scan);
* :func:`edge_fit_chunk` (``normalization="edge_fit"``): pre-/post-edge line,
  edge step and the closed-form two-reference LCF from one product;

both finished by :func:`edge_and_norm` (half-step and derivative-maximum edge
energies over the edge window, and the normalised stack if asked).
:func:`chunk_kernel` picks the kernel of a stack: on the default case (joint
fit, uniform edge window, C-contiguous float32 stack) the compiled
:func:`~._kernels_joint.joint_pass`, which does all of it in one read of
the chunk.  Work on
``D = mu - mu[first energy]``: every quantity is affine-equivariant (only p0
shifts), and the small values keep the float32 sums accurate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._page_mapping import PageMapping, pooled_empty_many
from ._fused import subtract_project, write_normalized
from ._jit import edge_window_uniform
from ._kernels import count_below, derivative_max_block, half_step_from_count
from ._kernels_joint import joint_pass, joint_scratch
from ._scratch import scratch
from ._xanes_setup import XanesOperators

__all__ = [
    "XanesOutputs",
    "chunk_kernel",
    "edge_and_norm",
    "edge_fit_chunk",
    "joint_fit_chunk",
]


@dataclass
class XanesOutputs:
    """Flat (P,) per-pixel outputs of the pass, written chunk by chunk.

    ``frac_ox`` is row 1 of ``fractions``; ``soc``, ``soc_edge``, ``mask`` and row 0
    of ``fractions`` are filled by :func:`~.pipeline.finish_maps`. Every array the
    maps return is allocated here, with :func:`~ssb_beamline._page_mapping.pooled_empty_many`:
    a repeated call reuses the pages of the last call's maps once they are dropped;
    a first call's fresh pages are mapped by background threads (``mapping``) while
    the call builds its operators, and :meth:`wait_mapped` waits for them.
    """

    e0: np.ndarray
    step: np.ndarray
    edge: np.ndarray
    frac_ox: np.ndarray
    resid: np.ndarray
    ok: np.ndarray
    pre_edge: np.ndarray  # (2, P): pre-edge line, absorbance at e0 and slope
    fractions: np.ndarray  # (2, P): reduced, oxidised (row 1 is frac_ox)
    soc: np.ndarray
    soc_edge: np.ndarray
    mask: np.ndarray
    norm: np.ndarray | None = None  # (N, P) normalised stack, if asked
    mapping: PageMapping | None = None  # fresh pages being mapped in the background

    @classmethod
    def allocate(cls, p: int, norm: np.ndarray | None = None) -> XanesOutputs:
        """Uninitialised outputs for ``p`` pixels (``norm``: the (N, P) output or None).

        Returns at once: fresh pages are mapped in the background (:meth:`wait_mapped`).
        """
        f32, b = np.float32, np.bool_
        # the largest first: the background threads split the bytes in this order
        specs = [((2, p), f32), ((2, p), f32)] + [((p,), f32)] * 6 + [((p,), b)] * 2
        arrays, mapping = pooled_empty_many(specs)
        fractions, pre_edge, e0, step, edge, resid, soc, soc_edge, ok, mask = arrays
        maps = (e0, step, edge, fractions[1], resid, ok, pre_edge, fractions)
        return cls(*maps, soc, soc_edge, mask, norm, mapping)

    def wait_mapped(self) -> None:
        """Return once the background mapping of fresh pages (if any) has finished."""
        if self.mapping is not None:
            self.mapping.wait()


ChunkKernel = Callable[[XanesOperators, XanesOutputs, np.ndarray, slice], None]

_NO_NORM = np.empty((0, 0), np.float32)


def _compiled_ok(a: np.ndarray | None) -> bool:
    return a is None or (a.dtype == np.float32 and a.flags.c_contiguous)


def chunk_kernel(ops: XanesOperators, mu2: np.ndarray, norm: np.ndarray | None) -> ChunkKernel:
    """The chunk kernel of a stack: compiled where it applies, else numpy.

    :func:`~._kernels_joint.joint_pass` takes the joint fit (no accumulated
    sums) on a uniform edge window, for a C-contiguous float32 stack and
    normalised output; everything else runs :func:`joint_fit_chunk` or
    :func:`edge_fit_chunk`.
    """
    if not ops.by_refs:
        return edge_fit_chunk
    fused = ops.uniform_window is not None and ops.joint_sums is None
    if not (fused and mu2.ndim == 2 and _compiled_ok(mu2) and _compiled_ok(norm)):
        return joint_fit_chunk
    e_first, h, xl0, dxl = ops.uniform_window
    in_fit = np.zeros(ops.n, np.float32)
    in_fit[ops.fit_sl] = 1.0
    fit = (in_fit, 1.0 / ops.nfit)
    window = (ops.win.start, ops.win.stop)
    grid = (e_first, h, xl0, dxl, np.ascontiguousarray(ops.line_all[:, 1]))
    work = threading.local()  # each thread's scratch, by chunk length

    def compiled(ops: XanesOperators, out: XanesOutputs, mu2: np.ndarray, s: slice) -> None:
        outputs = (out.pre_edge, out.frac_ox, out.step, out.resid, out.ok, out.edge, out.e0)
        norm = _NO_NORM if out.norm is None else out.norm
        mine = work.__dict__.setdefault("by_length", {})
        scratch = mine.get(s.stop - s.start)
        if scratch is None:
            scratch = mine[s.stop - s.start] = joint_scratch(s.start, s.stop, window)
        joint_pass(
            mu2, s.start, s.stop, ops.jw32, ops.jg32, fit, window, grid,
            ops.derivative_e0, norm, outputs, scratch,
        )  # fmt: skip

    return compiled


def _inverse_step(step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``1 / step`` (0 where the step is not finite and positive) and that validity."""
    ok = np.isfinite(step) & (step > 0)
    inv = np.zeros(step.shape[0], np.float32)
    np.divide(1.0, step, out=inv, where=ok)
    return inv, ok


def joint_fit_chunk(ops: XanesOperators, out: XanesOutputs, mu2: np.ndarray, s: slice) -> None:
    """Joint fit of the pixels ``s``: pre-line, edge step, fraction, residual, edges."""
    xb = mu2[:, s]
    npx = xb.shape[1]
    sums = ops.joint_sums
    if sums is None:
        dblk, cj, ss = subtract_project(xb, ops.jw32, ops.fit_sl)
        dw = dblk[ops.win]
        ref = xb[0]
    else:  # coefficients from the sums accumulated during the scan
        cj = np.matmul(ops.sums_to_coef, sums.projections[:, s]).astype(np.float32)
        ss = sums.sum_squares[s].copy()
        ref = sums.reference_frame[s]
        nwin = ops.ew.size
        dw = np.subtract(xb[ops.win], ref, out=scratch("window_minus_ref", (nwin, npx)))
        dblk = None
        if out.norm is not None:
            dblk = np.subtract(xb, ref, out=scratch("mu_minus_ref", (ops.n, npx)))
    p0, p1 = cj[0], cj[1]
    np.add(p0, ref, out=out.pre_edge[0, s])
    out.pre_edge[1, s] = p1
    step = cj[2] + cj[3]
    inv, ok = _inverse_step(step)
    out.frac_ox[s] = np.clip(cj[3] * inv, 0.0, 1.0)
    out.step[s] = step
    # RMS residual in closed form: |D|^2 - c^T G c (c = G^-1 B^T D)
    ss -= np.einsum("kp,kp->p", cj, ops.jg32 @ cj).astype(np.float64)
    np.maximum(ss, 0.0, out=ss)
    out.resid[s] = np.sqrt(ss * (1.0 / ops.nfit)) * inv
    edge_and_norm(ops, out, s, dw, dblk, np.stack([p0, p1, step]), inv, ok)


def edge_fit_chunk(ops: XanesOperators, out: XanesOutputs, mu2: np.ndarray, s: slice) -> None:
    """Edge-fit normalisation and closed-form LCF of the pixels ``s``.

    The fraction written is the step-weighted LCF weight of the oxidised
    reference; :func:`~ssb_beamline.analysis.pipeline.finish_maps` converts it
    to an atomic fraction.
    """
    xb = mu2[:, s]
    dblk, c, ss = subtract_project(xb, ops.weights, ops.fit_sl)
    p0, p1, step = c[0], c[1], c[2]
    np.add(p0, xb[0], out=out.pre_edge[0, s])
    out.pre_edge[1, s] = p1
    inv, ok = _inverse_step(step)
    sum_d, sum_dx, d_r0, dd = ops.lcf_sums
    # LCF weight of the oxidised reference (closed form, clipped to [0, 1])
    f = c[6] - p0 * np.float32(sum_d)
    f -= p1 * np.float32(sum_dx)
    f *= inv
    f -= np.float32(d_r0)
    f *= np.float32(1.0 / dd)
    np.clip(f, 0.0, 1.0, out=f)
    out.frac_ox[s] = f
    out.step[s] = step
    # RMS residual |D - model|, model = p0 + p1 x + step (r0 + f d), in closed form:
    # |D|^2 - 2 c.(B^T D) + c^T G c with the projections B^T D from the product above
    cm = np.stack([p0, p1, step, step * f]).astype(np.float64)
    ss -= 2.0 * np.einsum("kp,kp->p", cm, c[3:7].astype(np.float64))
    ss += np.einsum("kp,kp->p", cm, ops.gram @ cm)
    np.maximum(ss, 0.0, out=ss)
    out.resid[s] = np.sqrt(ss * (1.0 / ops.nfit)) * inv
    edge_and_norm(ops, out, s, dblk[ops.win], dblk, c[:3], inv, ok)


def edge_and_norm(
    ops: XanesOperators,
    out: XanesOutputs,
    s: slice,
    dw: np.ndarray,
    dblk: np.ndarray | None,
    c3: np.ndarray,
    inv: np.ndarray,
    ok: np.ndarray,
) -> None:
    """Edge energies of the pixels ``s`` and their normalised spectra.

    ``dw`` is the edge window of ``D``, ``c3`` the rows (p0, p1, step) and
    ``inv = 1 / step`` (0 where ``ok`` is False).  Half step: the count of
    samples below ``p0 + p1 x + step / 2``, then a local line fit; and the
    derivative maximum (if ``ops.derivative_e0``).
    """
    npx = dw.shape[1]
    p0, p1 = c3[0], c3[1]
    out.ok[s] = ok
    if ops.uniform_window is not None:  # one compiled sweep over the window
        e_first, h, xl0, dxl = ops.uniform_window
        dwc = dw if dw.flags.c_contiguous else np.ascontiguousarray(dw)
        edge_window_uniform(
            dwc, p0, p1, c3[2], inv, xl0, dxl, e_first, h, ops.derivative_e0,
            out.edge[s], out.e0[s],
        )  # fmt: skip
    else:
        thr = np.matmul(ops.thr_w, c3, out=scratch("thr_win", (ops.ew.size, npx)))
        count = count_below(dw, thr)
        out.edge[s] = half_step_from_count(count, dw, ops.ew, line=(p0, p1, ops.xwin, inv))
        if ops.derivative_e0:
            out.e0[s] = derivative_max_block(dw, ops.ew)
    out.edge[s][~ok] = np.nan
    if ops.derivative_e0:
        out.e0[s][~ok] = np.nan
    else:
        out.e0[s] = np.nan
    if out.norm is not None:
        write_normalized(dblk, ops.line_all, c3[:2], inv, out.norm[:, s])
