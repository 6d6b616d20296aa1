"""Live reconstruction of tomography runs while the projections arrive.

:class:`ProjectionRouter` turns a run's documents into corrected projections, one
tomogram (an energy or a distance) at a time, with angles from the rotation readback
(step) or the monitored rotation at the frame times (fly). :class:`TomoLiveAnalysis`
reconstructs each energy (FBP, worker thread) once its last projection arrives, then
the 3D XANES maps. Handlers are guarded: failures are logged and recorded, not raised.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from event_model import DocumentRouter

from ssb_beamline._jsonable import jsonable
from ssb_beamline.analysis import (
    analyse_xanes_stack,
    angles_from_monitor,
    tomography,
)
from ssb_beamline.analysis.fly_angles import drop_repeated_angles
from ssb_beamline.analysis.rotation_center import median_center

from .frames import HDF5FrameResolver
from .guard import guarded
from .no_particles import require_particles
from .pairing import FramePairing
from .tomo_outcome import TomoOutcome
from .xanes_results import ResultSink, result_arrays, result_metadata, volume_chunks

__all__ = [
    "HOLO_PLANS",
    "TOMO_PLANS",
    "XANES_VOLUMES",
    "ProjectionRouter",
    "TomoLiveAnalysis",
    "TomoOutcome",
    "jsonable",
]

logger = logging.getLogger(__name__)

#: Plans analysed by :class:`TomoLiveAnalysis` and by ``HoloLiveAnalysis``.
TOMO_PLANS, HOLO_PLANS = ("tomo_scan", "xanes_tomo_scan"), ("holotomo_scan",)
#: 3D XANES maps published (each chunk-uploaded slice by slice, so only these).
XANES_VOLUMES = ("edge_energy", "soc", "mask")
#: What to check when the reconstructed volume holds no particle (no XANES volumes).
VOLUME_FIX = "Check that the sample is in the beam and the rotation centre."


#: Decorator of the tomography handlers (see :func:`.guard.guarded`).
guarded_tomo = guarded("live tomography")


class ProjectionRouter(DocumentRouter):
    """Corrected projections of the tomograms of one run (subclasses analyse them).

    ``segment_field`` names the start-document key of the event field telling the
    tomograms apart, ``segment_value`` its key in each of ``start["tomograms"]``.
    Subclasses implement ``correct(frame, flat, dark, flux) -> projection``,
    ``ingest(k, index, projection)``, ``segment_complete(k, angles)`` (tomogram ``k``
    and its angles are complete) and ``finish(stop_doc)``; ``setup()`` is optional.

    Parameters
    ----------
    sink : ResultSink, optional
        Where the subclass publishes its volumes and tables (keyword only); None keeps
        them in ``outcome`` only.
    source : str, default "live"
        Recorded with the results: ``"live"``, or ``"replay"`` for an archived run.
    """

    segment_field = "energy_key"
    segment_value = "energy_ev"

    def __init__(self, *, sink: ResultSink | None = None, source: str = "live") -> None:
        super().__init__()
        self.sink, self.source, self._failed = sink, source, False
        self.outcome, self._frames = TomoOutcome(run_uid=""), HDF5FrameResolver()
        self._pairs = FramePairing("")  # events and frames waiting for each other
        self._stream_of: dict[str, str] = {}  # descriptor uid -> stream name
        self._eventless: set[str] = set()  # fly streams: frames come only as StreamDatum
        self._dark_sum, self._dark_n = None, 0
        self._flat_sums: dict[int, list] = {}  # tomogram -> [sum, n, i0 sum]
        self._flats: dict[int, tuple[np.ndarray, float]] = {}  # tomogram -> (mean, i0)
        self._monitor: dict[int, list[tuple[float, float]]] = {}  # tomogram -> (t, angle)
        self.done: set[int] = set()  # tomograms handed to segment_complete

    @guarded_tomo
    def start(self, doc):
        """Read the tomograms, keys and angles of the run from its start document."""
        self.start_doc = doc
        self.outcome.run_uid, self.outcome.plan_name = doc["uid"], doc.get("plan_name")
        if missing := [k for k in ("detector_key", "angles_deg", "mode") if k not in doc]:
            raise ValueError(f"Run {doc['uid']} lacks {missing} in its start document: it was "
                             "not taken with ssb_beamline's tomography plans.")  # fmt: skip
        self.detector_key = doc["detector_key"]
        self._pairs.detector_key = self.detector_key
        self.timestamp_key = doc.get("timestamp_key") or f"{self.detector_key}-timestamp"
        self.rotation_key, self.i0_key = doc.get("rotation_key"), doc.get("i0_key")
        self.monitor_key = doc.get("monitor_key") or self.rotation_key
        self.fly = doc["mode"] == "fly"
        monitor = doc.get("monitor_stream", "rotation_monitor") if self.fly else None
        self.tomograms = doc.get("tomograms") or [{"angles_deg": doc["angles_deg"],
            "stream": "primary", "monitor_stream": monitor, "energy_ev": doc.get("energy_ev")},
        ]  # fmt: skip
        self.field = doc.get(self.segment_field)
        self.values = np.array([t.get(self.segment_value, np.nan) for t in self.tomograms], float)
        self.n_angles = [len(t["angles_deg"]) for t in self.tomograms]
        self.segment_of_stream = {t["stream"]: k for k, t in enumerate(self.tomograms)}
        self.segment_of_monitor = {t["monitor_stream"]: k for k, t in enumerate(self.tomograms)}
        self.pixel_size_um = float(doc.get("pixel_size_um") or 1.0)
        self.count = [0] * len(self.tomograms)  # projections received per tomogram
        self.angles = [np.full(n, np.nan) for n in self.n_angles]  # step: readbacks
        self.times = [np.full(n, np.nan) for n in self.n_angles]  # fly: frame time stamps
        self.setup()

    @guarded_tomo
    def descriptor(self, doc):
        """Note each stream and whether its frames come as StreamDatum documents."""
        self._stream_of[doc["uid"]] = doc["name"]
        if all(key.get("external") for key in doc["data_keys"].values()):
            self._eventless.add(doc["uid"])
        elif doc["data_keys"].get(self.detector_key, {}).get("external"):
            self._pairs.mark_external(doc["uid"])

    @guarded_tomo
    def stream_resource(self, doc):
        """Open the HDF5 file a StreamResource describes."""
        self._frames.stream_resource(doc)

    @guarded_tomo
    def stream_datum(self, doc):
        """Pair the frames (or time stamps) of a StreamDatum with their events."""
        key = self._frames.data_key(doc["stream_resource"])
        desc, seq = doc["descriptor"], doc["seq_nums"]
        segment = self.segment_of_stream.get(self._stream_of.get(desc, ""))
        if key == self.timestamp_key and desc in self._eventless and segment is not None:
            stamps = self._frames.frames(doc)
            self.times[segment][seq["start"] - 1 : seq["stop"] - 1] = stamps
            self._check_ready(segment)
            return
        if key != self.detector_key:
            return
        frames = self._frames.frames(doc)
        if desc in self._eventless:  # frames without events: the segment's next projections
            if segment is not None:
                for offset, seq_num in enumerate(range(seq["start"], seq["stop"])):
                    self._projection(segment, seq_num - 1, frames[offset], None, None)
            return
        for event, frame in self._pairs.add_frames(desc, seq["start"], frames):
            self._handle_frame(event, frame)

    @guarded_tomo
    def event(self, doc):
        """Keep a monitor reading, or pair an event with its frame."""
        stream = self._stream_of.get(doc["descriptor"], "")
        if stream in self.segment_of_monitor and self.monitor_key in doc["data"]:
            k, t = self.segment_of_monitor[stream], doc["timestamps"].get(self.monitor_key)
            self._monitor.setdefault(k, []).append(
                (t or doc["time"], doc["data"][self.monitor_key])
            )
            self._check_ready(k)
            return
        frame = self._pairs.add_event(doc)
        if frame is not None:
            self._handle_frame(doc, frame)

    @guarded_tomo
    def stop(self, doc):
        """Complete every tomogram still open, then finish the run's analysis."""
        self._frames.close()
        for k in sorted(set(range(len(self.n_angles))) - self.done):
            try:
                if self.count[k] < self.n_angles[k]:
                    raise ValueError(f"only {self.count[k]} of {self.n_angles[k]} projections")
                self._check_ready(k, force=True)
            except Exception as exc:  # the other tomograms are still analysed
                self.outcome.errors.append(f"tomogram {k}: {type(exc).__name__}: {exc}")
                logger.exception("run %s: tomogram %d not analysed", self.outcome.run_uid, k)
        t0 = time.perf_counter()
        self.finish(doc)
        self.outcome.final_seconds = time.perf_counter() - t0

    def _segment_of(self, data: Mapping[str, Any]) -> int:
        if len(self.tomograms) == 1 or self.field not in data:
            return 0
        return int(np.argmin(np.abs(self.values - float(data[self.field]))))

    def _handle_frame(self, doc: dict, frame: np.ndarray) -> None:
        stream, data = self._stream_of.get(doc["descriptor"]), doc["data"]
        i0 = float(data[self.i0_key]) if self.i0_key in data else None
        if stream == "dark":
            dark = frame.astype(np.float64)
            self._dark_sum = dark if self._dark_sum is None else self._dark_sum + dark
            self._dark_n += 1
        elif stream == "flat":
            sums = self._flat_sums.setdefault(self._segment_of(data), [0.0, 0, 0.0])
            sums[0] = sums[0] + frame.astype(np.float64)
            sums[1] += 1
            sums[2] += i0 or 0.0
        elif stream in self.segment_of_stream:
            k = self._segment_of(data)
            angle = data.get(self.rotation_key)
            self._projection(k, self.count[k], frame, angle, i0)

    def _flat(self, k: int) -> tuple[np.ndarray, float]:
        if k not in self._flats:
            if (sums := self._flat_sums.get(k)) is None:
                raise ValueError(f"Tomogram {k} has no flat frame (taken before its projections).")
            self._flats[k] = ((sums[0] / sums[1]).astype(np.float32), sums[2] / sums[1])
        return self._flats[k]

    def _projection(self, k: int, index: int, frame, angle, i0) -> None:
        if index >= self.n_angles[k]:
            raise ValueError(f"Tomogram {k} got more than its {self.n_angles[k]} projections.")
        if self._dark_n == 0:
            raise ValueError("A projection arrived before any dark frame; take darks first.")
        flat, flat_i0 = self._flat(k)
        flux = i0 / flat_i0 if i0 and flat_i0 else 1.0
        dark = (self._dark_sum / self._dark_n).astype(np.float32)
        self.ingest(k, index, self.correct(np.asarray(frame), flat, dark, flux))
        self.count[k] += 1
        if angle is not None:
            self.angles[k][index] = float(angle)
        self._check_ready(k)

    def _check_ready(self, k: int, force: bool = False) -> None:
        """Hand a complete tomogram and its angles to :meth:`segment_complete` once."""
        if k in self.done or self.count[k] < self.n_angles[k]:
            return
        if self.fly:
            samples = self._monitor.get(k)
            if samples is None or np.isnan(self.times[k]).any():
                if force:
                    raise ValueError(f"Fly tomogram {k} lacks frame time stamps or its monitor.")
                return
            t_mon, a_mon = np.array(samples).T
            if not force and t_mon.max() < self.times[k].max():
                return  # the monitor has not yet passed the last frame
            angles = angles_from_monitor(self.times[k], t_mon, a_mon)
        else:
            angles = self.angles[k]
        self.done.add(k)
        self.segment_complete(k, angles)

    def setup(self) -> None:
        """Subclass hook, called at the start document."""

    def publish(self, arrays: dict, units: dict, metadata: dict, tables: dict | None = None):
        """Keep the results in the outcome; publish them (volumes: one slice per chunk)."""
        self.outcome.volumes, self.outcome.metadata = arrays, jsonable(metadata)
        self.outcome.tables = dict(tables or {})
        if self.sink is not None:
            self.outcome.stored_at = self.sink.publish(
                self.outcome.run_uid, arrays, units=units, metadata=self.outcome.metadata,
                tables=tables, chunks=volume_chunks(self.sink, arrays),
            )  # fmt: skip


