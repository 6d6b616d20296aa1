"""Soft X-ray absorption of a thin cathode section at the Ni L3 edge (pure functions).

No open, redistributable measured Ni L-edge spectra of NiO / LiNiO2 are shipped
with this package, so the Ni2+ and Ni3+ end members are a **documented parametric
model** (not measured data), built on the peak positions of Deng et al. (2025):
the Ni L3 edge shows two peaks, ~853 eV (mostly Ni2+) and ~855.5 eV (Ni3+/Ni4+).

Each end member's resonant absorption, normalised to an L3 edge step of 1, is an
arctan edge step at ``EDGE_STEP_EV`` plus pseudo-Voigt peaks (50 % Lorentzian)::

    Ni2+:  853.0 eV  height 6.0  FWHM 0.8 eV  +  855.0 eV  height 1.5  FWHM 1.2 eV
    Ni3+:  853.1 eV  height 2.0  FWHM 0.8 eV  +  855.5 eV  height 5.0  FWHM 1.3 eV

(the strong white lines of Ni oxides; the peak at 853 eV loses weight and the
one at 855.5 eV gains it as Ni oxidises). A mixture with Ni3+ fraction ``f`` has
``(1 - f) n2(E) + f n3(E)``, so the optical density (OD) is linear in ``f`` at every
energy while the ratio ``OD(855.5) / OD(853)`` is not.

Absolute scale, all linear attenuation coefficients in 1/um:

* **NMC811** (4.7 g/cm3): ``mu_bg(E) + J * n(E, f)``; ``mu_bg`` is xraydb's (Elam)
  NMC811 coefficient at 845 eV scaled as ``(E / 845)**-2.6`` (pre-edge power law),
  ``J`` the xraydb L3 edge jump of NMC811 (about 0.9 /um).
* **Li6PS5Cl** (1.64 g/cm3) and **carbon** (2.0 g/cm3): xraydb ``material_mu``
  (no absorption edge between 845 and 870 eV).

A thin section (``thickness_um``, about 0.1 um) has the same thickness wherever
there is material, so its OD is ``thickness * mu(phase, E)``: about 0.22 before
the edge and 0.8 at the Ni2+ peak for NMC. This module imports nothing of
`ssb_beamline.analysis`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
import xraydb

__all__ = [
    "EDGE_STEP_EV",
    "NI2_PEAKS",
    "NI3_PEAKS",
    "L3Coefficients",
    "l3_coefficients",
    "ni_l3_end_members",
    "section_od",
]

#: Position of the arctan L3 edge step, eV.
EDGE_STEP_EV = 853.5
#: Width of the edge step, eV.
EDGE_STEP_WIDTH_EV = 0.6
#: (energy eV, height, FWHM eV) of the Ni2+ end member's peaks (parametric, see above).
NI2_PEAKS = ((853.0, 6.0, 0.8), (855.0, 1.5, 1.2))
#: (energy eV, height, FWHM eV) of the Ni3+ end member's peaks.
NI3_PEAKS = ((853.1, 2.0, 0.8), (855.5, 5.0, 1.3))
#: Lorentzian fraction of the pseudo-Voigt peaks.
LORENTZ_FRACTION = 0.5

NMC811 = ("LiNi0.8Co0.1Mn0.1O2", 4.7)
SSE = ("Li6PS5Cl", 1.64)
CARBON = ("C", 2.0)
_PRE_EDGE_EV = 845.0
_BG_EXPONENT = -2.6
_PER_CM_TO_PER_UM = 1e-4


def _pseudo_voigt(e: np.ndarray, centre: float, height: float, fwhm: float) -> np.ndarray:
    x = (e - centre) / (fwhm / 2.0)
    lorentz = 1.0 / (1.0 + x * x)
    gauss = np.exp(-np.log(2.0) * x * x)
    return height * (LORENTZ_FRACTION * lorentz + (1.0 - LORENTZ_FRACTION) * gauss)


def _shape(e: np.ndarray, peaks: tuple[tuple[float, float, float], ...]) -> np.ndarray:
    step = 0.5 + np.arctan((e - EDGE_STEP_EV) / (EDGE_STEP_WIDTH_EV / 2.0)) / np.pi
    return step + sum(_pseudo_voigt(e, *p) for p in peaks)


def ni_l3_end_members(energy_ev: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised Ni2+ and Ni3+ L3 absorption (edge step 1) of the parametric model.

    Examples
    --------
    >>> n2, n3 = ni_l3_end_members([853.0, 855.5])
    >>> bool(n2[0] > n2[1]) and bool(n3[1] > n3[0])
    True
    """
    e = np.asarray(energy_ev, dtype=float)
    return _shape(e, NI2_PEAKS), _shape(e, NI3_PEAKS)


