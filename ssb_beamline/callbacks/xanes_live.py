"""Live analysis of a TXM XANES scan, frame by frame, as the documents arrive.

Each ``primary`` frame is dark- and flat-corrected (and corrected for the drift of
the incident flux between the flat and the image) as it arrives, and kept in an
absorbance stack. While the scan runs, an edge-energy estimate on a binned copy is
updated; at the end of the run the full maps are computed and published.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from event_model import DocumentRouter

from ssb_beamline.analysis import (
    JointFitAccumulator,
    NoEdgeContrastError,
    OpenBeam,
    absorbance_with_open_beam,
    analyse_xanes_stack,
    edge_energy_map,
    normalized_stack,
    open_beam,
    warm_up_kernels,
)

from ._below_edge import BelowEdgeAhead
from ._ingest_threads import Releaser, ingest_workers
from ._stack_buffers import StackBuffers
from .frames import HDF5FrameResolver
from .guard import guarded
from .no_particles import NO_PARTICLES_FIX, require_particles
from .pairing import FramePairing
from .xanes_prepare import send_early
from .xanes_results import (
    RESULT_UNITS,
    LiveOutcome,
    LiveUpdate,
    MapContext,
    MapPostProcessor,
    PostResult,
    ResultSink,
    result_arrays,
    result_metadata,
    run_post_processors,
)

__all__ = [
    "RESULT_UNITS",
    "LiveOutcome",
    "LiveUpdate",
    "MapContext",
    "MapPostProcessor",
    "PostResult",
    "ResultSink",
    "XanesLiveAnalysis",
    "result_arrays",
    "result_metadata",
]

logger = logging.getLogger(__name__)

#: Sub-sampling of the edge-energy estimate computed while the scan runs.
LIVE_BIN = 8
#: The live estimate is refreshed at most this often (s), and after the last image.
LIVE_ESTIMATE_INTERVAL_S = 1.0


_guarded = guarded("live XANES analysis")


class XanesLiveAnalysis(DocumentRouter):
    """Turn the frames of one ``xanes_scan`` run into XANES maps while it runs.

    Use one instance per run (see :func:`xanes_live_factory` for a ``RunRouter``).

    Parameters
    ----------
    references : (K, N) array or sequence of reference spectra
        End members for the linear-combination fit (index 0 reduced, last oxidised).
    sink : ResultSink, optional
        Where the final maps are published.
    on_update : callable, optional
        Called with a :class:`LiveUpdate` after every image.
    keep_normalized : bool
        Publish the normalised stack too.
    post_processors : sequence of MapPostProcessor
        Analyses of the final maps (particle statistics, ...), published with them.
    source : str
        Recorded with the results: ``"live"``, or ``"replay"`` for an archived run.
    """

    def __init__(
        self,
        references: Any,
        *,
        sink: ResultSink | None = None,
        on_update: Callable[[LiveUpdate], None] | None = None,
        keep_normalized: bool = True,
        post_processors: Sequence[MapPostProcessor] = (),
        source: str = "live",
    ) -> None:
        super().__init__()
        self.references = references
        self.sink = sink
        self.on_update = on_update
        self.keep_normalized = keep_normalized
        self.post_processors = list(post_processors)
        self.source = source
        self.outcome = LiveOutcome(run_uid="")
        self._failed = False
        # the next frame is read ahead while this one is corrected (GIL-free kernels)
        self._frames = HDF5FrameResolver(defer_read_ahead=True)
        self._pairs = FramePairing("")  # events and frames waiting for each other
        self._streams: dict[str, str] = {}  # descriptor uid -> stream name
        self._dark_sum: np.ndarray | None = None
        self._dark_count = 0
        self._dark: np.ndarray | None = None
        self._last_estimate: float | None = None
        self._last_estimate_time = -np.inf
        # energy index -> (flat prepared for the images at that energy, its I0)
        self._flats: dict[int, tuple[OpenBeam, float]] = {}
        self._stack: np.ndarray | None = None  # from self._buffers, at the first image
        self._buffers: StackBuffers | None = None
        self._valid: np.ndarray | None = None
        self._filled: np.ndarray | None = None
        self._sums: JointFitAccumulator | None = None
        self._below_edge: BelowEdgeAhead | None = None  # made ahead for the post-processors
        self._start: dict = {}
        self._workers = ingest_workers()
        self._releaser = Releaser()  # frees spent flats off this thread
        # loading the kernels (~0.1 s CPU from the disk cache) runs now, beside the I/O of
        # the run's first documents; the first detector stream joins it below
        warm_up_kernels(background=True)

    # -- documents ------------------------------------------------------------
    @_guarded
    def start(self, doc):
        """Read the energies and data keys of the run from its start document."""
        self._start = doc
        self.outcome.run_uid = doc["uid"]
        missing = [k for k in ("energies_ev", "detector_key", "energy_key") if k not in doc]
        if missing:
            raise ValueError(
                f"Run {doc['uid']} lacks {missing} in its start document: it was not taken "
                "with ssb_beamline's xanes_scan, so the live XANES analysis cannot follow it."
            )
        self.energies = np.asarray(doc["energies_ev"], dtype=float)
        self.detector_key = doc["detector_key"]
        self._pairs.detector_key = self.detector_key
        self.energy_key = doc["energy_key"]
        self.i0_key = doc.get("i0_key")

    @_guarded
    def descriptor(self, doc):
        """Note each stream; allocate the stack at the first detector stream."""
        self._streams[doc["uid"]] = doc["name"]
        key = doc["data_keys"].get(self.detector_key)
        if key is not None and key.get("external"):
            self._pairs.mark_external(doc["uid"])
        if key is not None and self._buffers is None:
            # the stack's pages are mapped on a helper thread from the first detector
            # stream (the darks) on, not faulted in by the images (~20 ms per 2048^2 frame)
            shape = tuple(key["shape"])[-2:]
            n = self.energies.size
            self._buffers = StackBuffers((n, *shape), normalized=self.keep_normalized)
            self._valid = np.ones(shape, dtype=bool)
            self._filled = np.zeros(n, dtype=bool)
            self._binned = np.zeros((n, *(-(-m // LIVE_BIN) for m in shape)), np.float32)
            warm_up_kernels()  # done by now, else finished while the darks come

    @_guarded
    def stream_resource(self, doc):
        """Open the HDF5 file a StreamResource describes."""
        self._frames.stream_resource(doc)

    @_guarded
    def stream_datum(self, doc):
        """Pair the detector frames of a StreamDatum with their events."""
        if self._frames.data_key(doc["stream_resource"]) != self.detector_key:
            return
        frames = self._frames.frames(doc)
        for event, frame in self._pairs.add_frames(
            doc["descriptor"], doc["seq_nums"]["start"], frames
        ):
            self._handle_frame(event, frame)

    @_guarded
    def event(self, doc):
        """Pair an event with its frame (or keep it until the frame arrives)."""
        frame = self._pairs.add_event(doc)
        if frame is not None:
            self._handle_frame(doc, frame)

    def _handle_frame(self, doc: dict, frame: np.ndarray) -> None:
        stream = self._streams.get(doc["descriptor"])
        data = doc["data"]
        i0 = float(data[self.i0_key]) if self.i0_key in data else 1.0
        if stream != "primary":  # an image starts it just before its GIL-free sweep
            self._frames.start_read_ahead()
        if stream == "dark":
            self._add_dark(frame)
        elif stream == "flat":
            index = self._energy_index(float(data[self.energy_key]))
            self._flats[index] = (open_beam(frame, self._dark_frame()), i0)
        elif stream == "primary":
            self._add_image(frame, i0, float(data[self.energy_key]))

    def _dark_frame(self) -> np.ndarray:
        """Mean of the dark frames (all darks come before the first flat)."""
        if self._dark_count == 0:
            raise ValueError(
                "A flat or image arrived before any dark frame; xanes_scan takes the "
                "darks first (n_dark >= 1)."
            )
        if self._dark is None:
            self._dark = (self._dark_sum / self._dark_count).astype(np.float32)
        return self._dark

    def _ready_stack(self) -> np.ndarray:  # waits for the pages at the first image
        if self._stack is None:
            self._stack = self._buffers.stack()
            self._sums = self._joint_sums_accumulator()
            if any(getattr(p, "uses_below_edge", False) for p in self.post_processors):
                self._below_edge = BelowEdgeAhead(self.energies)
        return self._stack

    def _joint_sums_accumulator(self) -> JointFitAccumulator | None:
        """Sums of the joint fit, filled as images arrive (None: the end reads all)."""
        try:
            return JointFitAccumulator(self._stack, self.energies, self.references)
        except ValueError as exc:  # e.g. references that the joint fit cannot take
            logger.info("no running joint-fit sums for run %s: %s", self.outcome.run_uid, exc)
            return None

    def _energy_index(self, energy: float) -> int:
        return int(np.argmin(np.abs(self.energies - energy)))

    @_guarded
    def stop(self, doc):
        """Compute the maps of the run, run the post-processors and publish."""
        self._frames.close()
        self._releaser.close()  # every spent flat freed before the maps
        no_image = self._stack is None or not self._filled.any()
        if no_image and doc.get("exit_status") in ("abort", "fail"):
            # an interrupted run that never reached its images: nothing failed here
            logger.warning(
                "run %s ended (%s) before its first sample image; no maps to compute",
                self.outcome.run_uid,
                doc.get("exit_status"),
            )
            self.outcome.errors.append(f"run ended ({doc.get('exit_status')}) before any image")
            return
        if no_image:
            raise ValueError(
                f"Run {self.outcome.run_uid} ended ({doc.get('exit_status')}) with no "
                "sample image; there is nothing to analyse."
            )
        t0 = time.perf_counter()
        filled = self._filled
        stack = self._stack if filled.all() else self._stack[filled]
        sums = self._sums.result() if self._sums is not None and filled.all() else None
        energies = self.energies[filled]
        try:
            maps = analyse_xanes_stack(stack, energies, self.references, joint_sums=sums)
        except NoEdgeContrastError as exc:  # a scan across the edge without one: no Ni here
            raise ValueError(
                f"no Ni-containing particles in the field of view ({exc}) {NO_PARTICLES_FIX}"
            ) from exc
        except ValueError as exc:
            if doc.get("exit_status") not in ("abort", "fail"):
                raise
            # an interrupted run with too few images (e.g. the disk filled up)
            logger.warning(
                "run %s ended (%s) after %d image(s); no maps: %s",
                self.outcome.run_uid,
                doc.get("exit_status"),
                int(filled.sum()),
                exc,
            )
            self.outcome.errors.append(f"run ended ({doc.get('exit_status')}): {exc}")
            return
        arrays, units = result_arrays(maps, self._valid)
        require_particles(maps, arrays["mask"])  # no results stored for an empty field
        arrays["energies"] = energies
        units["energies"] = "eV"
        self.outcome.maps = arrays
        self.outcome.final_seconds = time.perf_counter() - t0
        if self.keep_normalized:  # after the maps: they are what the scientist waits for
            out = self._buffers.normalized(stack.shape)  # mapped while the images came
            arrays["normalized"] = normalized_stack(stack, energies, maps, out=out)
            units["normalized"] = RESULT_UNITS["normalized"]
            self.outcome.normalized_seconds = time.perf_counter() - t0
        metadata = {
            "source": self.source,
            "exit_status": doc.get("exit_status"),
            "frames_analysed": int(filled.sum()),
            "frames_planned": int(filled.size),
            **result_metadata(maps),
        }
        send_early(self.sink, self.outcome.run_uid, arrays, units)  # while the rest is computed
        ahead = None if self._below_edge is None else self._below_edge.result
        context = MapContext(
            self.outcome.run_uid, self._start, self.energies[filled], stack, self.references, ahead
        )
        extra = run_post_processors(self.post_processors, dict(arrays), context, self.outcome)
        if self.sink is not None:
            self.outcome.stored_at = self.sink.publish(
                self.outcome.run_uid,
                {**arrays, **extra.arrays},
                units={**units, **extra.units},
                metadata={**metadata, **extra.metadata},
                tables=extra.tables,
                start=self._start,
            )
        logger.info("run %s: maps ready %.3f s after the last frame",
                    self.outcome.run_uid, self.outcome.final_seconds)  # fmt: skip

    # -- frame processing -----------------------------------------------------
    def _add_dark(self, frame: np.ndarray) -> None:
        if self._dark_sum is None:
            self._dark_sum = np.zeros(frame.shape, dtype=np.float64)
        self._dark_sum += frame
        self._dark_count += 1

    def _add_image(self, frame: np.ndarray, i0: float, energy: float) -> None:
        t0 = time.perf_counter()
        if not self._flats:
            raise ValueError(
                "An image arrived before any flat frame; the scan must take a flat "
                "before the first image (xanes_scan does)."
            )
        index = self._energy_index(energy)
        # the flat taken closest in energy (at this energy when flat_every == 1)
        flat_index = min(self._flats, key=lambda k: abs(self.energies[k] - energy))
        flat, flat_i0 = self._flats[flat_index]
        row = self._ready_stack()[index]
        # The flat was taken with flux flat_i0, the image with i0.
        flux = math.log(i0 / flat_i0) if i0 > 0 and flat_i0 > 0 else 0.0
        # the frame's validity is ANDed into the run's mask in the same sweep; the next
        # frame's read (which holds the GIL) starts now, to overlap the GIL-free sweep
        self._frames.start_read_ahead()
        absorbance_with_open_beam(
            frame, self._dark_frame(), flat, out=row, valid=self._valid, offset=flux,
            workers=self._workers,  # a core stays free for the read ahead
        )  # fmt: skip
        # flats below this energy are not needed again (images arrive in energy order)
        spent = [self._flats.pop(k) for k in [k for k in self._flats if k < flat_index]]
        if spent:
            self._releaser.release(spent)  # ~0.5 ms each if freed here
        self._binned[index] = self._stack[index, ::LIVE_BIN, ::LIVE_BIN]
        self._filled[index] = True
        if self._sums is not None:
            self._sums.add(index)  # every `batch` images, sums the batch (amortised)
        if self._below_edge is not None:  # once all below-edge frames are in, on a thread
            self._below_edge.add(index, self._stack)
        self.outcome.ingest_seconds.append(time.perf_counter() - t0)
        if self.on_update is not None:
            self.on_update(
                LiveUpdate(
                    self.outcome.run_uid,
                    int(self._filled.sum()),
                    int(self._filled.size),
                    energy,
                    self._edge_estimate(),
                )
            )

    def _edge_estimate(self) -> float | None:
        """Median edge energy of a binned copy of the frames so far (None before the edge)."""
        filled = self._filled
        energies = self.energies[filled]
        if energies.size < 6 or energies[-1] < energies[0] + 45.0:
            return None
        now = time.monotonic()
        if now - self._last_estimate_time < LIVE_ESTIMATE_INTERVAL_S and not filled.all():
            return self._last_estimate
        self._last_estimate_time = now
        stack = self._binned[filled]
        try:
            edge = edge_energy_map(stack, energies)
        except ValueError as exc:  # e.g. too few post-edge points yet
            logger.debug("no live edge estimate yet: %s", exc)
            return None
        finite = edge[np.isfinite(edge)]
        self._last_estimate = float(np.median(finite)) if finite.size else None
        return self._last_estimate
