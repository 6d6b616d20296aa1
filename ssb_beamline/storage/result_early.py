"""Final arrays sent into a prepared results version while the rest is still computed.

At the end of a XANES run the maps and the normalised stack are ready a fraction
of a second after the last frame; the post-processors (particle statistics) take
longer. Sending the maps' data only once everything is computed put the largest
request (the 43 MB normalised stack of a 41-energy 512^2 scan) behind the
post-processors. :class:`EarlyWrites` sends the data of arrays that are final
into their prepared nodes (see :mod:`.result_skeleton`) on a background thread as
soon as they exist; :meth:`~.results.TiledResultSink.publish` sends the rest and
waits for these before it marks the version complete. The version stays marked as
being written (:data:`~.result_layout.IN_PROGRESS`) until then, so a reader never
sees a difference; an early write that fails makes publish fail, and the results
are journaled as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .result_skeleton import Skeleton, matching_items
from .result_upload import write_version_items

__all__ = ["EarlyWrites", "Sent"]

logger = logging.getLogger(__name__)


@dataclass
class Sent:
    """What was sent early for one run.

    Attributes
    ----------
    arrays : dict of str to ndarray
        The arrays whose data are being sent, by key.
    future : concurrent.futures.Future or None
        The writes (None: nothing sent).
    """

    arrays: dict[str, Any] = field(default_factory=dict)
    future: Future | None = None

    def wait(self) -> None:
        """Block until the early writes ended; raise the first failure."""
        if self.future is not None:
            self.future.result()

    def settle(self) -> None:
        """Block until the early writes ended, whatever their outcome (logged)."""
        try:
            self.wait()
        except Exception:  # the caller is failing or discarding the version anyway
            logger.info("an early results write failed", exc_info=True)


class EarlyWrites:
    """Early data writes into prepared versions, by run uid (see module docstring)."""

    def __init__(self) -> None:
        self._sent: dict[str, Sent] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="results-early")

    def start(
        self, run_uid: str, skeleton: Skeleton, arrays: Mapping[str, Any], units: Mapping[str, str]
    ) -> list[str]:
        """Send the data of ``arrays`` that fit their prepared node; return their keys.

        Parameters
        ----------
        run_uid : str
            The run.
        skeleton : Skeleton
            Its prepared version.
        arrays : mapping of str to ndarray
            Final arrays (not modified afterwards: they are sent from another thread).
        units : mapping of str to str
            Their units.
        """
        clients = matching_items(skeleton, arrays, units)
        with self._lock:
            if run_uid in self._sent or not clients:  # once per run
                return []
            sent = Sent({key: arrays[key] for key in clients})
            sent.future = self._pool.submit(
                write_version_items, skeleton.node, sent.arrays, units=units, dims={},
                coords={}, prepared=clients,
            )  # fmt: skip
            self._sent[run_uid] = sent
        return sorted(clients)

    def take(self, run_uid: str) -> Sent:
        """What was sent for ``run_uid`` (nothing: an empty :class:`Sent`), forgotten here."""
        with self._lock:
            return self._sent.pop(run_uid, None) or Sent()