class TomoLiveAnalysis(ProjectionRouter):
    """Per-energy reconstructions of a ``tomo_scan`` / ``xanes_tomo_scan`` run, live.

    Parameters
    ----------
    references : optional
        End members of the XANES fit (default: the shipped NiO / LiNiO2).
    sink : ResultSink, optional
        Where volumes (one slice per chunk) and maps are published.
    center : float, optional
        Rotation-axis column; default: found on the first tomogram, kept for all.
    filter_name, reconstruct
        ``reconstruct(projections, angles, center, filter_name=, pixel_size=)``
        (default :func:`~ssb_beamline.analysis.tomography.reconstruct_fbp`).
    derivative_e0 : bool
        Compute the derivative e0 map (needs >= 6 energies in the edge window).
    source : str, default "live"
        Recorded with the results: ``"live"``, or ``"replay"`` for an archived run.
    """

    def __init__(
        self, references: Any = None, *, sink: ResultSink | None = None,
        center: float | None = None, filter_name: str = "hann",
        reconstruct: Callable[..., np.ndarray] = tomography.reconstruct_fbp,
        derivative_e0: bool = True, source: str = "live",
    ) -> None:  # fmt: skip
        super().__init__(sink=sink, source=source)
        self.references, self.center, self.filter_name = references, center, filter_name
        self.reconstruct, self.derivative_e0 = reconstruct, derivative_e0
        # reconstructions run here while the next energy's projections are ingested
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="tomo-fbp")
        self._futures: dict[int, Future] = {}
        self._stacks: dict[int, np.ndarray] = {}
        self.volumes: dict[int, np.ndarray] = {}  # tomogram -> (Z, Y, X) attenuation
        self.segment_angles: dict[int, np.ndarray] = {}

    def correct(self, frame, flat, dark, flux):
        """Attenuation (absorbance) of one projection."""
        # + ln(flux): the flat was taken with another incident flux than the projection
        return tomography.flat_field_projections(frame[None], flat, dark)[0] + math.log(flux)

    def ingest(self, k, index, projection):
        """Keep projection ``index`` of tomogram ``k``."""
        if k not in self._stacks:
            self._stacks[k] = np.zeros((self.n_angles[k], *projection.shape), np.float32)
        self._stacks[k][index] = projection

    def segment_complete(self, k, angles):
        """Reconstruct tomogram ``k`` in the background once it is complete."""
        self._futures[k] = self._pool.submit(self._reconstruct, k, self._stacks.pop(k), angles)

    def _reconstruct(self, k: int, stack: np.ndarray, angles: np.ndarray) -> None:
        t0 = time.perf_counter()
        angles, keep = drop_repeated_angles(angles)
        if keep.size < stack.shape[0]:  # frames taken with the rotation at rest (fly)
            logger.warning("tomogram %d: %d frames at repeated angles dropped", k,
                           stack.shape[0] - keep.size)  # fmt: skip
        stack, angles = stack[keep], tomography.check_angles(angles, keep.size)
        if self.center is None:
            self.center = median_center(stack, angles)
        volume = self.reconstruct(stack, angles, self.center, filter_name=self.filter_name,
                                  pixel_size=self.pixel_size_um)  # fmt: skip
        self.volumes[k], self.segment_angles[k] = volume, angles
        self.outcome.segment_seconds[k] = time.perf_counter() - t0
        logger.info("run %s: tomogram %d reconstructed in %.2f s", self.outcome.run_uid, k,
                    self.outcome.segment_seconds[k])  # fmt: skip

    def finish(self, doc):
        """Wait for the reconstructions and publish the volumes at the stop document."""
        for k, future in sorted(self._futures.items()):
            try:
                future.result()
            except Exception as exc:
                self.outcome.errors.append(f"tomogram {k}: {type(exc).__name__}: {exc}")
                logger.exception("run %s: tomogram %d not reconstructed", self.outcome.run_uid, k)
        self._pool.shutdown(wait=True)
        if not self.volumes:
            raise ValueError(f"Run {self.outcome.run_uid}: no tomogram was reconstructed.")
        done = sorted(self.volumes)
        stack = np.stack([self.volumes.pop(k) for k in done])  # (energies, Z, Y, X)
        arrays: dict[str, np.ndarray] = {"attenuation": stack, "energies": self.values[done]}
        units = {"attenuation": "1/um (linear attenuation)", "energies": "eV"}
        metadata: dict[str, Any] = {}
        if self.outcome.plan_name == "xanes_tomo_scan" and len(done) >= 2:
            try:
                maps, units_xanes, metadata["xanes"] = self._xanes(stack, self.values[done])
                arrays.update(maps)
                units.update(units_xanes)
            except Exception as exc:  # the volumes are still published
                self.outcome.errors.append(f"3D XANES: {type(exc).__name__}: {exc}")
                logger.exception("run %s: 3D XANES analysis failed", self.outcome.run_uid)
        metadata.update(
            plan_name=self.outcome.plan_name, source=self.source,
            exit_status=doc.get("exit_status"), segments=done,
            rotation_center_px=self.center, pixel_size_um=self.pixel_size_um,
            angles_deg=[self.segment_angles[k] for k in done],
            reconstruction_seconds=[self.outcome.segment_seconds.get(k) for k in done],
            filter_name=self.filter_name, method="FBP")  # fmt: skip
        self.publish(arrays, units, metadata)

    def _xanes(self, stack: np.ndarray, energies: np.ndarray):
        """Edge-energy / SOC volumes of the (N, Z, Y, X) attenuation stack."""
        n, nz, ny, nx = stack.shape
        maps = analyse_xanes_stack(stack.reshape(n, nz * ny, nx), energies, self.references,
                                   derivative_e0=self.derivative_e0)  # fmt: skip
        flat, units = result_arrays(maps, np.ones((nz * ny, nx), bool))
        require_particles(maps, flat["mask"], where="reconstructed volume", fix=VOLUME_FIX)
        keep = [k for k in XANES_VOLUMES if k in flat]  # the others follow from these
        volumes = {k: flat[k].reshape(*flat[k].shape[:-2], nz, ny, nx) for k in keep}
        return volumes, {k: units[k] for k in keep}, result_metadata(maps)
