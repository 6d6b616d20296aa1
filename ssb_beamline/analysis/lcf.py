"""Linear-combination fitting (LCF) of normalised spectra, vectorised over pixels."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ._parallel import DEFAULT_CHUNK_PIXELS, run_chunks
from ._validation import check_energies, check_mask, check_stack
from .edge_fit import EdgeFit

__all__ = ["LCFResult", "lcf_map", "normalize_references", "reference_matrix"]

log = logging.getLogger(__name__)

_MAX_K = 8


class LCFResult(NamedTuple):
    """Result of :func:`lcf_map`.

    Attributes
    ----------
    fractions : ndarray of float32, shape (K, ...)
        Weight of each reference per pixel (NaN outside ``mask``).
    residual : ndarray of float32, shape (...)
        RMS of ``norm - sum_k fractions_k * ref_k`` over the fitted energies.
    scale : ndarray of float32 or None
        Sum of the fractions when ``sum_to_one=False``; None otherwise.
    """

    fractions: np.ndarray
    residual: np.ndarray
    scale: np.ndarray | None = None


def reference_matrix(
    references: object,
    energies: np.ndarray,
    *,
    reference_energies: np.ndarray | None = None,
) -> np.ndarray:
    """Reference spectra sampled at ``energies`` as a (K, N) float64 matrix.

    Parameters
    ----------
    references :
        A (K, N) array already at ``energies``; or a (K, M) array at
        ``reference_energies``; or a sequence whose items are (energy, mu)
        pairs, objects with an ``.at(energies)`` method (e.g.
        :class:`~ssb_beamline.reference_data.ReferenceSpectrum`), or 1-D
        arrays at ``reference_energies`` / ``energies``.
    energies : ndarray, shape (N,)
        Target energies, eV.
    reference_energies : ndarray, optional
        Energies of array references when they differ from ``energies``.

    Examples
    --------
    >>> e = np.array([1.0, 2.0, 3.0])
    >>> reference_matrix([(np.array([0.0, 4.0]), np.array([0.0, 4.0]))], e).tolist()
    [[1.0, 2.0, 3.0]]
    """
    e = check_energies(energies, min_points=2)
    ref_e = None
    if reference_energies is not None:
        ref_e = check_energies(reference_energies, name="reference_energies")

    def one(item: object, k: int) -> np.ndarray:
        if hasattr(item, "at"):
            return np.asarray(item.at(e), np.float64)
        if isinstance(item, tuple) and len(item) == 2:
            ee = check_energies(item[0], name=f"references[{k}] energies")
            yy = np.asarray(item[1], np.float64)
            if yy.shape != ee.shape:
                raise ValueError(
                    f"references[{k}] has {ee.size} energies but {yy.size} values. "
                    "Pass (energy, mu) pairs of equal length."
                )
            _check_cover(ee, e, k)
            return np.interp(e, ee, yy)
        arr = np.asarray(item, np.float64)
        if arr.ndim != 1:
            raise ValueError(
                f"references[{k}] must be 1-D; got shape {arr.shape}. Pass one spectrum "
                "per reference."
            )
        if ref_e is not None:
            if arr.size != ref_e.size:
                raise ValueError(
                    f"references[{k}] has {arr.size} values but reference_energies has "
                    f"{ref_e.size}. Pass spectra sampled at reference_energies."
                )
            _check_cover(ref_e, e, k)
            return np.interp(e, ref_e, arr)
        if arr.size != e.size:
            raise ValueError(
                f"references[{k}] has {arr.size} values but there are {e.size} energies. "
                "Sample the references at the stack energies or pass reference_energies."
            )
        return arr

    if isinstance(references, np.ndarray) and references.ndim == 2:
        items: Sequence[object] = list(references)
    elif isinstance(references, Sequence) and not isinstance(references, str | bytes):
        items = list(references)
    else:
        raise TypeError(
            f"references must be a (K, N) array or a sequence of spectra; got "
            f"{type(references).__name__}. Pass e.g. ni_k_edge_references()."
        )
    if not items:
        raise ValueError("references is empty. Pass at least one reference spectrum.")
    mat = np.vstack([one(it, k) for k, it in enumerate(items)])
    if not np.all(np.isfinite(mat)):
        raise ValueError("references contain NaN or inf. Clean the reference spectra.")
    return mat


def _check_cover(ref_e: np.ndarray, e: np.ndarray, k: int) -> None:
    if e[0] < ref_e[0] - 1e-9 or e[-1] > ref_e[-1] + 1e-9:
        raise ValueError(
            f"references[{k}] covers {ref_e[0]:.1f}-{ref_e[-1]:.1f} eV but the stack spans "
            f"{e[0]:.1f}-{e[-1]:.1f} eV. Use references measured over the whole scan "
            "or restrict the stack energies."
        )


def normalize_references(refs: np.ndarray, edge_fit: EdgeFit) -> tuple[np.ndarray, np.ndarray]:
    """Normalise (K, N) reference spectra with the data's pre-/post-edge operators.

    Returns the normalised references and their edge steps (K,) under those
    operators.

    Parameters
    ----------
    refs : numpy.ndarray, shape (K, N)
        K reference spectra (absorbance) sampled on the scan's N energies.
    edge_fit : EdgeFit
        The pre-/post-edge operators built for the data (same energies, same
        ranges), so references and data are normalised alike.

    Returns
    -------
    normalized : numpy.ndarray, shape (K, N)
        References with pre-edge 0 and edge step 1.
    steps : numpy.ndarray, shape (K,)
        Edge step of each reference under those operators (absorbance).

    Raises
    ------
    ValueError
        If a reference has no positive edge step over the fit ranges (it does not
        cover the scan or the pre/post ranges).

    Examples
    --------
    >>> from ssb_beamline.analysis.edge_fit import build_edge_fit
    >>> e = np.arange(8300.0, 8450.0, 1.0)
    >>> ref = np.where(e > 8345, 2.0, 0.0)[None]
    >>> n, steps = normalize_references(ref, build_edge_fit(e, 8345.0))
    >>> round(float(n[0, -1]), 6), steps.round(3).tolist()
    (1.0, [2.0])
    """
    c = edge_fit.weights.astype(np.float64) @ refs.T  # (3, K): p0, p1, step
    steps = c[2]
    if np.any(steps <= 0):
        raise ValueError(
            f"a reference has no positive edge step over the fit ranges (steps {steps}). "
            "Check that the references cover the scan and the pre/post ranges."
        )
    normed = (refs - c[0][:, None] - c[1][:, None] * edge_fit.x[None, :]) / steps[:, None]
    return normed, steps


class _Subset(NamedTuple):
    idx: np.ndarray  # reference indices in the subset
    a: np.ndarray  # (|S|, |S|) operator on b_S
    c: np.ndarray  # (|S|,) constant


def _subsets(gram: np.ndarray, sum_to_one: bool, nonnegative: bool) -> list[_Subset]:
    k = gram.shape[0]
    if nonnegative:
        combos = [c for r in range(1, k + 1) for c in itertools.combinations(range(k), r)]
    else:
        combos = [tuple(range(k))]
    out = []
    for combo in combos:
        idx = np.array(combo)
        ginv = np.linalg.pinv(gram[np.ix_(idx, idx)])
        if sum_to_one:
            one = np.ones(idx.size)
            g1 = ginv @ one
            den = float(one @ g1)
            # c = Ginv b - g1 (1^T Ginv b - 1) / den
            a = ginv - np.outer(g1, one @ ginv) / den
            c = g1 / den
        else:
            a, c = ginv, np.zeros(idx.size)
        out.append(_Subset(idx, a, c))
    return out


def solve_lcf_block(
    y: np.ndarray,
    refs: np.ndarray,
    subsets: list[_Subset],
    gram: np.ndarray,
    *,
    nonnegative: bool,
    sum_to_one: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve the LCF for a block ``y`` (n, P) -> (coefficients (K, P), RMS residual (P,)).

    Closed form per active set: every candidate support (all non-empty subsets
    for ``nonnegative``) is solved for all pixels at once from the shared Gram
    matrix; per pixel the feasible candidate with the smallest quadratic cost
    wins (this is the exact constrained optimum: the optimum is the
    unconstrained optimum on its own support).
    """
    k, p = refs.shape[0], y.shape[1]
    b = (refs.astype(np.float32) @ y).astype(np.float64)  # (K, P)
    best_cost = np.full(p, np.inf)
    coef = np.zeros((k, p))
    if nonnegative and not sum_to_one:
        best_cost[:] = 0.0  # the empty support (all zero) is feasible with cost 0
    for sub in subsets:
        cs = sub.a @ b[sub.idx] + sub.c[:, None]
        g = gram[np.ix_(sub.idx, sub.idx)]
        cost = np.einsum("ip,ip->p", cs, g @ cs) - 2.0 * np.einsum("ip,ip->p", cs, b[sub.idx])
        ok = cost < best_cost
        if nonnegative:
            ok &= np.all(cs >= -1e-9, axis=0)
        best_cost = np.where(ok, cost, best_cost)
        coef[:, ok] = 0.0
        coef[np.ix_(sub.idx, np.flatnonzero(ok))] = cs[:, ok]
    if nonnegative:
        np.maximum(coef, 0.0, out=coef)
    model = refs.T.astype(np.float32) @ coef.astype(np.float32)
    np.subtract(y, model, out=model)
    model *= model
    rms = np.sqrt(model.sum(axis=0, dtype=np.float64) / y.shape[0])
    return coef, rms


