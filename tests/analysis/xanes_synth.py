"""Synthetic Ni K-edge XANES data for the analysis tests (mixtures of the real references)."""

from __future__ import annotations

import numpy as np

from ssb_beamline.analysis import absorbance, build_edge_fit
from ssb_beamline.reference_data import ni_k_edge_references

REFS = ni_k_edge_references()


def scan_energies(n: int = 100) -> np.ndarray:
    """Typical TXM scan: 3 eV pre-edge, ~0.43 eV across the edge, 4.5 eV post-edge."""
    pre = np.linspace(8300.0, 8330.0, n // 10, endpoint=False)
    edge = np.linspace(8330.0, 8360.0, n - n // 10 - n // 5, endpoint=False)
    post = np.linspace(8360.0, 8450.0, n // 5)
    return np.concatenate([pre, edge, post])


def mixture(energies: np.ndarray, frac_ox: np.ndarray | float) -> np.ndarray:
    """Normalised mixture (1 - f) NiO + f LiNiO2 at ``energies``; shape (N, *f.shape)."""
    f = np.asarray(frac_ox, float)
    r0, r1 = (r.at(energies) for r in REFS)
    return r0.reshape((-1,) + (1,) * f.ndim) + f[None] * (r1 - r0).reshape((-1,) + (1,) * f.ndim)


def mu_stack(
    energies: np.ndarray, frac_ox: np.ndarray, step: np.ndarray | float, base: float = 0.3
) -> np.ndarray:
    """Noiseless absorbance ``base + step * mixture`` (float64)."""
    return base + np.asarray(step, float)[None] * mixture(energies, frac_ox)


def poisson_absorbance(mu: np.ndarray, counts: float = 1e4, seed: int = 0) -> np.ndarray:
    """Absorbance with Poisson noise: flat ~ counts, frame ~ counts * exp(-mu), dark 100."""
    rng = np.random.default_rng(seed)
    dark = np.full(mu.shape[1:], 100, np.uint16)
    flat = (rng.poisson(counts, mu.shape) + 100).astype(np.uint16)
    frames = (rng.poisson(counts * np.exp(-mu)) + 100).astype(np.uint16)
    res = absorbance(frames, np.broadcast_to(dark, mu.shape), flat)
    assert res.valid.all()
    return res.values


def true_half_step(
    energies: np.ndarray, mu_noiseless: np.ndarray, e0: float, level: float = 0.5
) -> float:
    """Half-step energy of a noiseless spectrum by fine (0.005 eV) interpolation.

    The pre-line and edge step are those of the scan-grid normalisation (so the
    test isolates the crossing estimator); the spectrum between samples is
    the reference's own (fine) interpolation.
    """
    fit = build_edge_fit(energies, e0)
    p0, p1, step = fit.weights.astype(float) @ mu_noiseless
    # recover base and step*mixture: mu = base + s * mix, linear in the refs
    r0, r1 = (r.at(energies) for r in REFS)
    a = np.stack([np.ones_like(r0), r0, r1 - r0], axis=1)
    coef, *_ = np.linalg.lstsq(a, mu_noiseless, rcond=None)
    fine = np.arange(e0 - 15.0, e0 + 10.0, 0.005)
    f0, f1 = (r.at(fine) for r in REFS)
    mu_f = coef[0] + coef[1] * f0 + coef[2] * (f1 - f0)
    norm_f = (mu_f - p0 - p1 * (fine - e0) / 50.0) / step
    i = int(np.flatnonzero(norm_f >= level)[0])
    t = (level - norm_f[i - 1]) / (norm_f[i] - norm_f[i - 1])
    return float(fine[i - 1] + t * (fine[i] - fine[i - 1]))


#: Every per-pixel map of :func:`~ssb_beamline.analysis.analyse_xanes_stack`.
MAP_NAMES = ("e0", "edge_step", "edge_energy", "fractions", "residual", "soc", "soc_edge")
MAP_NAMES += ("mask", "pre_edge")


def random_mixture_stack(seed: int, energies: np.ndarray) -> np.ndarray:
    """A 6 x 7 float32 stack of random mixtures and edge steps (~30 % empty) with noise."""
    rng = np.random.default_rng(seed)
    frac = rng.uniform(0.0, 1.0, (6, 7))
    step = rng.uniform(0.0, 1.0, (6, 7)) * (rng.uniform(size=(6, 7)) > 0.3)
    mu = mu_stack(energies, frac, step) + rng.normal(0.0, 0.005, (energies.size, 6, 7))
    return mu.astype(np.float32)
