"""Simulated incident-flux (I0) monitor that drifts like a storage ring."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from ophyd_async.core import StandardReadable, soft_signal_r_and_setter
from ophyd_async.core import StandardReadableFormat as Format

__all__ = ["FluxDriftModel", "I0Monitor", "RingSource"]


@dataclass
class FluxDriftModel:
    """Deterministic relative flux ``I0(t) / I0_nominal`` versus elapsed time.

    ``flux(t) = exp(-decay_per_s * t) * (1 + amp * sin(2 pi t / period + phi))
    * (1 + walk(t))`` where ``walk`` is a seeded Gaussian random walk sampled
    every second (linearly interpolated) with ``walk_sigma`` per sqrt(s). The
    defaults give a drift of about 0.5 % over a minute.

    Parameters
    ----------
    seed : int
        Seed of the phase and the random walk.
    decay_per_s : float
        Exponential decay rate of the ring current, 1/s.
    sine_amplitude : float
        Relative amplitude of the slow oscillation.
    sine_period_s : float
        Period of the oscillation, s.
    walk_sigma : float
        Random-walk step per sqrt(s) (relative).
    """

    seed: int = 0
    decay_per_s: float = 5e-5
    sine_amplitude: float = 0.003
    sine_period_s: float = 40.0
    walk_sigma: float = 3e-4
    _walk: np.ndarray = field(init=False, repr=False)
    _phase: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self._phase = float(rng.uniform(0, 2 * np.pi))
        self._walk = np.concatenate([[0.0], np.cumsum(rng.normal(0, self.walk_sigma, 3600))])

    def __call__(self, t_s: float | np.ndarray) -> np.ndarray | float:
        """Relative flux at elapsed time ``t_s`` (s, >= 0; the walk repeats hourly)."""
        t = np.asarray(t_s, dtype=float)
        period = len(self._walk) - 1
        walk = np.interp(np.mod(t, period), np.arange(len(self._walk)), self._walk)
        value = (
            np.exp(-self.decay_per_s * t)
            * (1 + self.sine_amplitude * np.sin(2 * np.pi * t / self.sine_period_s + self._phase))
            * (1 + walk)
        )
        return float(value) if np.ndim(value) == 0 else value


class RingSource(Protocol):
    """What the I0 monitor needs from a storage-ring current monitor."""

    def relative_current(self) -> float:
        """Current now relative to the nominal (top-up) current."""
        ...


class I0Monitor(StandardReadable):
    """Incident-flux monitor: ``flux`` is the relative flux at read time.

    The TXM detector's counts scale with the same model evaluated at exposure
    time, so ``frame / flux`` removes the drift. With a ``ring`` (e.g.
    `~ssb_beamline.sim_devices.ring.SimRingCurrent`) the flux also follows the
    ring current: it drops to ~0 during a beam dump.

    Parameters
    ----------
    model : FluxDriftModel, optional
        Drift model (default seed 0).
    clock : callable, optional
        Monotonic clock in seconds (for tests); elapsed time counts from creation.
    name : str
        Device name.
    ring : RingSource, optional
        Storage-ring current; the flux is multiplied by its ``relative_current()``.
    """

    def __init__(
        self,
        model: FluxDriftModel | None = None,
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
        ring: RingSource | None = None,
    ) -> None:
        self.model = model or FluxDriftModel()
        # a bound method, not the device: a Device attribute would become a child
        self._ring_fraction = ring.relative_current if ring is not None else None
        self._clock = clock
        self._t0 = clock()
        # Uncached: staging must not freeze the value at its first reading.
        with self.add_children_as_readables(Format.HINTED_UNCACHED_SIGNAL):
            self.flux, _ = soft_signal_r_and_setter(
                float, 1.0, units="rel", precision=5, getter=self.current_flux
            )
        super().__init__(name=name)

    def elapsed(self) -> float:
        """Seconds since the monitor was created."""
        return self._clock() - self._t0

    def current_flux(self) -> float:
        """Relative flux now (used by the ``flux`` signal and the detector)."""
        flux = float(self.model(self.elapsed()))
        if self._ring_fraction is not None:
            flux *= max(0.0, float(self._ring_fraction()))
        return flux
