"""Pre-/post-edge normalisation of a XANES stack (larch ``pre_edge`` definitions)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ._kernels import derivative_max_block, scratch
from ._parallel import DEFAULT_CHUNK_PIXELS, run_chunks
from ._validation import check_mask, check_stack, output_array
from .edge_fit import EDGE_WINDOW_EV, EdgeFit, build_edge_fit, find_e0

__all__ = ["NormalizedStack", "normalize_chunk", "normalize_stack"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NormalizedStack:
    """Result of :func:`normalize_stack`.

    Attributes
    ----------
    norm : ndarray of float32, shape (N, ...)
        ``(mu - pre_line(E)) / edge_step``; 0.0 where ``valid`` is False.
    e0 : ndarray of float32, shape (...)
        Per-pixel e0: maximum of the smoothed derivative in the edge window.
    edge_step : ndarray of float32, shape (...)
        ``post(e0) - pre(e0)`` evaluated at the global ``e0_global``.
    valid : ndarray of bool, shape (...)
        Inside ``mask`` (if given) and with a positive, finite edge step.
    e0_global : float
        The e0 used for the fit ranges and the edge step.
    pre_range, post_range : tuple of float
        Energy ranges (eV, inclusive) of the pre- and post-edge fits.
    nnorm : int
        Degree of the post-edge polynomial.
    edge_fit : EdgeFit
        The linear operators used; pass it to :func:`lcf_map` (``edge_fit=``)
        so the references are normalised the same way.
    """

    norm: np.ndarray
    e0: np.ndarray
    edge_step: np.ndarray
    valid: np.ndarray
    e0_global: float
    pre_range: tuple[float, float]
    post_range: tuple[float, float]
    nnorm: int
    edge_fit: EdgeFit | None = None


def normalize_chunk(
    x_block: np.ndarray,
    fit: EdgeFit,
    coefs: np.ndarray,
    out: np.ndarray,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Write ``(mu - (p0 + p1 * x)) / step`` for a block of pixels into ``out``.

    ``coefs`` is ``fit.weights @ x_block`` (rows p0, p1, step).  Pixels whose
    step is not positive, or where ``valid`` is False, get 0.0.

    Parameters
    ----------
    x_block : numpy.ndarray, shape (N, P)
        Absorbance of P pixels over all N energies of the stack (axis 0 energy).
    fit : EdgeFit
        Pre-/post-edge operators over the same N energies; another count raises
        ``ValueError``.
    coefs : numpy.ndarray, shape (3, P)
        ``fit.weights @ x_block``: rows pre-edge offset p0, slope p1 and edge step.
    out : numpy.ndarray, shape (N, P)
        Where the normalised block is written (float32; may be a view of a larger
        array).
    valid : numpy.ndarray of bool, shape (P,), optional
        Pixels to normalise; the others are written as 0.0. None: all pixels.

    Returns
    -------
    numpy.ndarray
        ``out``, filled.

    Examples
    --------
    >>> e = np.arange(8300.0, 8450.0, 1.0)
    >>> fit = build_edge_fit(e, 8345.0)
    >>> mu = (np.where(e > 8345, 1.5, 0.5))[:, None].astype(np.float32)
    >>> out = normalize_chunk(mu, fit, fit.weights @ mu, np.empty_like(mu))
    >>> float(out[0, 0]), float(out[-1, 0])
    (0.0, 1.0)
    """
    if x_block.shape[0] != fit.x.size:
        raise ValueError(
            f"x_block has {x_block.shape[0]} energies but the fit has {fit.x.size}. "
            "Pass all energies of the stack (axis 0)."
        )
    line = np.stack([np.ones_like(fit.x), fit.x], axis=1).astype(np.float32)  # (N, 2)
    # build in a cached scratch block, write ``out`` (often a large array) once
    tmp = np.matmul(line, coefs[:2], out=scratch("normalize_tmp", out.shape))
    np.subtract(x_block, tmp, out=tmp)
    step = coefs[2]
    inv = np.zeros(step.shape, np.float32)
    np.divide(1.0, step, out=inv, where=step > 0)
    if valid is not None:
        inv[~valid] = 0.0
    np.multiply(tmp, inv, out=out)
    return out


