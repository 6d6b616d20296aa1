"""Measured Ni K-edge reference spectra shipped with the package.

The spectra are the NiO (Ni2+) and LiNiO2 (Ni3+) references that pyxas ships
(see ``README.md`` in this folder for provenance and licenses).  They are the end
members of the simulator and the default references of the linear-combination fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

#: Shift (eV) that brings the pyxas reference files onto the NIST scale
#: (Ni foil first inflection at 8333.0 eV).
PYXAS_TO_NIST_SHIFT_EV = 2.45

#: Ni K-edge of the metal foil on the NIST scale, eV.
NI_K_EDGE_EV = 8333.0


@dataclass(frozen=True)
class ReferenceSpectrum:
    """A normalised XANES reference spectrum on its own energy grid.

    Attributes
    ----------
    name : str
        Compound name, e.g. ``"NiO"``.
    oxidation_state : float
        Formal Ni oxidation state of the compound.
    energy_ev : ndarray
        Strictly increasing energies, eV (NIST scale).
    mu_norm : ndarray
        Normalised absorbance (pre-edge 0, edge step 1).
    source : str
        Where the measured data came from.
    """

    name: str
    oxidation_state: float
    energy_ev: np.ndarray
    mu_norm: np.ndarray
    source: str

    def at(self, energies_ev: np.ndarray) -> np.ndarray:
        """Interpolate the normalised spectrum at ``energies_ev`` (eV).

        Raises
        ------
        ValueError
            If any energy lies outside the measured range of the reference.
        """
        energies_ev = np.asarray(energies_ev, dtype=float)
        lo, hi = self.energy_ev[0], self.energy_ev[-1]
        if energies_ev.size and (energies_ev.min() < lo or energies_ev.max() > hi):
            raise ValueError(
                f"{self.name} reference covers {lo:.1f}-{hi:.1f} eV; requested energies "
                f"span {energies_ev.min():.1f}-{energies_ev.max():.1f} eV. "
                "Choose energies inside the reference range."
            )
        return np.interp(energies_ev, self.energy_ev, self.mu_norm)


def _load_pyxas_file(filename: str) -> tuple[np.ndarray, np.ndarray]:
    text = resources.files(__package__).joinpath(filename).read_text()
    data = np.loadtxt(text.splitlines())
    energy_ev = data[:, 0] * 1000.0 + PYXAS_TO_NIST_SHIFT_EV
    order = np.argsort(energy_ev)
    return energy_ev[order], data[order, 1]


@cache
def ni_k_edge_references() -> tuple[ReferenceSpectrum, ReferenceSpectrum]:
    """Return the measured (Ni2+, Ni3+) end-member spectra, NiO and LiNiO2.

    Examples
    --------
    >>> ni2, ni3 = ni_k_edge_references()
    >>> ni2.name, ni3.name
    ('NiO', 'LiNiO2')
    >>> bool(ni3.at([8400.0])[0] > 0.8)
    True
    """
    source = "gmysage/pyxas example/ref_*.txt (BSD-3-Clause), shifted +2.45 eV to the NIST scale"
    e2, mu2 = _load_pyxas_file("ref_NiO.txt")
    e3, mu3 = _load_pyxas_file("ref_LiNiO2.txt")
    return (
        ReferenceSpectrum("NiO", 2.0, e2, mu2, source),
        ReferenceSpectrum("LiNiO2", 3.0, e3, mu3, source),
    )
