"""The below-edge image of a XANES run, made on a helper thread once its frames are in.

The phase map of the particle statistics needs the mean of the frames more than
10 eV below the Ni K-edge, median-filtered 3 x 3
(:func:`~ssb_beamline.analysis.phase_map.below_edge_image`, ~50 ms of CPU at
512 x 512). Those frames usually come first, so :class:`BelowEdgeAhead` makes it
while the rest of the scan runs, instead of after the last frame when the machine
is busiest. The image is used only if it was made from exactly the frames the
run ends with: a frame below the edge that arrives (again) later makes it anew,
and a run that stops before all of them arrived (aborted) gets None, so the
post-processor makes it from the final stack as before. The standard library's
``ThreadPoolExecutor`` runs it; this module only decides when.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from ssb_beamline.analysis.phase_map import BelowEdgeImage, below_edge_frames, below_edge_image

__all__ = ["BelowEdgeAhead"]

logger = logging.getLogger(__name__)


class BelowEdgeAhead:
    """Makes a run's below-edge image once every frame below the edge is in the stack.

    Parameters
    ----------
    energies : (N,) array
        The run's planned energies (the rows of the stack), eV, in any order.

    Examples
    --------
    >>> stack = np.ones((3, 4, 4), np.float32)
    >>> ahead = BelowEdgeAhead(np.array([8350.0, 8300.0, 8310.0]))
    >>> ahead.add(1, stack); ahead.add(0, stack); ahead.result() is None  # 8310 eV missing
    True
    >>> ahead.add(2, stack); ahead.result().energies_ev.tolist()
    [8300.0, 8310.0]
    """

    def __init__(self, energies: np.ndarray) -> None:
        self._rows = np.flatnonzero(below_edge_frames(energies))
        self._energies = np.asarray(energies, float)[self._rows]
        self._below = frozenset(int(i) for i in self._rows)
        self._missing = set(self._below)
        self._future: Future | None = None

    def add(self, index: int, stack: np.ndarray) -> None:
        """Row ``index`` of ``stack`` is written; start the image once all are in.

        A row below the edge written again after that starts it anew (the latest
        is used).
        """
        if index not in self._below:
            return
        self._missing.discard(index)
        if self._missing:
            return
        pool = ThreadPoolExecutor(1, thread_name_prefix="below-edge")
        self._future = pool.submit(self._make, stack)
        pool.shutdown(wait=False)  # the thread ends with the image

    def _make(self, stack: np.ndarray) -> BelowEdgeImage | None:
        return below_edge_image(stack[self._rows], self._energies)  # copies the rows here

    def result(self) -> BelowEdgeImage | None:
        """The image of every frame below the edge (waits for it); None if not made.

        None when a frame below the edge never arrived, the run has none, or
        making it failed (logged; the caller makes it from the stack).
        """
        if self._future is None or self._missing:
            return None
        try:
            return self._future.result()
        except Exception:
            logger.warning("below-edge image not made ahead", exc_info=True)
            return None
