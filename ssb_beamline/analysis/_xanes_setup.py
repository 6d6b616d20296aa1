"""Step 1 of :func:`~ssb_beamline.analysis.pipeline.analyse_xanes_stack`: the operators.

Everything the chunk kernels (:mod:`._xanes_chunks`) need that does not depend on
the pixels: the references on the scan's energies, the normalisation (edge fit),
the LCF and joint-fit projection weights, the edge-window tables and the SOC
calibration.  Built once per stack, read-only while the chunks run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from ._uniform import uniform_step
from .edge_fit import EDGE_WINDOW_EV, EdgeFit, build_edge_fit, find_e0
from .joint_sums import JointFitSums, sums_to_coefficients
from .lcf import normalize_references, reference_matrix
from .soc import SocCalibration

__all__ = ["XanesOperators", "XanesSettings", "build_operators", "lcf_slice"]


@dataclass(frozen=True)
class XanesSettings:
    """The normalisation / LCF options of one analysis (see ``analyse_xanes_stack``)."""

    e0: float | None = None
    pre: tuple[float, float] | None = None
    post: tuple[float, float] | None = None
    nnorm: int | None = None
    edge_window: tuple[float, float] = EDGE_WINDOW_EV
    lcf_range: tuple[float, float] | None = None
    reference_energies: np.ndarray | None = None
    calibration: SocCalibration | None = None
    normalization: Literal["references", "edge_fit"] = "references"
    derivative_e0: bool = True


@dataclass(frozen=True)
class XanesOperators:
    """Pixel-independent operators of one stack (float32 where used per chunk).

    ``weights`` (8, N): rows pre-line p0, slope p1, edge step, then the projections
    on the LCF basis ``[1, x, r0, d]`` over ``fit_sl`` (and a zero row that pads
    the product to a faster BLAS shape); ``gram`` is that basis' Gram matrix.
    ``jw32`` / ``jg32``: the joint fit ``mu = a + b x + c0 R0 + c1 R1`` (solve
    weights and Gram); ``sums_to_coef`` maps accumulated joint sums to its
    coefficients.  ``uniform_window`` = (first energy, step, first x, x step)
    when the edge window is uniformly spaced (one compiled sweep).
    """

    e: np.ndarray
    n: int
    p: int
    fit: EdgeFit
    fit_sl: slice
    names: tuple[str, ...]
    calibration: SocCalibration
    ref_steps: np.ndarray
    by_refs: bool
    derivative_e0: bool
    weights: np.ndarray
    gram: np.ndarray
    lcf_sums: tuple[float, float, float, float]  # sum(d), d.x, d.r0, d.d
    thr_w: np.ndarray
    line_all: np.ndarray
    uniform_window: tuple[float, float, float, float] | None
    jw32: np.ndarray | None = None
    jg32: np.ndarray | None = None
    joint_sums: JointFitSums | None = None
    sums_to_coef: np.ndarray | None = None

    @property
    def win(self) -> slice:
        """The edge window (rows of the stack)."""
        return self.fit.window

    @property
    def ew(self) -> np.ndarray:
        """Energies of the edge window."""
        return self.e[self.fit.window]

    @property
    def xwin(self) -> np.ndarray:
        """Reduced energies of the edge window."""
        return self.fit.x[self.fit.window]

    @property
    def nfit(self) -> int:
        """Number of energies in the LCF range."""
        return self.fit_sl.stop - self.fit_sl.start


def _references(references, e: np.ndarray, reference_energies) -> tuple[object, np.ndarray]:
    """The references (default: shipped NiO / LiNiO2) and their matrix on ``e``."""
    if references is None:
        from ssb_beamline.reference_data import ni_k_edge_references

        references = ni_k_edge_references()
    refs = reference_matrix(references, e, reference_energies=reference_energies)
    if refs.shape[0] != 2:
        raise ValueError(
            f"analyse_xanes_stack fits exactly 2 references (reduced, oxidised); got "
            f"{refs.shape[0]}. Use lcf_map on normalize_stack(...).norm for K references."
        )
    return references, refs


def lcf_slice(e: np.ndarray, lcf_range: tuple[float, float] | None) -> slice:
    """Rows of ``e`` inside ``lcf_range`` (all rows for None).

    Examples
    --------
    >>> lcf_slice(np.arange(10.0), (2.0, 5.0))
    slice(2, 6, None)
    """
    if lcf_range is None:
        return slice(0, e.size)
    idx = np.flatnonzero((e >= lcf_range[0]) & (e <= lcf_range[1]))
    if idx.size < 3:
        raise ValueError(
            f"too few points: {idx.size} energies in lcf_range {lcf_range}. "
            "Widen lcf_range or measure more energies."
        )
    return slice(int(idx[0]), int(idx[-1]) + 1)


def _calibration(references, refs, fit: EdgeFit, names, settings) -> SocCalibration:
    """The SOC calibration: given, or from the references normalised like the data.

    The references are normalised with the *same* operators as the data, so a
    mixture of them normalises to a mixture of the normalised references with
    weights ``w_k ~ f_k * step_k``; fractions are converted back with the steps.
    With the joint fit the end-member edges are those of their own full-range
    normalisation.
    """
    if settings.calibration is not None:
        return settings.calibration
    ref_items = list(references) if not isinstance(references, np.ndarray) else [None, None]
    cal = replace(
        SocCalibration.from_references((refs[0], refs[1]), edge_fit=fit),
        reduced_name=names[0],
        oxidised_name=names[1],
        reduced_state=float(getattr(ref_items[0], "oxidation_state", 2.0)),
        oxidised_state=float(getattr(ref_items[1], "oxidation_state", 3.0)),
    )
    if settings.normalization == "references" and not isinstance(references, np.ndarray):
        own = SocCalibration.from_references(tuple(references))
        cal = replace(
            cal, reduced_edge_ev=own.reduced_edge_ev, oxidised_edge_ev=own.oxidised_edge_ev
        )
    return cal


def _lcf_weights(refs_norm: np.ndarray, fit: EdgeFit, fit_sl: slice, n: int):
    """The (8, N) weights, the LCF Gram matrix and the scalar sums of the edge-fit path."""
    r0 = refs_norm[0, fit_sl]
    d = refs_norm[1, fit_sl] - r0
    dd = float(d @ d)
    if dd <= 0:
        raise ValueError(
            "the two references are identical over the LCF range; they cannot be unmixed. "
            "Pass distinct reduced and oxidised references."
        )
    xf = fit.x[fit_sl]
    # One matrix product per chunk gives every linear quantity (rows of ``weights``):
    # pre-line p0 (at e0) and slope p1, edge step, and the projections of the
    # spectrum on the LCF/residual basis [1, x, r0, d] over the fit range.
    basis = np.stack([np.ones_like(xf), xf, r0, d], axis=1)  # (nfit, 4)
    proj_rows = np.zeros((4, n))
    proj_rows[:, fit_sl] = basis.T
    # (8, N): the 8th (zero) row pads the product to a faster BLAS kernel shape
    weights = np.vstack([fit.weights, proj_rows, np.zeros((1, n))]).astype(np.float32)
    sums = (float(d.sum()), float(d @ xf), float(d @ r0), dd)
    return weights, basis.T @ basis, sums


def _joint_weights(refs_full: np.ndarray, fit: EdgeFit, fit_sl: slice, n: int):
    """Solve weights (4, N) and Gram (4, 4) of the joint fit over the fit range."""
    xf = fit.x[fit_sl]
    jb = np.stack([np.ones_like(xf), xf, refs_full[0, fit_sl], refs_full[1, fit_sl]], axis=1)
    jg = jb.T @ jb
    jw = np.zeros((4, n))
    jw[:, fit_sl] = np.linalg.solve(jg, jb.T)
    return jw, jg


def _window_tables(e: np.ndarray, fit: EdgeFit):
    """Half-step threshold weights, the full pre-line basis and the uniform-grid key."""
    ew, xwin = e[fit.window], fit.x[fit.window]
    nwin = ew.size
    # threshold of the half step in mu units: p0 + p1 x + step / 2
    thr_w = np.stack([np.ones(nwin), xwin, np.full(nwin, 0.5)], axis=1).astype(np.float32)
    line_all = np.stack([np.ones(e.size), fit.x], axis=1).astype(np.float32)
    uniform_window = None
    h_win = uniform_step(ew)
    if h_win is not None and 6 <= nwin < 256 and uniform_step(xwin) is not None:
        uniform_window = (float(ew[0]), h_win, float(xwin[0]), float(xwin[1] - xwin[0]))
    return thr_w, line_all, uniform_window


def build_operators(
    mu2: np.ndarray,
    e: np.ndarray,
    references: object,
    settings: XanesSettings,
    mask: np.ndarray | None = None,
    joint_sums: JointFitSums | None = None,
) -> XanesOperators:
    """Build the operators of a checked ``(N, P)`` stack (see ``analyse_xanes_stack``).

    Examples
    --------
    >>> from ssb_beamline.reference_data import ni_k_edge_references
    >>> e = np.arange(8300.0, 8450.0, 1.0)
    >>> mu2 = np.ones((e.size, 4), np.float32)
    >>> ops = build_operators(mu2, e, ni_k_edge_references(), XanesSettings(e0=8345.0))
    >>> ops.weights.shape, ops.by_refs, ops.uniform_window is not None
    ((8, 150), True, True)
    """
    if settings.normalization not in ("references", "edge_fit"):
        raise ValueError(
            f"normalization must be 'references' or 'edge_fit'; got {settings.normalization!r}."
        )
    by_refs = settings.normalization == "references"
    if joint_sums is not None and not by_refs:
        raise ValueError(
            "joint_sums apply to normalization='references' only; drop joint_sums or "
            "use the default normalization."
        )
    references, refs = _references(references, e, settings.reference_energies)
    names = tuple(str(getattr(r, "name", f"ref{k}")) for k, r in enumerate(references))
    e0 = find_e0(e, mu2, mask=mask) if settings.e0 is None else settings.e0
    fit = build_edge_fit(
        e,
        float(e0),
        pre=settings.pre,
        post=settings.post,
        nnorm=settings.nnorm,
        edge_window=settings.edge_window,
    )
    n, p = mu2.shape
    cal = _calibration(references, refs, fit, names, settings)
    fit_sl = lcf_slice(e, settings.lcf_range)
    refs_norm, ref_steps = normalize_references(refs, fit)
    weights, gram, lcf_sums = _lcf_weights(refs_norm, fit, fit_sl, n)
    thr_w, line_all, uniform_window = _window_tables(e, fit)
    ops = XanesOperators(
        e=e, n=n, p=p, fit=fit, fit_sl=fit_sl, names=names, calibration=cal,
        ref_steps=ref_steps, by_refs=by_refs, derivative_e0=settings.derivative_e0,
        weights=weights, gram=gram, lcf_sums=lcf_sums, thr_w=thr_w, line_all=line_all,
        uniform_window=uniform_window,
    )  # fmt: skip
    if not by_refs:
        return ops
    jw, jg = _joint_weights(refs, fit, fit_sl, n)
    coef = None
    if joint_sums is not None:
        coef = sums_to_coefficients(joint_sums, e, fit.e0, jg, fit_sl, p)
    return replace(
        ops,
        jw32=jw.astype(np.float32),
        jg32=jg.astype(np.float32),
        joint_sums=joint_sums,
        sums_to_coef=coef,
    )
