"""X-ray absorption of the phantom phases around the Ni K-edge (pure functions).

Model, all linear attenuation coefficients in 1/um:

* **NMC811** (LiNi0.8Co0.1Mn0.1O2, 4.7 g/cm3)::

      mu_NMC(E, soc) = mu_smooth(E) + J * [(1 - soc) * n2(E) + soc * n3(E)]

  ``mu_smooth`` is the xraydb (Elam) absorption of NMC811 with the Ni K-edge
  removed: the compound's ``material_mu`` minus the Ni contribution, plus the Ni
  contribution extrapolated from below the edge (power law fitted to Ni's Elam
  mu at 8000 and 8300 eV). ``n2``/``n3`` are the measured, normalised NiO (Ni2+)
  and LiNiO2 (Ni3+) spectra of `ssb_beamline.reference_data` on the NIST scale
  (0 below the reference range; above it see ``J``). ``J`` is the Ni K-edge
  jump of NMC811 at 8333 eV from xraydb (about 0.065 /um, so a 10 um chord through
  a 5 um radius particle has an edge step of about 0.65 in absorbance). ``J`` is
  kept constant over the measured references' range, up to about 9 keV (the
  few-% post-edge fall-off of the real photo-absorption is neglected there, so
  normalised spectra stay exactly the mixture); above it the resonant part falls
  off like Ni's K-shell photo-absorption in xraydb (at 17 keV it is a fifth of
  its value at the edge), so that NMC does not absorb several times too much at
  higher energies.
* **SSE** (Li6PS5Cl, 1.64 g/cm3) and **carbon** (2.0 g/cm3): xraydb
  ``material_mu``, smooth in energy.

Coefficients are cached per energy (rounded to 1 meV); the smooth xraydb parts are
evaluated at integer-eV nodes and interpolated linearly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
import xraydb

from ssb_beamline.reference_data import NI_K_EDGE_EV, ni_k_edge_references

from .phantom import Phantom

__all__ = [
    "CARBON_DENSITY_G_CM3",
    "CARBON_FORMULA",
    "EDGE_GRID_EV",
    "NMC811_DENSITY_G_CM3",
    "NMC811_FORMULA",
    "SOC_GRID",
    "SSE_DENSITY_G_CM3",
    "SSE_FORMULA",
    "AbsorptionCoefficients",
    "absorbance",
    "absorption_coefficients",
    "ni_edge_jump_per_um",
    "normalised_ni_spectrum",
    "transmission",
    "truth_edge_energy",
    "truth_edge_energy_map",
]

NMC811_FORMULA = "LiNi0.8Co0.1Mn0.1O2"
NMC811_DENSITY_G_CM3 = 4.7
SSE_FORMULA = "Li6PS5Cl"
SSE_DENSITY_G_CM3 = 1.64
CARBON_FORMULA = "C"
CARBON_DENSITY_G_CM3 = 2.0

_PER_CM_TO_PER_UM = 1e-4
_PRE_EDGE_FIT_EV = (8000.0, 8300.0)

#: Energy grid of the edge-energy lookup table, eV (step 0.01 eV).
EDGE_GRID_EV = np.arange(8320.0, 8370.0, 0.01)
#: SOC grid of the edge-energy lookup table.
SOC_GRID = np.linspace(0.0, 1.0, 1001)


@dataclass(frozen=True)
class AbsorptionCoefficients:
    """Attenuation coefficients at one energy, 1/um.

    Attributes
    ----------
    energy_ev : float
        Photon energy, eV.
    nmc_smooth : float
        NMC811 without the Ni K-edge resonance.
    nmc_ni2, nmc_ni3 : float
        Resonant Ni part of NMC811 for the pure Ni2+ / Ni3+ end members
        (``J * n2(E)``, ``J * n3(E)``).
    sse, carbon : float
        Li6PS5Cl and carbon.
    """

    energy_ev: float
    nmc_smooth: float
    nmc_ni2: float
    nmc_ni3: float
    sse: float
    carbon: float

    def nmc(self, soc: np.ndarray | float) -> np.ndarray:
        """NMC811 coefficient for a SOC (array or scalar), 1/um."""
        soc = np.asarray(soc)
        return self.nmc_smooth + self.nmc_ni2 + soc * (self.nmc_ni3 - self.nmc_ni2)


@cache
def _ni_partial_density() -> float:
    """Ni mass per volume in NMC811, g/cm3."""
    comp = xraydb.chemparse(NMC811_FORMULA)
    masses = {el: n * xraydb.atomic_mass(el) for el, n in comp.items()}
    return NMC811_DENSITY_G_CM3 * masses["Ni"] / sum(masses.values())


@cache
def _ni_pre_edge_power_law() -> tuple[float, float]:
    """(log-prefactor, exponent) of Ni's mass attenuation below its K-edge."""
    e = np.array(_PRE_EDGE_FIT_EV)
    mu = np.asarray(xraydb.mu_elam("Ni", e))
    slope = np.log(mu[1] / mu[0]) / np.log(e[1] / e[0])
    return float(np.log(mu[0]) - slope * np.log(e[0])), float(slope)


