"""Electron density and complex refractive index ``n = 1 - delta + i beta`` (pure functions).

Electron densities (electrons / nm^3) follow from composition and mass density,
``n_e = rho N_A sum(Z) / sum(A)``:

* NMC811 (LiNi0.8Mn0.1Co0.1O2, 46.6 electrons and 97.28 g/mol per formula unit)
  at 4.75 g/cm3: 1370 e/nm^3 when discharged (SOC 0). Charging to SOC ``s``
  oxidises ``0.8 s`` Ni and removes ``0.8 s`` Li per formula unit, i.e.
  ``2.4 s`` of 46.6 electrons at constant volume, so
  ``n_e(s) = 1370 * (1 - 0.0515 s)``: NMC gets denser as it discharges.
* Li6PS5Cl (argyrodite SSE) at 1.64 g/cm3: 478 e/nm^3.
* graphite at 2.2 g/cm3: 662 e/nm^3; carbon fibre at 1.8 g/cm3: 541 e/nm^3.

Away from absorption edges ``delta = r_e lambda^2 n_e / (2 pi)`` (Thomson
scattering; the anomalous ``f'`` of Ni near its K-edge is neglected), and
``beta = mu lambda / (4 pi)`` with the linear attenuation ``mu`` of
`ssb_beamline.sim_devices.xray_physics.absorption_coefficients` (NMC811 with its
SOC-dependent Ni K-edge XANES, SSE, carbon scaled to the carbon form's density).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import xraydb
from numpy.typing import ArrayLike

from ssb_beamline.physics import R_E_M as CLASSICAL_ELECTRON_RADIUS_M
from ssb_beamline.physics import Phase, wavelength_m
from ssb_beamline.physics import delta_from_electron_density as _delta_from_density
from ssb_beamline.physics import electron_density_from_delta as _density_from_delta

from .xray_physics import CARBON_DENSITY_G_CM3, absorption_coefficients

if TYPE_CHECKING:
    from .phantom3d import Phantom3D

__all__ = [
    "CARBON_FIBRE_DENSITY_G_CM3",
    "CLASSICAL_ELECTRON_RADIUS_M",
    "GRAPHITE_DENSITY_G_CM3",
    "NMC_DELITHIATION_K",
    "NMC_DENSITY_G_CM3",
    "SSE_DENSITY_G_CM3",
    "delta_from_electron_density",
    "electron_density_from_delta",
    "electron_density_per_nm3",
    "nmc_electron_density",
    "phase_attenuation_per_um",
    "refractive_index",
    "wavelength_m",
]

NMC_FORMULA, NMC_DENSITY_G_CM3 = "LiNi0.8Mn0.1Co0.1O2", 4.75
SSE_FORMULA, SSE_DENSITY_G_CM3 = "Li6PS5Cl", 1.64
GRAPHITE_DENSITY_G_CM3, CARBON_FIBRE_DENSITY_G_CM3 = 2.2, 1.8
#: Relative electron-density loss of NMC811 per unit SOC (2.4 of 46.6 electrons).
NMC_DELITHIATION_K = 2.4 / 46.6
_AVOGADRO = 6.02214076e23


def _check_energy(energy_ev: float) -> float:
    try:
        e = float(energy_ev)
    except (TypeError, ValueError):
        raise ValueError(f"energy_ev={energy_ev!r} is not a number; pass eV, e.g. 8350.0") from None
    if not np.isfinite(e) or e <= 0:
        raise ValueError(f"energy_ev={energy_ev!r} must be finite and > 0 (eV), e.g. 8350.0")
    return e


@cache
def electron_density_per_nm3(formula: str, density_g_cm3: float) -> float:
    """Electron density of a compound at a mass density, electrons per nm^3.

    Examples
    --------
    >>> round(electron_density_per_nm3("C", 2.2))
    662
    """
    comp = xraydb.chemparse(formula)
    z = sum(n * xraydb.atomic_number(el) for el, n in comp.items())
    m = sum(n * xraydb.atomic_mass(el) for el, n in comp.items())
    return density_g_cm3 * _AVOGADRO * z / m * 1e-21


def nmc_electron_density(soc: ArrayLike) -> np.ndarray:
    """Electron density of NMC811 at a SOC, ``n_e0 * (1 - k soc)``, e/nm^3 (float64)."""
    n0 = electron_density_per_nm3(NMC_FORMULA, NMC_DENSITY_G_CM3)
    return n0 * (1.0 - NMC_DELITHIATION_K * np.asarray(soc, dtype=np.float64))


def delta_from_electron_density(n_e_per_nm3: ArrayLike, energy_ev: float) -> np.ndarray:
    """``delta = r_e lambda^2 n_e / (2 pi)`` for electron densities in e/nm^3 (float32).

    The float32 volumes the simulator uses of
    :func:`ssb_beamline.physics.delta_from_electron_density`,
    which checks the energy.
    """
    n_e = np.asarray(n_e_per_nm3, dtype=np.float64)
    return _delta_from_density(n_e, energy_ev).astype(np.float32)  # (checks the energy)


def electron_density_from_delta(delta: ArrayLike, energy_ev: float) -> np.ndarray:
    """Electron density (e/nm^3, float32): the exact inverse of `delta_from_electron_density`.

    Examples
    --------
    >>> d = delta_from_electron_density(1370.0, 17000.0)
    >>> round(float(electron_density_from_delta(d, 17000.0)))
    1370
    """
    d = np.asarray(delta, dtype=np.float64)
    return _density_from_delta(d, energy_ev).astype(np.float32)  # (checks the energy)


def phase_attenuation_per_um(
    energy_ev: float, carbon_density_g_cm3: float = GRAPHITE_DENSITY_G_CM3
) -> tuple[float, float, float, float]:
    """Linear attenuation of the phases, 1/um, as ``mu_NMC = a + b * soc``.

    Returns
    -------
    tuple of float
        ``(a, b, mu_sse, mu_carbon)``: NMC811 at SOC 0 and its change per unit
        SOC (Ni K-edge XANES), SSE, and carbon at ``carbon_density_g_cm3``.
    """
    c = absorption_coefficients(_check_energy(energy_ev))
    carbon = c.carbon * carbon_density_g_cm3 / CARBON_DENSITY_G_CM3
    return c.nmc_smooth + c.nmc_ni2, c.nmc_ni3 - c.nmc_ni2, c.sse, carbon


def refractive_index(phantom3d: Phantom3D, energy_ev: float) -> tuple[np.ndarray, np.ndarray]:
    """Refractive-index decrement ``delta`` and absorption index ``beta`` volumes.

    Parameters
    ----------
    phantom3d : Phantom3D
        Source of the electron density, phases and SOC.
    energy_ev : float
        Photon energy, eV.

    Returns
    -------
    delta, beta : ndarray of float32, (Z, Y, X)
        ``delta = r_e lambda^2 n_e / (2 pi)``; ``beta = mu lambda / (4 pi)``.

    Examples
    --------
    >>> from ssb_beamline.sim_devices.phantom3d import Phantom3DConfig, make_phantom3d
    >>> ph = make_phantom3d(Phantom3DConfig(shape=(24, 32, 32), n_particles=2, seed=0))
    >>> delta, beta = refractive_index(ph, 8400.0)
    >>> bool(delta.max() > 1e-5 > beta.max() > 0)
    True
    """
    lam = wavelength_m(energy_ev)
    delta = delta_from_electron_density(phantom3d.electron_density, energy_ev)
    a, b, mu_sse, mu_c = phase_attenuation_per_um(energy_ev, phantom3d.config.carbon_density_g_cm3)
    ph = phantom3d.phases
    mu = np.zeros(ph.shape, np.float32)
    nmc = ph == Phase.NMC
    mu[nmc] = a + b * phantom3d.soc[nmc]
    mu[ph == Phase.SSE] = mu_sse
    mu[ph == Phase.CARBON] = mu_c
    beta = mu * np.float32(1e6 * lam / (4 * np.pi))  # mu in 1/m
    return delta, beta
