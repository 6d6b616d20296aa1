"""Pair each event with its detector frame, whichever document arrives first.

With ophyd-async area detectors a frame arrives as a ``StreamDatum`` that points
into an HDF5 file, while its event carries the other readings (energy, I0,
angle).  Live, the ``StreamDatum`` comes first; a run exported from tiled may
send the events first; a filled run carries the frame inside the event.  The
live callbacks (:mod:`.xanes_live`, :mod:`.tomo_live`) share this one pairing.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["FramePairing"]


class FramePairing:
    """Frames and events waiting for each other, by ``(descriptor uid, seq_num)``.

    Parameters
    ----------
    detector_key : str
        The data key of the detector's frames (may be set later, at the start
        document).

    Examples
    --------
    >>> pairs = FramePairing("det")
    >>> pairs.mark_external("d1")
    >>> pairs.add_event({"descriptor": "d1", "seq_num": 1, "data": {}}) is None  # waits
    True
    >>> [(ev["seq_num"], f.shape) for ev, f in pairs.add_frames("d1", 1, np.zeros((2, 3, 3)))]
    [(1, (3, 3))]
    >>> pairs.add_event({"descriptor": "d1", "seq_num": 2, "data": {}}).shape  # came before
    (3, 3)
    """

    def __init__(self, detector_key: str) -> None:
        self.detector_key = detector_key
        self._frames: dict[tuple[str, int], np.ndarray] = {}
        self._events: dict[tuple[str, int], dict] = {}
        self._external: set[str] = set()

    def mark_external(self, descriptor_uid: str) -> None:
        """The frames of this descriptor's events come as ``StreamDatum`` documents."""
        self._external.add(descriptor_uid)

    def add_frames(
        self, descriptor_uid: str, first_seq_num: int, frames: np.ndarray
    ) -> Iterator[tuple[dict, np.ndarray]]:
        """Keep frames ``first_seq_num, ...``; yield ``(event, frame)`` for events waiting."""
        for offset, frame in enumerate(frames):
            key = (descriptor_uid, first_seq_num + offset)
            event = self._events.pop(key, None)
            if event is None:
                self._frames[key] = frame
            else:  # the event came first (e.g. a run exported from tiled)
                yield event, frame

    def add_event(self, doc: dict) -> np.ndarray | None:
        """The frame of this event (kept, or filled into it); None if it must wait."""
        key = (doc["descriptor"], doc["seq_num"])
        frame = self._frames.pop(key, None)
        filled = doc["data"].get(self.detector_key)
        if frame is None and isinstance(filled, np.ndarray | list):
            frame = np.asarray(filled)  # frames filled into the event
        if frame is None and doc["descriptor"] in self._external:
            self._events[key] = doc  # its frame arrives with a StreamDatum
        return frame
