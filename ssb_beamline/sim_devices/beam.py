"""Non-uniform illumination (flat field) of the simulated TXM."""

from __future__ import annotations

import numpy as np

__all__ = ["make_beam_profile"]


def make_beam_profile(
    shape: tuple[int, int],
    seed: int = 0,
    *,
    width_fraction: float = 0.8,
    stripe_amplitude: float = 0.02,
) -> np.ndarray:
    """Smooth 2D Gaussian-ish illumination with faint stripes, max 1.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)``.
    seed : int
        Fixes the beam centre, widths and stripes.
    width_fraction : float
        Gaussian sigma as a fraction of the image size (about 0.8 gives a
        corner-to-centre fall-off to roughly 45 %).
    stripe_amplitude : float
        Relative amplitude of the horizontal/vertical stripes (monochromator
        and window imperfections).

    Returns
    -------
    ndarray of float32, (H, W)
        Relative intensity in (0, 1].

    Examples
    --------
    >>> b = make_beam_profile((64, 64), seed=3)
    >>> bool(0.3 < b.min() < b.max() <= 1.0)
    True
    """
    h, w = shape
    rng = np.random.default_rng(seed)
    y = (np.arange(h, dtype=np.float64) - h / 2) / h
    x = (np.arange(w, dtype=np.float64) - w / 2) / w
    cy, cx = rng.uniform(-0.08, 0.08, 2)
    sy, sx = width_fraction * rng.uniform(0.85, 1.15, 2)
    gy = np.exp(-0.5 * ((y - cy) / sy) ** 2)
    gx = np.exp(-0.5 * ((x - cx) / sx) ** 2)
    stripes_y = np.zeros(h)
    stripes_x = np.zeros(w)
    for _ in range(3):
        stripes_y += np.sin(2 * np.pi * rng.uniform(4, 30) * y + rng.uniform(0, 2 * np.pi))
        stripes_x += np.sin(2 * np.pi * rng.uniform(4, 30) * x + rng.uniform(0, 2 * np.pi))
    profile = np.outer(gy * (1 + stripe_amplitude / 3 * stripes_y), gx)
    profile *= 1 + 0.5 * stripe_amplitude / 3 * stripes_x[None, :]
    return (profile / profile.max()).astype(np.float32)
