"""The results of a XANES run prepared in the sink while the scan runs, and sent early.

:class:`ResultPreparer` tells a sink the structure of the results at the first
detector descriptor (the XANES arrays of :func:`xanes_layout`, and the arrays the
post-processors declare with a ``layout(frame_shape)`` method, as optional);
:func:`send_early` lets the sink store the maps while the post-processors run.
Both are only speed-ups: a sink without ``prepare`` / ``send_early`` stores
everything at ``publish``, and a failure here is logged, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from event_model import DocumentRouter

from .xanes_results import RESULT_UNITS, ResultSink

__all__ = ["ResultPreparer", "send_early", "xanes_layout"]

logger = logging.getLogger(__name__)


def send_early(
    sink: ResultSink | None, run_uid: str, arrays: Mapping[str, Any], units: Mapping[str, str]
) -> None:
    """Let a sink with ``send_early`` store final arrays now (publish follows; failure logged).

    Parameters
    ----------
    sink : ResultSink or None
        Where the analysis publishes; left alone without a ``send_early`` method.
    run_uid : str
        The run.
    arrays : mapping of str to ndarray
        Final arrays (the maps), published later with the same objects.
    units : mapping of str to str
        Their units.
    """
    try:
        if hasattr(sink, "send_early"):
            sink.send_early(run_uid, dict(arrays), units=dict(units))
    except Exception:
        logger.warning("results of run %s not sent early", run_uid, exc_info=True)


def xanes_layout(
    frame_shape: tuple[int, ...], n_energies: int, n_references: int, keep_normalized: bool = True
) -> dict[str, tuple[tuple[int, ...], str]]:
    """``key -> (shape, dtype)`` of the XANES arrays a complete run publishes.

    Parameters
    ----------
    frame_shape : tuple of int
        ``(H, W)`` of the detector frames.
    n_energies, n_references : int
        Energies of the scan, and reference spectra of the fit.
    keep_normalized : bool
        Whether the normalised stack is published.

    Examples
    --------
    >>> xanes_layout((4, 5), 3, 2)["fractions"], xanes_layout((4, 5), 3, 2)["energies"]
    (((2, 4, 5), 'float32'), ((3,), 'float64'))
    """
    shape = tuple(int(n) for n in frame_shape)
    layout = dict.fromkeys(
        ("edge_energy", "e0", "edge_step", "soc", "soc_edge", "oxidation_state", "lcf_residual"),
        (shape, "float32"),
    )
    layout["fractions"] = ((int(n_references), *shape), "float32")
    layout["mask"] = (shape, "bool")
    layout["energies"] = ((int(n_energies),), "float64")
    if keep_normalized:
        layout["normalized"] = ((int(n_energies), *shape), "float32")
    return layout


class ResultPreparer(DocumentRouter):
    """Tell the sink the structure of a XANES run's results as soon as it is known.

    At the first detector stream's descriptor the map shape is known: a sink with a
    ``prepare(run_uid, layout, units=..., start=...)`` method (e.g.
    :class:`ssb_beamline.storage.TiledResultSink`) then creates the results
    version while the scan runs; at the stop document (after the analysis
    published) its ``discard(run_uid)`` removes a version nothing was published
    into. Subscribe it after the analysis callback of the same run. A sink without
    these methods is left alone; a failure here is logged, never raised.

    Parameters
    ----------
    sink : ResultSink
        Where the analysis publishes; prepared only if it has ``prepare``/``discard``.
    references : sequence
        The reference spectra of the fit (their number gives the ``fractions`` shape).
    keep_normalized : bool, optional
        Whether the analysis publishes the normalised stack (default True).
    post_processors : sequence, optional
        The analysis' post-processors; those with ``layout(frame_shape) -> {key:
        (shape, dtype, unit)}`` have these arrays prepared too, as optional (a
        run may lack them, e.g. without particles).
    """

    def __init__(
        self,
        sink: ResultSink,
        references: Any,
        keep_normalized: bool = True,
        post_processors: Sequence[Any] = (),
    ) -> None:
        super().__init__()
        self.sink, self.keep_normalized = sink, keep_normalized
        self.post_processors = list(post_processors)
        self.n_references = len(references)
        self._start: dict = {}
        self._prepared = False

    def start(self, doc):
        """Keep the start document (uid, energies, detector key, pixel size)."""
        self._start = doc

    def descriptor(self, doc):
        """Prepare the results at the first stream carrying the detector."""
        prepare = getattr(self.sink, "prepare", None)
        key = doc.get("data_keys", {}).get(self._start.get("detector_key"))
        if prepare is None or self._prepared or key is None or "energies_ev" not in self._start:
            return
        self._prepared = True
        try:
            frame_shape = tuple(key["shape"])[-2:]
            layout = xanes_layout(frame_shape, len(self._start["energies_ev"]),
                                  self.n_references, self.keep_normalized)  # fmt: skip
            units = {k: "eV" if k == "energies" else RESULT_UNITS[k] for k in layout}
            optional = self._post_layout(frame_shape, layout, units)
            prepare(self._start["uid"], layout, units=units, start=self._start, optional=optional)
        except Exception:  # only a speed-up: publish stores everything without it
            logger.warning("results of run %s not prepared", self._start.get("uid"), exc_info=True)

    def _post_layout(self, frame_shape, layout: dict, units: dict) -> list[str]:
        """Add the post-processors' declared arrays to ``layout`` and ``units``; their keys."""
        optional = []
        for processor in self.post_processors:
            declared = getattr(processor, "layout", None)
            for key, (shape, dtype, unit) in (declared(frame_shape) if declared else {}).items():
                if key not in layout:  # a XANES map's key stays the XANES map's
                    layout[key], units[key] = (shape, dtype), unit
                    optional.append(key)
        return optional

    def stop(self, doc):
        """Remove the prepared version if the analysis published nothing into it."""
        discard = getattr(self.sink, "discard", None)
        if self._prepared and discard is not None:
            try:
                discard(self._start["uid"])
            except Exception:
                logger.warning("unused results version of %s not removed", self._start.get("uid"),
                               exc_info=True)  # fmt: skip