def lcf_map(  # noqa: PLR0913 -- keyword-only options of the public scientific API
    mu_norm: np.ndarray,
    energies: np.ndarray,
    references: object,
    *,
    reference_energies: np.ndarray | None = None,
    sum_to_one: bool = True,
    nonnegative: bool = True,
    fit_range: tuple[float, float] | None = None,
    mask: np.ndarray | None = None,
    edge_fit: EdgeFit | None = None,
    chunk_pixels: int = DEFAULT_CHUNK_PIXELS,
    workers: int | None = None,
) -> LCFResult:
    """Per-pixel linear combination of K reference spectra.

    Minimises ``|| norm - sum_k f_k ref_k ||^2`` over the energies in
    ``fit_range`` (default: all), optionally with ``sum_k f_k = 1`` and
    ``f_k >= 0``.  The normal equations share one Gram matrix across pixels;
    constraints are handled by an exact active-set enumeration over the small
    K (at most 8), vectorised over pixels: no per-pixel optimiser.  For K = 2
    with both constraints this is a 1-D projection clipped to [0, 1].

    Parameters
    ----------
    mu_norm : ndarray, shape (N,) or (N, H, W)
        Normalised absorbance.
    energies : ndarray, shape (N,)
        Strictly increasing energies, eV.
    references :
        See :func:`reference_matrix`.
    reference_energies : ndarray, optional
        Energies of array references if not ``energies``.
    sum_to_one, nonnegative : bool
        Constraints.
    fit_range : (float, float), optional
        Energy range (eV, inclusive) used in the fit.
    mask : ndarray of bool, optional
        Pixels to fit; others get NaN fractions and residual.
    edge_fit : EdgeFit, optional
        The normalisation of ``mu_norm`` (``normalize_stack(...).edge_fit``).
        The references are then normalised with the same pre-/post-edge
        operators before fitting, and the weights are converted to fractions
        of the absorbing atoms (``f_k ~ w_k / step_k``), which makes the
        fractions exact for mixtures of the references whatever the
        normalisation ranges.  Without it the references are used as given
        (they should be normalised like the data).
    chunk_pixels : int
        Pixels per chunk of the computation (bounds the memory of temporaries).
    workers : int, optional
        Threads over chunks (default: all cores).

    Returns
    -------
    LCFResult

    Examples
    --------
    >>> e = np.linspace(0.0, 1.0, 5)
    >>> refs = np.array([np.ones(5), e])
    >>> mix = 0.3 * refs[0] + 0.7 * refs[1]
    >>> res = lcf_map(mix, e, refs)
    >>> np.round(res.fractions.astype(float), 3).tolist(), round(float(res.residual), 6)
    ([0.3, 0.7], 0.0)
    """
    y2, e, spatial = check_stack(mu_norm, energies, name="mu_norm", min_points=2)
    m = check_mask(mask, spatial)
    refs = reference_matrix(references, e, reference_energies=reference_energies)
    k = refs.shape[0]
    ref_steps = None
    if edge_fit is not None:
        if edge_fit.energies.shape != e.shape or not np.allclose(edge_fit.energies, e):
            raise ValueError(
                "edge_fit was built for other energies than mu_norm's. Pass the edge_fit of "
                "the normalize_stack call that produced mu_norm."
            )
        refs, ref_steps = normalize_references(refs, edge_fit)
    if k > _MAX_K and nonnegative:
        raise ValueError(
            f"{k} references are too many for the exact non-negative solver (max {_MAX_K}). "
            "Reduce the references or pass nonnegative=False."
        )
    sel = np.arange(e.size)
    if fit_range is not None:
        sel = np.flatnonzero((e >= fit_range[0]) & (e <= fit_range[1]))
    if sel.size < k + 1:
        raise ValueError(
            f"too few points: {sel.size} energies in the fit range for {k} references. "
            "Widen fit_range or measure more energies."
        )
    r_fit = refs[:, sel]
    gram = r_fit @ r_fit.T
    subsets = _subsets(gram, sum_to_one, nonnegative)
    p = y2.shape[1]
    fractions = np.empty((k, p), np.float32)
    residual = np.empty(p, np.float32)
    contiguous = sel.size == e.size

    def work(s: slice) -> None:
        yb = y2[:, s] if contiguous else y2[sel, s]
        yb = yb.astype(np.float32, copy=False)
        coef, rms = solve_lcf_block(
            yb, r_fit, subsets, gram, nonnegative=nonnegative, sum_to_one=sum_to_one
        )
        fractions[:, s] = coef
        residual[s] = rms

    run_chunks(work, p, chunk_pixels, workers)
    if m is not None:
        fractions[:, ~m] = np.nan
        residual[~m] = np.nan
    if ref_steps is not None:
        atoms = fractions / ref_steps[:, None].astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            atoms *= fractions.sum(axis=0) / atoms.sum(axis=0)
        fractions = np.where(np.isfinite(atoms), atoms, 0.0).astype(np.float32)
        if m is not None:
            fractions[:, ~m] = np.nan
    scale = None if sum_to_one else fractions.sum(axis=0).reshape(spatial)
    return LCFResult(fractions.reshape((k, *spatial)), residual.reshape(spatial), scale)
