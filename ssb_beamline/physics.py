"""Physics floor shared by :mod:`ssb_beamline.analysis` and :mod:`ssb_beamline.sim_devices`.

The constants, the X-ray wavelength, the Thomson-scattering relation between the
refractive-index decrement ``delta`` and the electron density, and the integer
:class:`Phase` codes of a composite-cathode phase map.  Both the analysis (which
is scored against the simulator) and the simulator (which makes the ground
truth) import these facts from here, so neither imports the other.

``delta = r_e lambda^2 n_e / (2 pi)`` holds away from absorption edges (the
anomalous ``f'`` of Ni near its K-edge is neglected).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "HC_EV_M",
    "R_E_M",
    "Phase",
    "delta_from_electron_density",
    "electron_density_from_delta",
    "wavelength_m",
]

HC_EV_M = 1.239841984e-6  # h c in eV m (CODATA 2018)
R_E_M = 2.8179403262e-15  # classical electron radius in m (CODATA 2018)


class Phase(IntEnum):
    """Integer codes of a phase map (``uint8``).

    Examples
    --------
    >>> int(Phase.NMC), int(Phase.SSE), int(Phase.CARBON), int(Phase.VOID)
    (1, 2, 3, 0)
    """

    VOID = 0
    NMC = 1
    SSE = 2
    CARBON = 3


def _positive(value: float, name: str, example: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not a number; e.g. {name}={example}") from None
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name}={value!r} must be a finite positive number, e.g. {example}")
    return v


def wavelength_m(energy_ev: float) -> float:
    """X-ray wavelength in metres for a photon energy in eV.

    Parameters
    ----------
    energy_ev : float
        Photon energy, eV.

    Examples
    --------
    >>> round(wavelength_m(17000.0) * 1e12, 3)   # pm
    72.932
    """
    return HC_EV_M / _positive(energy_ev, "energy_ev", "17050.0")


def electron_density_from_delta(delta: ArrayLike, energy_ev: float) -> NDArray:
    """Electron density (electrons / nm^3) ``n_e = 2 pi delta / (r_e lambda^2)``.

    Valid far from absorption edges (anomalous dispersion neglected).  Floating
    inputs keep their dtype.

    Parameters
    ----------
    delta : array_like
        Refractive-index decrement.
    energy_ev : float
        Photon energy, eV.

    Examples
    --------
    >>> round(float(electron_density_from_delta(1e-6, 17000)), 1)
    419.2
    """
    d = np.asarray(delta)
    lam = wavelength_m(energy_ev)
    out = d * (2 * np.pi / (R_E_M * lam * lam) * 1e-27)
    return out.astype(d.dtype) if np.issubdtype(d.dtype, np.floating) else out


def delta_from_electron_density(n_e_per_nm3: ArrayLike, energy_ev: float) -> NDArray:
    """Inverse of :func:`electron_density_from_delta` (``n_e`` in electrons / nm^3).

    Parameters
    ----------
    n_e_per_nm3 : array_like
        Electron density, electrons / nm^3.
    energy_ev : float
        Photon energy, eV.

    Examples
    --------
    >>> float(delta_from_electron_density(electron_density_from_delta(1e-6, 8000.0), 8000.0))
    1e-06
    """
    n = np.asarray(n_e_per_nm3)
    lam = wavelength_m(energy_ev)
    out = n * (R_E_M * lam * lam * 1e27 / (2 * np.pi))
    return out.astype(n.dtype) if np.issubdtype(n.dtype, np.floating) else out
