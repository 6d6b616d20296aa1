"""The live raw-data writer: bluesky's ``TiledWriter``, with less left for the stop.

bluesky's ``TiledWriter`` gathers a stream's event rows and detector frames
(StreamDatums) in batches and writes what is left of every batch at the stop
document. For a XANES scan that is about a dozen requests after the stop (the
baseline's and the darks' tables created and filled, the darks' detector
registered, the flats' and images' last rows and frames), on the one tiled server
that then stores the scan's results. Most of it was known long before: the darks
are done once the flats begin, the flats once the images begin.

:class:`LiveTiledWriter` writes that part during the scan, by two rules, and
otherwise is bluesky's writer (same nodes, tables, rows, data sources and
metadata; only when the requests are sent changes):

- a stream's pending rows and frames are written once ``batch_size`` events of
  other streams went by without one of its own (the stream is idle, likely done);
- a stream's pending frames of one detector file are written when the frames of
  its next file (a new StreamResource of the same stream and data key) arrive
  (the detector was restaged: interleaved flats give one file per frame, which
  bluesky would otherwise keep for the stop, one request per file); the stream's
  rows go first if its table is not made yet, so that a stream's nodes are made in
  the order bluesky's writer makes them (table, then detector).

It subclasses bluesky's private ``_RunWriter`` (hence this module rather than a
keyword): bluesky has no hook for when a batch is written.
``tests/storage/test_live_writer.py`` checks that a run written this way reads
exactly as one written by bluesky's writer.
"""

from __future__ import annotations

from bluesky.callbacks.tiled_writer import TiledWriter, _RunWriter

__all__ = ["LiveTiledWriter"]


class _EagerRunWriter(_RunWriter):
    """bluesky's writer of one run, writing an idle stream's pending data early."""

    def __init__(self, client, batch_size: int) -> None:
        super().__init__(client, batch_size=batch_size)
        self._idle: dict[str, int] = {}  # stream -> events of other streams since its last

    def _stream_of(self, descriptor_uid: str) -> str:
        return self._desc_nodes[descriptor_uid].item["id"]

    def event(self, doc) -> None:
        super().event(doc)
        stream = self._stream_of(doc["descriptor"])
        for other in [s for s in self._idle if s != stream]:
            self._idle[other] += 1
            if self._idle[other] >= self._batch_size:
                del self._idle[other]
                self._write_pending(other)
        self._idle[stream] = 0

    def stream_datum(self, doc) -> None:
        sres = doc["stream_resource"]
        if sres not in self._external_data_cache:  # the first frame of this file
            key = self._stream_resource_cache.get(sres, {}).get("data_key")
            for uid, cached in list(self._external_data_cache.items()):
                same_key = self._stream_resource_cache.get(uid, {}).get("data_key") == key
                if cached["descriptor"] == doc["descriptor"] and same_key:
                    self._create_table_first(self._stream_of(cached["descriptor"]))
                    del self._external_data_cache[uid]
                    self._write_external_data(cached)
        super().stream_datum(doc)

    def _create_table_first(self, stream: str) -> None:
        """Write ``stream``'s rows if its table is not made yet (bluesky makes it first)."""
        rows = self._internal_data_cache.get(stream)
        if rows and stream not in self._internal_tables:
            self._write_internal_data(rows, desc_node=self._desc_nodes[stream])
            rows.clear()

    def _write_pending(self, stream: str) -> None:
        """Write ``stream``'s pending event rows and detector frames now."""
        rows = self._internal_data_cache.get(stream)
        if rows:
            self._write_internal_data(rows, desc_node=self._desc_nodes[stream])
            rows.clear()
        for uid, cached in list(self._external_data_cache.items()):
            if self._stream_of(cached["descriptor"]) == stream:
                del self._external_data_cache[uid]
                self._write_external_data(cached)


class LiveTiledWriter(TiledWriter):
    """bluesky's ``TiledWriter`` that writes a finished stream's data before the stop.

    Parameters
    ----------
    client : tiled container client
        The container of raw runs, with write access.
    batch_size : int
        Events (and frames) of a stream gathered per write, and how many events of
        other streams make a stream idle (its pending data is then written).
    """

    def __init__(self, client, *, batch_size: int) -> None:
        super().__init__(client, batch_size=batch_size)

    def _factory(self, name, doc):
        """bluesky's run callbacks, with :class:`_EagerRunWriter` writing the run."""
        writer = _EagerRunWriter(self.client, batch_size=self._batch_size)
        callback = writer
        if self._normalizer:
            callback = self._normalizer(
                patches=self.patches, spec_to_mimetype=self.spec_to_mimetype
            )
            callback.subscribe(writer)
        return [callback], []