def normalize_stack(  # noqa: PLR0913 -- keyword-only options of the public scientific API (xraylarch pre_edge names)
    mu: np.ndarray,
    energies: np.ndarray,
    *,
    e0: float | None = None,
    pre: tuple[float, float] | None = None,
    post: tuple[float, float] | None = None,
    nnorm: int | None = None,
    mask: np.ndarray | None = None,
    edge_window: tuple[float, float] = EDGE_WINDOW_EV,
    out: np.ndarray | None = None,
    chunk_pixels: int = DEFAULT_CHUNK_PIXELS,
    workers: int | None = None,
) -> NormalizedStack:
    """Normalise every spectrum of a stack: pre-edge 0, edge step 1.

    One global e0 (``e0``, or the derivative maximum of the mean spectrum over
    ``mask``) fixes the fit ranges for all pixels, so the fits are one matrix
    product per pixel chunk.  See :mod:`ssb_beamline.analysis.edge_fit` for the
    definitions and defaults (pre ``(E[0], e0 - 15)``, post ``(e0 + 25, E[-1])``,
    larch's rule for ``nnorm``).

    Parameters
    ----------
    mu : ndarray, shape (N,) or (N, H, W)
        Absorbance, energy along axis 0.
    energies : ndarray, shape (N,)
        Strictly increasing energies, eV.
    e0 : float, optional
        Global edge energy (eV) for the ranges and the edge step.
    pre, post : (float, float), optional
        Absolute energy ranges (eV) of the pre-edge line and post-edge fit.
    nnorm : int, optional
        Post-edge polynomial degree.
    mask : ndarray of bool, shape (H, W), optional
        Pixels used for the mean spectrum; pixels outside are marked invalid.
    edge_window : (float, float)
        Energies relative to e0 searched for the per-pixel e0 map.
    out : ndarray of float32, optional
        Preallocated output for ``norm`` with the shape of ``mu``.
    chunk_pixels, workers : int
        Pixels per chunk and worker threads.

    Returns
    -------
    NormalizedStack

    Examples
    --------
    >>> e = np.arange(8300.0, 8450.0, 1.0)
    >>> mu = 0.2 + 0.8 / (1 + np.exp(-(e - 8345.0) / 2.0))
    >>> res = normalize_stack(mu, e)
    >>> round(res.e0_global, 1), round(float(res.edge_step), 2)
    (8345.0, 0.8)
    >>> round(float(res.norm[-1]), 2)
    1.0
    """
    mu2, e, spatial = check_stack(mu, energies, name="mu", min_points=5)
    m = check_mask(mask, spatial)
    if e0 is None:
        e0 = find_e0(e, mu2, mask=None if m is None else m.reshape(-1))
    fit = build_edge_fit(e, float(e0), pre=pre, post=post, nnorm=nnorm, edge_window=edge_window)
    n, p = mu2.shape
    norm = output_array(out, np.shape(mu)).reshape(n, p)
    e0_map = np.empty(p, np.float32)
    step_map = np.empty(p, np.float32)
    weights = fit.weights
    win = fit.window
    ew = e[win]

    def work(s: slice) -> None:
        xb = mu2[:, s]
        if xb.dtype != np.float32:
            xb = xb.astype(np.float32)
        coefs = weights @ xb
        step_map[s] = coefs[2]
        normalize_chunk(xb, fit, coefs, norm[:, s], None if m is None else m[s])
        e0_map[s] = derivative_max_block(xb[win], ew)

    run_chunks(work, p, chunk_pixels, workers)
    valid = np.isfinite(step_map) & (step_map > 0)
    if m is not None:
        valid &= m
    log.info("normalised %d spectra: e0=%.2f eV, %d invalid", p, fit.e0, int(p - valid.sum()))
    shape = np.shape(mu)
    return NormalizedStack(
        norm=norm.reshape(shape) if out is None else out,
        e0=e0_map.reshape(spatial),
        edge_step=step_map.reshape(spatial),
        valid=valid.reshape(spatial),
        e0_global=fit.e0,
        pre_range=fit.pre_range,
        post_range=fit.post_range,
        nnorm=fit.nnorm,
        edge_fit=fit,
    )
