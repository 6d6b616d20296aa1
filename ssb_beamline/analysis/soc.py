"""State of charge (SOC) from edge energies or LCF fractions.

SOC is defined as the fraction of the oxidised (Ni3+, LiNiO2) end member; the
Ni oxidation state is ``2 + SOC`` for NiO / LiNiO2 end members (more
generally ``reduced_state + SOC * (oxidised_state - reduced_state)``).
SOC above 1 from edge energies means oxidation beyond the Ni3+ end member
(towards Ni4+); values are not clipped unless ``clip=True``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from ._validation import output_array
from .edge_fit import EdgeFit

__all__ = ["SocCalibration", "SocResult", "soc_map"]


@dataclass(frozen=True)
class SocCalibration:
    """How SOC is computed; store it with the results.

    Attributes
    ----------
    reduced_name, oxidised_name : str
        End members (SOC 0 and SOC 1).
    reduced_edge_ev, oxidised_edge_ev : float
        Edge energies (eV) of the end members for the edge-energy route.  The
        defaults are the half-step energies of the shipped references
        (:func:`ssb_beamline.reference_data.ni_k_edge_references`, NIST
        scale) as measured by :func:`edge_energy_map` on their own grid; see
        :meth:`from_references`.
    edge_method : str
        Edge-energy method the edge energies refer to (and how the references
        were normalised).  Edge energies depend on the normalisation ranges:
        for maps of short scans use :meth:`from_references` with the data's
        ``edge_fit``.
    reduced_index, oxidised_index : int
        Positions of the end members in the LCF fractions.
    reduced_state, oxidised_state : float
        Formal Ni oxidation states of the end members.

    Examples
    --------
    >>> cal = SocCalibration()
    >>> cal.oxidised_edge_ev - cal.reduced_edge_ev > 1.5
    True
    """

    reduced_name: str = "NiO"
    oxidised_name: str = "LiNiO2"
    reduced_edge_ev: float = 8342.50
    oxidised_edge_ev: float = 8344.27
    edge_method: str = "half_step"
    reduced_index: int = 0
    oxidised_index: int = 1
    reduced_state: float = 2.0
    oxidised_state: float = 3.0

    def __post_init__(self) -> None:
        if self.oxidised_edge_ev == self.reduced_edge_ev:
            raise ValueError(
                "reduced_edge_ev and oxidised_edge_ev are equal; SOC cannot be computed from "
                "edge energies. Use end members with different edge energies."
            )
        if self.reduced_index == self.oxidised_index:
            raise ValueError(
                "reduced_index and oxidised_index are equal. Give each end member its own "
                "position in the LCF references."
            )

    @classmethod
    def from_references(
        cls,
        references: tuple[object, object] | None = None,
        *,
        method: str = "half_step",
        window_ev: tuple[float, float] = (8250.0, 8500.0),
        edge_fit: EdgeFit | None = None,
    ) -> SocCalibration:
        """Measure the end-member edge energies from (reduced, oxidised) references.

        Parameters
        ----------
        references : pair of reference spectra, optional
            Objects with ``name``, ``oxidation_state``, ``energy_ev``,
            ``mu_norm`` and ``at()`` (default: the shipped NiO / LiNiO2).
        method : {"half_step", "derivative"}
            Edge definition (as in :func:`edge_energy_map`).
        window_ev : (float, float)
            Energies of the references used (own-normalisation route).
        edge_fit : EdgeFit, optional
            Measure the edges exactly as for a stack normalised with
            ``edge_fit`` (``normalize_stack(...).edge_fit``): the references are
            sampled at its energies, normalised with its pre-/post-edge
            operators and searched in its edge window.  Use this so that
            ``soc_map(edge_energy)`` is unbiased for short scans, whose
            normalisation differs from the references' own
            (:func:`analyse_xanes_stack` does this when no calibration is given).

        Examples
        --------
        >>> cal = SocCalibration.from_references()
        >>> abs(cal.reduced_edge_ev - SocCalibration().reduced_edge_ev) < 0.01
        True
        """
        from ._kernels import derivative_max_block, half_step_block
        from .edge import edge_energy_map
        from .lcf import normalize_references, reference_matrix

        if method not in ("half_step", "derivative"):
            raise ValueError(f"method must be 'half_step' or 'derivative'; got {method!r}.")
        if references is None:
            from ssb_beamline.reference_data import ni_k_edge_references

            references = ni_k_edge_references()
        red, ox = references
        if edge_fit is not None:
            normed, _ = normalize_references(
                reference_matrix(references, edge_fit.energies), edge_fit
            )
            block = normed[:, edge_fit.window].T.astype(np.float32)
            ew = edge_fit.energies[edge_fit.window]
            kernel = half_step_block if method == "half_step" else derivative_max_block
            edges = [round(float(v), 3) for v in kernel(block, ew)]
            label = f"{method} (references normalised like the data, e0={edge_fit.e0:.2f} eV)"
        else:
            edges = []
            for ref in references:
                e = np.asarray(ref.energy_ev, float)
                sel = (e >= window_ev[0]) & (e <= window_ev[1])
                edge = edge_energy_map(ref.mu_norm[sel], e[sel], normalized=True, method=method)
                edges.append(round(float(edge), 2))
            label = method
        return cls(
            reduced_name=str(getattr(red, "name", "reduced")),
            oxidised_name=str(getattr(ox, "name", "oxidised")),
            reduced_edge_ev=edges[0],
            oxidised_edge_ev=edges[1],
            edge_method=label,
            reduced_state=float(getattr(red, "oxidation_state", 2.0)),
            oxidised_state=float(getattr(ox, "oxidation_state", 3.0)),
        )

    def to_dict(self) -> dict[str, object]:
        """Plain dict for metadata storage.

        Examples
        --------
        >>> SocCalibration().to_dict()["oxidised_name"]
        'LiNiO2'
        """
        return asdict(self)


class SocResult(NamedTuple):
    """SOC map and the calibration that produced it (unpacks as ``soc, calibration``).

    Attributes
    ----------
    soc : ndarray
        State of charge per pixel (fraction of the oxidised end member).
    calibration : SocCalibration
        How it was computed.
    """

    soc: np.ndarray
    calibration: SocCalibration

    @property
    def oxidation_state(self) -> np.ndarray:
        """Ni oxidation state map: ``reduced_state + soc * (oxidised - reduced)``."""
        c = self.calibration
        return (c.reduced_state + self.soc * (c.oxidised_state - c.reduced_state)).astype(
            np.float32
        )


def soc_map(
    edge_energy: np.ndarray | None = None,
    *,
    fractions: np.ndarray | None = None,
    calibration: SocCalibration | None = None,
    clip: bool = False,
    out: np.ndarray | None = None,
) -> SocResult:
    """State of charge (fraction of the oxidised end member) per pixel.

    Give exactly one of:

    ``edge_energy``
        Edge-energy map (eV, from the method named in the calibration):
        ``soc = (E - E_reduced) / (E_oxidised - E_reduced)`` (linear
        interpolation between the end-member edge energies).
    ``fractions``
        LCF fractions (K, ...):
        ``soc = f[oxidised] / (f[oxidised] + f[reduced])``.

    NaN inputs (masked pixels) stay NaN.  ``clip=True`` clips to [0, 1].

    Parameters
    ----------
    edge_energy : ndarray, optional
        Edge-energy map, eV.
    fractions : ndarray, optional
        LCF fractions ``(K, ...)``.
    calibration : SocCalibration, optional
        End members and edge energies (default ``SocCalibration()``).
    clip : bool
        Clip the result to [0, 1].
    out : ndarray of float32, optional
        Write the SOC map here (the map's shape, C-contiguous) instead of into a new
        array; the values are the same.

    Examples
    --------
    >>> cal = SocCalibration(reduced_edge_ev=8342.0, oxidised_edge_ev=8344.0)
    >>> soc_map(np.array([8342.0, 8343.0, 8344.0]), calibration=cal).soc.tolist()
    [0.0, 0.5, 1.0]
    >>> res = soc_map(fractions=np.array([[0.25], [0.75]]))
    >>> res.soc.tolist(), res.oxidation_state.tolist()
    ([0.75], [2.75])
    """
    cal = SocCalibration() if calibration is None else calibration
    if not isinstance(cal, SocCalibration):
        raise TypeError(
            f"calibration must be a SocCalibration; got {type(cal).__name__}. "
            "Build one with SocCalibration(...) or SocCalibration.from_references()."
        )
    if (edge_energy is None) == (fractions is None):
        raise TypeError(
            "give exactly one of edge_energy or fractions to soc_map. Pass the edge-energy "
            "map (eV) or the LCF fractions (K, H, W)."
        )
    if fractions is not None:
        f = np.asarray(fractions, np.float32)
        k_needed = max(cal.reduced_index, cal.oxidised_index) + 1
        if f.ndim < 1 or f.shape[0] < k_needed:
            raise ValueError(
                f"fractions has shape {f.shape}; needs at least {k_needed} references along "
                "axis 0. Pass lcf_map(...).fractions."
            )
        if f.shape[0] != 2:
            # a third component's share would silently vanish from f_ox / (f_ox + f_red)
            raise ValueError(
                f"fractions has {f.shape[0]} components (shape {f.shape}); the state of "
                f"charge is defined by exactly two end members ({cal.reduced_name}, "
                f"{cal.oxidised_name}). Fit with those two references only, e.g. "
                "lcf_map(norm, energies, [reduced, oxidised])."
            )
        ox = f[cal.oxidised_index]
        soc = output_array(out, ox.shape)
        tot = np.add(ox, f[cal.reduced_index], out=soc)
        undefined = ~(tot > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(ox, tot, out=soc)
        np.copyto(soc, np.float32(np.nan), where=undefined)
    else:
        ee = np.asarray(edge_energy)
        if ee.dtype != np.float32:
            ee = ee.astype(np.float64)
        # float32 maps: E - E_reduced is exact for nearby values (Sterbenz)
        # (a float64 difference is rounded to float32 as it is stored)
        soc = np.subtract(ee, ee.dtype.type(cal.reduced_edge_ev), out=output_array(out, ee.shape))
        soc *= np.float32(1.0 / (cal.oxidised_edge_ev - cal.reduced_edge_ev))
    if clip:
        np.clip(soc, 0.0, 1.0, out=soc)
    return SocResult(soc, cal)
