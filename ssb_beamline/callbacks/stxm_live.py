"""Live analysis of STXM raster scans: OD maps as the lines arrive, ratio maps at the end.

A thin `DocumentRouter` around :mod:`ssb_beamline.analysis.stxm`: the dark pixels
give the dark rate, each energy's I0 line (stream ``flat``) the open-beam rate,
and each ``primary`` line (fly) or pixel (step) is turned into OD and placed in
the energy's map. A fly line waits until the monitored stage readback
(``stage_monitor``) has passed its last pixel's time stamp, so that every pixel is
placed at an interpolated, not extrapolated, position. At the end the ratio, the
Ni3+ fraction (with reference ratios in the start document) and the particle
statistics are computed (:func:`~ssb_beamline.analysis.stxm_maps.stxm_maps`) and
published next to the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
from event_model import DocumentRouter

from ssb_beamline.analysis.stxm import (
    dark_rate,
    line_od,
    open_rate,
    pixel_positions,
    resample_line,
)
from ssb_beamline.analysis.stxm_maps import stxm_maps

from .guard import guarded
from .xanes_results import LiveOutcome, ResultSink

__all__ = ["STXM_PLANS", "STXMLiveAnalysis", "STXMUpdate", "stxm_live_factory"]

logger = logging.getLogger(__name__)

#: Plans this analysis handles.
STXM_PLANS = ("stxm_ratio_scan", "stxm_stack_scan")

_guarded = guarded("live STXM analysis")


class STXMUpdate(dict):
    """Progress after each line: ``run_uid``, ``energy_ev``, ``lines_done``, ``lines_total``."""


class STXMLiveAnalysis(DocumentRouter):
    """OD maps of one STXM run as it is measured, and its final maps.

    Parameters
    ----------
    sink : ResultSink, optional
        Where the final maps go (tiled ``results/<uid>/vN``).
    on_update : callable, optional
        Called with an `STXMUpdate` after every line.
    source : str
        ``"live"`` or ``"replay"``, stored with the results.
    """

    def __init__(self, *, sink: ResultSink | None = None,
                 on_update: Callable[[STXMUpdate], None] | None = None,
                 source: str = "live") -> None:  # fmt: skip
        super().__init__()
        self.sink, self.on_update, self.source = sink, on_update, source
        self.outcome = LiveOutcome(run_uid="")
        self._failed = False
        self._streams: dict[str, str] = {}
        self._dark: float | None = None
        self._open: dict[int, float] = {}
        self._monitor_t: list[float] = []
        self._monitor_x: list[float] = []
        self._pending: list[dict] = []
        #: Recovered stage x of every fly-line pixel, in arrival order: (times, x).
        self.positions: list[tuple[np.ndarray, np.ndarray]] = []
        self.od: np.ndarray | None = None
        self.lines_done = 0

    @_guarded
    def start(self, doc: dict) -> None:
        """Read the raster and keys; allocate the OD maps (NaN until measured)."""
        self._start = doc
        self.outcome.run_uid = doc["uid"]
        r = doc["raster"]
        self.energies = np.asarray(doc["energies_ev"], dtype=np.float64)
        self.x_grid = np.asarray(r["x_um"], dtype=np.float64)
        self.y_grid = np.asarray(r["y_um"], dtype=np.float64)
        self.step, self.dwell, self.mode = float(r["step_um"]), float(r["dwell_time"]), r["mode"]
        self.od = np.full((self.energies.size, self.y_grid.size, self.x_grid.size), np.nan,
                          np.float32)  # fmt: skip
        self._keys = {k: doc[k] for k in ("counts_key", "i0_counts_key", "time_key",
                                         "energy_key", "x_key", "y_key")}  # fmt: skip
        self._monitor_key = doc.get("monitor_key")

    @_guarded
    def descriptor(self, doc: dict) -> None:
        """Remember each stream's name and the counter's dead time."""
        self._streams[doc["uid"]] = doc.get("name", "primary")
        det = self._start["detectors"][0]
        conf = doc.get("configuration", {}).get(det, {}).get("data", {})
        if f"{det}-dead_time" in conf or f"{det}_dead_time" in conf:
            self.tau = float(conf.get(f"{det}_dead_time", conf.get(f"{det}-dead_time")))
        elif not hasattr(self, "tau"):
            self.tau = 0.0

    def _energy_index(self, energy: float) -> int:
        return int(np.argmin(np.abs(self.energies - energy)))

    @_guarded
    def event(self, doc: dict) -> None:
        """Route the event by stream."""
        stream = self._streams.get(doc["descriptor"])
        data, k = doc["data"], self._keys
        if stream == "stage_monitor":
            self._monitor_t.append(float(doc["timestamps"][self._monitor_key]))
            self._monitor_x.append(float(data[self._monitor_key]))
            self._drain(final=False)
        elif stream == "dark":
            self._dark = dark_rate(np.asarray(data[k["counts_key"]]), self.dwell, self.tau)
        elif stream == "flat":
            index = self._energy_index(float(data[k["energy_key"]]))
            self._open[index] = open_rate(np.asarray(data[k["counts_key"]]),
                                          np.asarray(data[k["i0_counts_key"]]), self.dwell,
                                          self.tau, self._dark or 0.0)  # fmt: skip
        elif stream == "primary":
            self._pending.append(data)
            self._drain(final=False)

    def _drain(self, final: bool) -> None:
        """Place the pending lines whose pixels the monitor has passed (all at the end)."""
        while self._pending:
            data = self._pending[0]
            times = np.asarray(data[self._keys["time_key"]], dtype=np.float64)
            behind = not self._monitor_t or self._monitor_t[-1] < times[-1]
            if self.mode == "fly" and not final and behind:
                return
            self._pending.pop(0)
            self._place(data, times)

    def _place(self, data: dict, times: np.ndarray) -> None:
        k = self._keys
        index = self._energy_index(float(data[k["energy_key"]]))
        od = line_od(np.asarray(data[k["counts_key"]]), np.asarray(data[k["i0_counts_key"]]),
                     self.dwell, self.tau, self._dark or 0.0, self._open[index])  # fmt: skip
        row = int(np.argmin(np.abs(self.y_grid - float(data[k["y_key"]]))))
        if self.mode == "fly":
            x = pixel_positions(times, np.asarray(self._monitor_t), np.asarray(self._monitor_x))
            self.positions.append((times, x))
            self.od[index, row] = resample_line(x, od, self.x_grid)
        else:
            col = int(np.argmin(np.abs(self.x_grid - float(data[k["x_key"]]))))
            self.od[index, row, col] = od[0]
        self.lines_done += 1
        if self.on_update is not None:
            self.on_update(STXMUpdate(run_uid=self.outcome.run_uid,
                                      energy_ev=float(self.energies[index]),
                                      lines_done=self.lines_done))  # fmt: skip

    @_guarded
    def stop(self, doc: dict) -> None:
        """Final maps, particle statistics; publish."""
        self._drain(final=True)
        t0 = time.perf_counter()
        measured = np.isfinite(self.od).any(axis=(1, 2))
        st = self._start
        e1, e2 = st["ratio_energies_ev"]
        needed = [e for e in (e1, e2) if not self._covered(e, measured)]
        if needed:
            self.outcome.errors.append(
                f"run ended ({doc.get('exit_status')}) before {needed} eV were measured; no "
                "ratio map"
            )
            return
        maps = stxm_maps(self.od[measured], self.energies[measured], (e1, e2),
                         pixel_size_um=self.step, pre_edge_ev=st.get("pre_edge_ev"),
                         reference_ratios=st.get("reference_ratios"),
                         reference_e1_ratio=st.get("reference_e1_ratio", 1.0))  # fmt: skip
        self.outcome.maps = maps.arrays
        self.outcome.tables = {"particles": maps.particles}
        self.outcome.final_seconds = time.perf_counter() - t0
        metadata = {"source": self.source, "exit_status": doc.get("exit_status"),
                    "analysis": "stxm", "x_um": self.x_grid.tolist(),
                    "y_um": self.y_grid.tolist(), "dark_rate_cps": self._dark,
                    "dead_time_s": self.tau, **maps.metadata}  # fmt: skip
        if self.sink is not None:
            self.outcome.stored_at = self.sink.publish(
                self.outcome.run_uid, maps.arrays, units=maps.units, metadata=metadata,
                tables={"particles": maps.particles}, start=self._start,
            )  # fmt: skip

    def _covered(self, energy: float, measured: np.ndarray) -> bool:
        e = self.energies[measured]
        return bool(e.size) and e[0] <= energy <= e[-1]


def stxm_live_factory(
    *,
    sink: ResultSink | None = None,
    on_update: Callable[[STXMUpdate], None] | None = None,
    outcomes: list[LiveOutcome] | None = None,
    source: str = "live",
    analyses: list[STXMLiveAnalysis] | None = None,
) -> Callable[[str, dict], tuple[list, list]]:
    """A ``RunRouter`` factory: one `STXMLiveAnalysis` per STXM run.

    Each run's outcome is appended to ``outcomes`` and its analysis (with the
    recovered fly positions) to ``analyses`` when given.

    Parameters
    ----------
    sink : ResultSink, optional
        Where each run's final maps go (tiled ``results/<uid>/vN``); None keeps them in
        the outcome only.
    on_update : callable, optional
        Called with an ``STXMUpdate`` after every line of every run.
    outcomes : list of LiveOutcome, optional
        Each run's outcome is appended here at its start document.
    source : str, default "live"
        ``"live"`` or ``"replay"``, stored with the results.
    analyses : list of STXMLiveAnalysis, optional
        Each run's analysis is appended here (its ``positions`` hold the recovered
        fly-scan stage positions, um).

    Returns
    -------
    callable
        ``factory(name, start_doc) -> (callbacks, [])`` for
        ``event_model.RunRouter``; runs of other plans get nothing.
    """

    def factory(name: str, start_doc: dict) -> tuple[list, list]:
        if start_doc.get("plan_name") not in STXM_PLANS:
            return [], []
        callback = STXMLiveAnalysis(sink=sink, on_update=on_update, source=source)
        if outcomes is not None:
            outcomes.append(callback.outcome)
        if analyses is not None:
            analyses.append(callback)
        return [callback], []

    return factory
