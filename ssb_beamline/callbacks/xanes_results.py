"""What the live XANES analysis publishes, and the records it fills while it runs.

Kept apart from the callback so that other live analyses (tomography, particle
statistics) share the sink protocol, the post-processor hook and the result
arrays without importing the XANES callback.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

__all__ = [
    "RESULT_UNITS",
    "LiveOutcome",
    "LiveUpdate",
    "MapContext",
    "MapPostProcessor",
    "PostResult",
    "ResultSink",
    "result_arrays",
    "result_metadata",
    "run_post_processors",
    "volume_chunks",
]

logger = logging.getLogger(__name__)


class ResultSink(Protocol):
    """Where results are published (e.g. :class:`ssb_beamline.storage.TiledResultSink`).

    A sink may also carry a chunking hint for volumes, ``slice_chunks(shape)``
    (see :func:`volume_chunks`), and ``send_early`` (see ``xanes_prepare.send_early``).
    """

    def publish(
        self,
        run_uid: str,
        arrays: Mapping[str, np.ndarray],
        *,
        units: Mapping[str, str],
        metadata: Mapping[str, Any],
        tables: Mapping[str, Any] | None = None,
        chunks: Mapping[str, tuple[int, ...]] | None = None,
        start: Mapping[str, Any] | None = None,
    ) -> str:
        """Store ``arrays`` (and ``tables``) as the next result version; return its path.

        ``start`` is the run's start document (the axes of the maps come from it).
        """


def volume_chunks(
    sink: ResultSink, arrays: Mapping[str, np.ndarray]
) -> dict[str, tuple[int, ...]] | None:
    """The chunk shapes the sink asks for its volumes (arrays of >= 3 dimensions).

    A sink carries its chunking hint as an optional ``slice_chunks(shape)``
    method (e.g. :class:`ssb_beamline.storage.TiledResultSink`: one slice per
    chunk); a sink without one stores every array as it chooses (``None``).

    Parameters
    ----------
    sink : ResultSink
        The sink the arrays are for; its optional ``slice_chunks(shape)`` gives the
        chunk shape of an array.
    arrays : mapping of str to numpy.ndarray
        The arrays about to be published; only those of 3 or more dimensions get a
        chunk shape.

    Returns
    -------
    dict of str to tuple of int, or None
        Chunk shape per volume key; None when the sink has no ``slice_chunks``.
    """
    hint = getattr(sink, "slice_chunks", None)
    if hint is None:
        return None
    return {k: tuple(hint(v.shape)) for k, v in arrays.items() if np.ndim(v) >= 3}


@dataclass(frozen=True)
class MapContext:
    """What a post-processor gets besides the maps: the run and its data.

    Attributes
    ----------
    run_uid : str
        Start uid of the run.
    start : mapping
        The run's start document (sample, pixel size, plan arguments).
    energies : numpy.ndarray, shape (N,)
        Energies of the frames, eV.
    absorbance : numpy.ndarray of float32, shape (N, H, W)
        The flat-field corrected absorbance frames the maps were computed from.
    references : object, optional
        The reference spectra the maps were fitted with (None: the shipped ones).
    below_edge : callable, optional
        ``below_edge()``: the :func:`~ssb_beamline.analysis.phase_map.below_edge_image`
        of ``absorbance`` made while the scan ran (waits for it), or None if it was not.
    """

    run_uid: str
    start: Mapping[str, Any]
    energies: np.ndarray
    absorbance: np.ndarray  # (N, H, W) float32, the frames analysed
    references: object = None  # the references the maps were analysed with (None: shipped)
    below_edge: Callable[[], Any] | None = None  # made ahead by the live analysis


@dataclass
class PostResult:
    """Extra results of a post-processor, published with the XANES maps.

    Attributes
    ----------
    arrays : dict of str to numpy.ndarray
        Extra maps to publish, by key (must not reuse a XANES map's key).
    units : dict of str to str
        Unit of each array of ``arrays`` (``"eV"``, ``"um"``, ...).
    tables : dict of str to pandas.DataFrame
        Extra tables (e.g. ``particles``), one row per item.
    metadata : dict
        JSON-safe settings and summary numbers, stored under the post-processor's
        ``name``.
    """

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)  # name -> pandas DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)


class MapPostProcessor(Protocol):
    """Analysis that runs on the XANES maps at the end of a run (e.g. particle statistics).

    ``name`` keys its metadata; a failing post-processor is logged and reported in
    the outcome, and the XANES maps are published without its results. One with a
    true ``uses_below_edge`` attribute gets ``context.below_edge`` from the live
    analysis (the below-edge image, made while the scan ran).
    """

    name: str

    def __call__(self, maps: Mapping[str, np.ndarray], context: MapContext) -> PostResult:
        """Extra results computed from the maps and the run's data."""


@dataclass
class LiveUpdate:
    """Progress of the live analysis, passed to ``on_update`` after each image.

    Attributes
    ----------
    run_uid : str
        Start uid of the run.
    frames_done, frames_total : int
        Images analysed so far, and planned.
    energy_ev : float
        Energy of the latest image, eV.
    edge_energy_median_ev : float or None
        Running median edge energy over the sample, eV (None until enough energies).
    """

    run_uid: str
    frames_done: int
    frames_total: int
    energy_ev: float
    edge_energy_median_ev: float | None = None


@dataclass
class LiveOutcome:
    """What the live analysis produced for one run.

    Attributes
    ----------
    run_uid : str
        Start uid of the run.
    maps : XanesMaps or None
        The final maps (None if the analysis failed).
    stored_at : str or None
        ``results/<uid>/<version>`` once stored.
    errors : list of str
        What went wrong (empty when ``ok``).
    tables : dict
        Extra tables of the post-processors (e.g. ``particles``).
    ingest_seconds : list of float
        Time spent on each image.
    final_seconds, normalized_seconds : float or None
        Time of the end-of-run maps, and of the normalised stack.
    """

    run_uid: str
    maps: Any = None
    stored_at: str | None = None
    errors: list[str] = field(default_factory=list)
    tables: dict[str, Any] = field(default_factory=dict)
    ingest_seconds: list[float] = field(default_factory=list)
    final_seconds: float | None = None
    normalized_seconds: float | None = None

    @property
    def ok(self) -> bool:
        """Whether the analysis ended without error."""
        return not self.errors and self.maps is not None


#: Units of the published result arrays.
RESULT_UNITS = {
    "edge_energy": "eV",
    "e0": "eV",
    "edge_step": "absorbance",
    "soc": "fraction Ni3+ (state of charge)",
    "soc_edge": "fraction Ni3+ (from edge energy)",
    "oxidation_state": "Ni valence",
    "fractions": "fraction",
    "lcf_residual": "normalised absorbance (RMS)",
    "mask": "bool",
    "normalized": "normalised absorbance",
}


def result_arrays(maps: Any, valid: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The arrays of :class:`~ssb_beamline.analysis.XanesMaps` to publish, with units.

    Pixels that were invalid in any frame (saturated, no flat signal) are taken out
    of the mask and set to NaN in the maps, so no map value hides a bad pixel.

    Parameters
    ----------
    maps : XanesMaps
        The end-of-run maps of :func:`~ssb_beamline.analysis.analyse_xanes_stack`.
    valid : numpy.ndarray of bool, shape (H, W)
        Pixels valid in every frame (not saturated, with flat signal); the others are
        taken out of the mask and set to NaN in the maps.

    Returns
    -------
    arrays : dict of str to numpy.ndarray
        The maps to publish (edge energy, e0, SOC, fractions, mask, ...).
    units : dict of str to str
        The unit of each (from ``RESULT_UNITS``).
    """
    mask = maps.mask & valid
    arrays = {
        "edge_energy": maps.edge_energy,
        "e0": maps.e0,
        "edge_step": maps.edge_step,
        "soc": maps.soc,
        "soc_edge": maps.soc_edge,
        "oxidation_state": maps.oxidation_state,
        "fractions": maps.fractions,
        "lcf_residual": maps.residual,
    }
    invalid = ~valid
    if invalid.any():
        for key in ("edge_energy", "soc", "soc_edge", "oxidation_state", "lcf_residual"):
            arrays[key] = np.where(invalid, np.float32(np.nan), arrays[key])
    arrays["mask"] = mask
    if maps.norm is not None:
        arrays["normalized"] = maps.norm
    return arrays, {key: RESULT_UNITS[key] for key in arrays}


def result_metadata(maps: Any) -> dict[str, Any]:
    """How the maps were made: ranges, calibration, references, timings.

    Parameters
    ----------
    maps : XanesMaps
        The end-of-run maps of :func:`~ssb_beamline.analysis.analyse_xanes_stack`.

    Returns
    -------
    dict
        JSON-safe: global e0 (eV), pre/post/LCF ranges (eV), normalisation order, mask
        threshold, reference names, calibration, timings (s) and the edge estimator.
    """
    return {
        "e0_global_ev": float(maps.e0_global),
        "pre_range_ev": [float(v) for v in maps.pre_range],
        "post_range_ev": [float(v) for v in maps.post_range],
        "nnorm": int(maps.nnorm),
        "lcf_range_ev": [float(v) for v in maps.lcf_range],
        "mask_threshold": float(maps.mask_threshold),
        "reference_names": list(maps.reference_names),
        "calibration": dataclasses.asdict(maps.calibration),
        "timings_s": {k: float(v) for k, v in maps.timings.items()},
        # which half-step / derivative estimator, on which energy grid (edge energies
        # from different grids or estimators are only comparable knowing both)
        "edge_estimator": dict(getattr(maps, "edge_estimator", {}) or {}),
    }


def run_post_processors(
    post_processors: Sequence[MapPostProcessor],
    maps: dict[str, np.ndarray],
    context: MapContext,
    outcome: LiveOutcome,
) -> PostResult:
    """Run every post-processor on a run's maps; a failing one is reported, the rest go on.

    Parameters
    ----------
    post_processors : sequence of MapPostProcessor
        The analyses to run, in order.
    maps : dict of str to numpy.ndarray
        The run's maps (each post-processor gets them).
    context : MapContext
        The run and its data.
    outcome : LiveOutcome
        Gets each failure in ``errors`` and the merged ``tables``.

    Returns
    -------
    PostResult
        The arrays, units and tables of all, and each one's metadata under its ``name``.
    """
    merged = PostResult()
    for processor in post_processors:
        try:
            result = processor(maps, context)
        except Exception as exc:
            message = f"{processor.name}: {type(exc).__name__}: {exc}"
            outcome.errors.append(message)
            logger.exception(
                "post-processor %s failed on run %s; the XANES maps are still published",
                processor.name,
                context.run_uid,
            )
            continue
        merged.arrays.update(result.arrays)
        merged.units.update(result.units)
        merged.tables.update(result.tables)
        merged.metadata[processor.name] = result.metadata
    outcome.tables = dict(merged.tables)
    return merged