@cache
def _nmc_background_and_jump() -> tuple[float, float]:
    """(NMC811 mu at 845 eV, L3 edge jump of NMC811), 1/um, from xraydb."""
    formula, rho = NMC811
    mu = xraydb.material_mu(formula, np.array([_PRE_EDGE_EV, 852.6, 853.0]), density=rho)
    pre, below, above = (float(v) * _PER_CM_TO_PER_UM for v in mu)
    return pre, above - below


@dataclass(frozen=True)
class L3Coefficients:
    """Attenuation coefficients at one energy, 1/um.

    Attributes
    ----------
    energy_ev : float
    nmc_background : float
        NMC811 without the Ni L3 resonance.
    nmc_ni2, nmc_ni3 : float
        Resonant Ni part of NMC811 for the pure Ni2+ / Ni3+ end members.
    sse, carbon : float
        Li6PS5Cl and carbon.
    """

    energy_ev: float
    nmc_background: float
    nmc_ni2: float
    nmc_ni3: float
    sse: float
    carbon: float

    def nmc(self, fraction: np.ndarray | float) -> np.ndarray:
        """NMC811 coefficient for a Ni3+ fraction (array or scalar), 1/um."""
        f = np.asarray(fraction)
        return self.nmc_background + self.nmc_ni2 + f * (self.nmc_ni3 - self.nmc_ni2)


@lru_cache(maxsize=4096)
def _coefficients(energy_mev: int) -> L3Coefficients:
    e = energy_mev / 1000.0
    pre, jump = _nmc_background_and_jump()
    n2, n3 = ni_l3_end_members(e)
    sse = float(xraydb.material_mu(SSE[0], e, density=SSE[1])) * _PER_CM_TO_PER_UM
    carbon = float(xraydb.material_mu(CARBON[0], e, density=CARBON[1])) * _PER_CM_TO_PER_UM
    return L3Coefficients(
        energy_ev=e,
        nmc_background=pre * (e / _PRE_EDGE_EV) ** _BG_EXPONENT,
        nmc_ni2=jump * float(n2),
        nmc_ni3=jump * float(n3),
        sse=sse,
        carbon=carbon,
    )


def l3_coefficients(energy_ev: float) -> L3Coefficients:
    """Coefficients of all phases at ``energy_ev`` (cached per meV), 1/um.

    Examples
    --------
    >>> c = l3_coefficients(853.0)
    >>> bool(c.nmc(0.0) > c.nmc(1.0) > c.sse > 0)
    True
    """
    if not np.isfinite(energy_ev) or energy_ev <= 0:
        raise ValueError(f"energy_ev must be a positive finite number, got {energy_ev}")
    return _coefficients(round(float(energy_ev) * 1000.0))


def section_od(
    phase: np.ndarray,
    fraction: np.ndarray,
    energy_ev: float,
    thickness_um: float,
    *,
    nmc: int,
    sse: int,
    carbon: int,
) -> np.ndarray:
    """Noiseless OD ``thickness * mu`` of a thin section, (H, W) float32.

    Parameters
    ----------
    phase : ndarray of int, (H, W)
        Phase code per pixel; ``nmc``, ``sse``, ``carbon`` name the codes (others
        are empty).
    fraction : ndarray, (H, W)
        Ni3+ fraction in NMC pixels.
    energy_ev, thickness_um : float
        Photon energy (eV) and section thickness (um).
    """
    c = l3_coefficients(energy_ev)
    od = np.zeros(phase.shape, np.float32)
    is_nmc = phase == nmc
    od[is_nmc] = c.nmc(fraction[is_nmc])
    od[phase == sse] = c.sse
    od[phase == carbon] = c.carbon
    return od * np.float32(thickness_um)
