"""Simulated STXM point detector: counts along a scan line, dark counts, Poisson, dead time.

A scanning transmission X-ray microscope focuses the beam to a spot and counts
the transmitted photons (PMT or avalanche photodiode behind a counter card) while
the sample is rastered. `STXMDetector` is an ophyd-async ``StandardReadable`` that
is ``Triggerable``: one trigger counts ``pixels_per_line`` consecutive pixels of
``dwell_time`` each on its own clock (1 pixel in step mode, a whole line while the
fine stage flies). Its readings are arrays, one value per pixel:

* ``<name>_counts``: recorded counts, ``Poisson(dwell * (flux * I0 * exp(-OD) +
  dark_rate))`` reduced by the counter's non-paralysable dead time ``tau``:
  ``recorded = N / (1 + N * tau / dwell)`` (stochastically rounded to whole counts);
* ``<name>_i0``: the I0 monitor's relative flux at each pixel (a second counter
  channel, as on real counter cards);
* ``<name>_time``: UNIX time of each pixel's mid-dwell (for positions from a
  monitored stage readback).

Hand-written (no ophyd-async simulated counter exists); the counting is vectorised
per line: the detector sleeps for the line's duration, then computes all pixels at
the exact stage positions of their mid-dwell instants (``position_at`` of the
tracked axes), which is what a hardware-clocked counter sees.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from ophyd_async.core import (
    Array1D,
    AsyncStatus,
    StandardReadable,
    soft_signal_r_and_setter,
    soft_signal_rw,
)
from ophyd_async.core import StandardReadableFormat as Format

__all__ = ["STXMDetector", "validate_dwell_time"]

logger = logging.getLogger(__name__)

#: Triggers (lines or pixels) whose true positions `STXMDetector.pixel_log` keeps.
PIXEL_LOG_LENGTH = 20_000
#: Longest accepted dwell per pixel, s.
MAX_DWELL_S = 10.0


def validate_dwell_time(value: float) -> float:
    """Return ``value`` if it is a valid dwell time (0 < t <= 10 s), else raise ``ValueError``.

    Examples
    --------
    >>> validate_dwell_time(0.001)
    0.001
    """
    value = float(value)
    if not np.isfinite(value) or value <= 0 or value > MAX_DWELL_S:
        raise ValueError(
            f"dwell_time must be > 0 s and <= {MAX_DWELL_S} s per pixel, got {value} s; "
            "STXM dwells are typically 0.5-10 ms."
        )
    return value


class STXMDetector(StandardReadable):
    """Point detector counting one line (or one pixel) per trigger.

    Parameters
    ----------
    od_at : callable
        ``od_at(x_um, y_um, energy_ev) -> OD`` of the sample (arrays of positions).
    x_position_at, y_position_at : callable
        Exact stage positions (um) at UNIX times (arrays).
    energy : callable
        Async callable returning the photon energy, eV (read once per trigger; a
        bound method such as ``axis.user_readback.get_value``, not the device, which
        would become a child of the detector).
    flux_at : callable
        Relative incident flux at UNIX times (the I0 monitor's model).
    beam_on : callable
        Async callable, True when the shutter lets the beam through.
    flux_cps : float
        Counts per second with the full flux and no sample.
    dark_cps : float
        Dark count rate, counts/s.
    dead_time_s : float
        Non-paralysable dead time of the counter, s.
    dwell_time : float
        Initial dwell per pixel, s.
    seed : int
        Seed of the Poisson noise.
    name : str
        Device name.
    """

    def __init__(  # noqa: PLR0913 -- keyword options of the simulated detector
        self,
        od_at: Callable[[np.ndarray, np.ndarray, float], np.ndarray],
        x_position_at: Callable[[np.ndarray], np.ndarray],
        y_position_at: Callable[[np.ndarray], np.ndarray],
        energy: Callable[[], Any],
        flux_at: Callable[[np.ndarray], np.ndarray],
        beam_on: Callable[[], Any],
        *,
        flux_cps: float = 2.0e7,
        dark_cps: float = 500.0,
        dead_time_s: float = 5.0e-9,
        dwell_time: float = 0.001,
        seed: int = 0,
        name: str = "",
    ) -> None:
        validate_dwell_time(dwell_time)
        self._od_at, self._x_at, self._y_at = od_at, x_position_at, y_position_at
        self._energy, self._flux_at, self._beam_on = energy, flux_at, beam_on
        self._rng = np.random.default_rng(seed)
        #: (mid times, true x, true y, energy) of the latest `PIXEL_LOG_LENGTH` triggers
        #: (ground truth of the fly positions; bounded for long-lived sessions).
        self.pixel_log: deque[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = deque(
            maxlen=PIXEL_LOG_LENGTH
        )
        with self.add_children_as_readables(Format.HINTED_SIGNAL):
            self.counts, self._set_counts = soft_signal_r_and_setter(
                Array1D[np.float64], np.zeros(1), units="counts"
            )
        with self.add_children_as_readables():
            self.i0, self._set_i0 = soft_signal_r_and_setter(Array1D[np.float64], np.zeros(1))
            self.time, self._set_time = soft_signal_r_and_setter(
                Array1D[np.float64], np.zeros(1), units="s"
            )
        with self.add_children_as_readables(Format.CONFIG_SIGNAL):
            self.dwell_time = soft_signal_rw(float, dwell_time, units="s")
            self.pixels_per_line = soft_signal_rw(int, 1)
            self.dead_time = soft_signal_rw(float, dead_time_s, units="s")
            self.dark_rate = soft_signal_rw(float, dark_cps, units="counts/s")
            self.full_rate = soft_signal_rw(float, flux_cps, units="counts/s")
        super().__init__(name=name)

    def trigger(self) -> AsyncStatus:
        """Count ``pixels_per_line`` pixels of ``dwell_time`` each, starting now."""
        return AsyncStatus(self._acquire())

    async def _acquire(self) -> None:
        dwell = validate_dwell_time(await self.dwell_time.get_value())
        n = int(await self.pixels_per_line.get_value())
        if n < 1:
            raise ValueError(f"pixels_per_line must be >= 1, got {n}")
        tau, dark, full = await asyncio.gather(
            self.dead_time.get_value(), self.dark_rate.get_value(), self.full_rate.get_value()
        )
        energy = float(await self._energy())
        beam = bool(await self._beam_on())
        t0 = time.time()
        mids = t0 + (np.arange(n) + 0.5) * dwell
        await asyncio.sleep(max(0.0, t0 + n * dwell - time.time()))
        x, y = self._x_at(mids), self._y_at(mids)
        flux = np.asarray(self._flux_at(mids), dtype=float)
        rate = np.full(n, float(dark))
        if beam:
            od = await asyncio.to_thread(self._od_at, x, y, energy)
            rate += full * flux * np.exp(-od)
        true_counts = self._rng.poisson(rate * dwell).astype(float)
        # the counter loses N * tau / dwell of N on average: stochastic rounding, no bias
        expected = true_counts / (1.0 + true_counts * tau / dwell)
        recorded = np.floor(expected + self._rng.random(n))
        self.pixel_log.append((mids, x, y, energy))
        self._set_time(mids)
        self._set_i0(flux)
        self._set_counts(recorded)
        logger.debug("%s: %d pixels at %.2f eV", self.name, n, energy)