def _ni_pre_edge_mass_mu(energy_ev: np.ndarray | float) -> np.ndarray:
    """Ni's mass attenuation without its K-edge (the pre-edge power law), cm2/g."""
    a, b = _ni_pre_edge_power_law()
    return np.exp(a + b * np.log(np.asarray(energy_ev, dtype=float)))


@cache
def ni_edge_jump_per_um() -> float:
    """Ni K-edge jump of NMC811 at 8333 eV, 1/um (about 0.065)."""
    e = NI_K_EDGE_EV + 0.01
    post = float(np.asarray(xraydb.mu_elam("Ni", e)))
    return _ni_partial_density() * (post - float(_ni_pre_edge_mass_mu(e))) * _PER_CM_TO_PER_UM


def _ni_k_shell_mass_mu(energy_ev: np.ndarray) -> np.ndarray:
    """Ni's K-shell photo-absorption (Elam mu minus the pre-edge power law), cm2/g."""
    e = np.asarray(energy_ev, dtype=float)
    return np.asarray(xraydb.mu_elam("Ni", e)) - _ni_pre_edge_mass_mu(e)


def _reference_curves(energy_ev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised Ni2+/Ni3+ spectra extended beyond the references' range.

    0 below the range, and above it the last value
    times the fall-off of Ni's K-shell absorption since the reference's last energy.
    """
    ni2, ni3 = ni_k_edge_references()
    e = np.asarray(energy_ev, dtype=float)
    out = []
    for ref in (ni2, ni3):
        curve = np.interp(e, ref.energy_ev, ref.mu_norm, left=0.0)
        end = float(ref.energy_ev[-1])
        above = e > end
        if np.any(above):
            fall = _ni_k_shell_mass_mu(e[above]) / _ni_k_shell_mass_mu(np.array([end]))[0]
            curve[above] = ref.mu_norm[-1] * fall
        out.append(curve)
    return out[0], out[1]


def normalised_ni_spectrum(energy_ev: np.ndarray | float, soc: float) -> np.ndarray:
    """Noiseless normalised Ni K-edge spectrum of the mixture with SOC ``soc``."""
    n2, n3 = _reference_curves(np.asarray(energy_ev, dtype=float))
    return (1.0 - soc) * n2 + soc * n3


@lru_cache(maxsize=32768)
def _smooth_at_node(energy_ev: int) -> np.ndarray:
    """(NMC without Ni edge, SSE, carbon) in 1/cm at an integer energy, eV."""
    e = float(energy_ev)
    rho_ni = _ni_partial_density()
    nmc_total = float(xraydb.material_mu(NMC811_FORMULA, e, density=NMC811_DENSITY_G_CM3))
    ni_actual = rho_ni * float(np.asarray(xraydb.mu_elam("Ni", e)))
    return np.array(
        [
            nmc_total - ni_actual + rho_ni * float(_ni_pre_edge_mass_mu(e)),
            float(xraydb.material_mu(SSE_FORMULA, e, density=SSE_DENSITY_G_CM3)),
            float(xraydb.material_mu(CARBON_FORMULA, e, density=CARBON_DENSITY_G_CM3)),
        ]
    )


@lru_cache(maxsize=8192)
def _coefficients_cached(energy_mev: int) -> AbsorptionCoefficients:
    e = energy_mev / 1000.0
    # The smooth parts come from xraydb at integer-eV nodes (about 25 ms per new
    # node), linearly interpolated in between.
    lo = int(np.floor(e))
    frac = e - lo
    smooth = _smooth_at_node(lo) * (1 - frac) + _smooth_at_node(lo + 1) * frac
    smooth *= _PER_CM_TO_PER_UM
    n2, n3 = _reference_curves(np.array([e]))
    jump = ni_edge_jump_per_um()
    return AbsorptionCoefficients(
        energy_ev=e,
        nmc_smooth=float(smooth[0]),
        nmc_ni2=jump * float(n2[0]),
        nmc_ni3=jump * float(n3[0]),
        sse=float(smooth[1]),
        carbon=float(smooth[2]),
    )


def absorption_coefficients(energy_ev: float) -> AbsorptionCoefficients:
    """Attenuation coefficients of all phases at ``energy_ev`` (cached), 1/um.

    Examples
    --------
    >>> c = absorption_coefficients(8400.0)
    >>> bool(c.nmc(0.5) > c.sse > c.carbon > 0)
    True
    """
    if not np.isfinite(energy_ev) or energy_ev <= 0:
        raise ValueError(f"energy_ev must be a positive finite number, got {energy_ev}")
    return _coefficients_cached(round(float(energy_ev) * 1000.0))


def absorbance(phantom: Phantom, energy_ev: float) -> np.ndarray:
    """Noiseless absorbance ``-ln(T)`` of the phantom at ``energy_ev``, (H, W) float32."""
    c = absorption_coefficients(energy_ev)
    t_nmc = phantom.thickness_nmc_um
    a = t_nmc * np.float32(c.nmc_smooth + c.nmc_ni2)
    a += (t_nmc * phantom.soc) * np.float32(c.nmc_ni3 - c.nmc_ni2)
    a += phantom.thickness_sse_um * np.float32(c.sse)
    a += phantom.thickness_carbon_um * np.float32(c.carbon)
    return a


def transmission(phantom: Phantom, energy_ev: float) -> np.ndarray:
    """Noiseless transmission ``exp(-absorbance)`` at ``energy_ev``, (H, W) float32."""
    return np.exp(-absorbance(phantom, energy_ev))


def _crossing(curves: np.ndarray, grid: np.ndarray, level: float) -> np.ndarray:
    """First crossing of ``level`` along the last axis, linearly interpolated."""
    above = curves >= level
    idx = np.argmax(above, axis=-1)
    if not np.all(above[np.arange(len(curves)), idx]):
        raise ValueError("normalised spectrum never reaches the level on the grid")
    idx = np.clip(idx, 1, None)
    rows = np.arange(len(curves))
    y0, y1 = curves[rows, idx - 1], curves[rows, idx]
    frac = (level - y0) / np.where(y1 > y0, y1 - y0, 1.0)
    return grid[idx - 1] + frac * (grid[idx] - grid[idx - 1])


@cache
def _edge_energy_table() -> np.ndarray:
    n2, n3 = _reference_curves(EDGE_GRID_EV)
    curves = (1.0 - SOC_GRID[:, None]) * n2[None, :] + SOC_GRID[:, None] * n3[None, :]
    return _crossing(curves, EDGE_GRID_EV, 0.5)


def truth_edge_energy(soc: np.ndarray | float) -> np.ndarray:
    """Half-step edge energy (eV) of the noiseless mixture for a SOC.

    The edge energy is where the normalised absorbance ``(1 - soc) n2 + soc n3``
    first crosses 0.5 on a 0.01 eV grid, tabulated over SOC in 0.001 steps and
    linearly interpolated. It rises monotonically with SOC.

    Parameters
    ----------
    soc : array_like
        SOC values in [0, 1]; NaN passes through.

    Returns
    -------
    ndarray
        Edge energies, eV, same shape as ``soc``.

    Examples
    --------
    >>> e = truth_edge_energy([0.0, 1.0])
    >>> bool(e[1] > e[0])
    True
    """
    soc = np.asarray(soc, dtype=float)
    return np.interp(np.clip(soc, 0.0, 1.0), SOC_GRID, _edge_energy_table()) + 0.0 * soc


def truth_edge_energy_map(phantom: Phantom) -> np.ndarray:
    """Edge-energy map of the phantom (eV), NaN outside NMC, (H, W) float32."""
    soc = np.where(phantom.labels > 0, phantom.soc, np.nan)
    return truth_edge_energy(soc).astype(np.float32)
