"""What the live analysis of one tomography run produced (:class:`TomoOutcome`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["TomoOutcome"]


@dataclass
class TomoOutcome:
    """What the live analysis of one tomography run produced.

    Attributes
    ----------
    run_uid : str
        Start uid of the run ("" until the start document arrives).
    plan_name : str or None
        The run's plan (``tomo_scan``, ``xanes_tomo_scan``, ``holotomo_scan``).
    volumes : dict of str to numpy.ndarray
        Reconstructed volumes by key, as published.
    tables : dict
        Tables published with them (e.g. ``particles``).
    metadata : dict
        Rotation centre (px), angles (deg), pixel size (um), method and timings.
    stored_at : str or None
        ``results/<uid>/<version>`` once stored; None without a sink or on failure.
    errors : list of str
        What went wrong (empty when ``ok``); a failed tomogram or statistics step is
        listed here while the rest is still published.
    segment_seconds : dict of int to float
        Reconstruction time per tomogram (energy or distance index), s.
    final_seconds : float or None
        Time of the end-of-run work (publishing included), s.
    """

    run_uid: str
    plan_name: str | None = None
    volumes: dict[str, np.ndarray] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    stored_at: str | None = None
    errors: list[str] = field(default_factory=list)
    segment_seconds: dict[int, float] = field(default_factory=dict)
    final_seconds: float | None = None

    @property
    def ok(self) -> bool:
        """Whether the analysis ended without error."""
        return not self.errors and bool(self.volumes)
