"""Frames fetched from tiled into a replayed run's events, in large parallel blocks.

When the detector files cannot be read here, a replay asks tiled for the frames
(``run[stream][key]``, sliced along the frame axis). One request per frame would
spend the time on request overhead, and one request at a time would leave the
server idle while the analysis ingests the last block: frames are fetched in
blocks of about :data:`FILL_BLOCK_BYTES`, :data:`FILL_AHEAD` blocks ahead, on
threads (the server is another process, so its file reads and encoding overlap
with the analysis here). tiled's client does the requests; it cannot prefetch,
which is the part written here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from .run_checks import ReplayError, frame_shape

__all__ = [
    "FILL_AHEAD",
    "FILL_BLOCK_BYTES",
    "FrameFetcher",
    "filled_documents",
    "uncompressed_frames",
]

logger = logging.getLogger(__name__)

#: Bytes of frames asked for per request (rounded to whole frames, at least one).
#: Under 32 MiB, glibc's largest heap block: the server's and this process's
#: buffers for a block then reuse freed heap memory (``keep_freed_memory``) instead
#: of fresh pages for every request (2048^2 frames: 3 per request).
FILL_BLOCK_BYTES = 24 * 2**20
#: Blocks requested ahead of the one being used (the requests run in parallel).
FILL_AHEAD = 2


class FrameFetcher:
    """Frames of one stream's external data key, fetched from tiled in blocks ahead.

    Parameters
    ----------
    node : tiled array client
        The frames, shape ``(N, H, W)``.
    where : str
        Names the frames in messages (``"run <uid>, stream 'primary', 'det'"``).
    shape : tuple of int
        ``(H, W)`` the run's descriptor gives (checked against the frames).
    pool : concurrent.futures.ThreadPoolExecutor
        Threads that run the requests.
    fetch : callable, optional
        ``fetch(node, start, stop)`` -> frames ``start:stop`` (default
        :func:`uncompressed_frames`).
    """

    def __init__(
        self,
        node,
        where: str,
        shape: tuple[int, ...],
        pool: ThreadPoolExecutor,
        fetch: Callable[[Any, int, int], np.ndarray] | None = None,
    ) -> None:
        self.node = node
        self._fetch = fetch or uncompressed_frames
        self.where = where
        self.shape = shape
        self._pool = pool
        self._count = int(node.shape[0])
        frame_bytes = max(1, int(np.prod(node.shape[1:])) * np.dtype(node.dtype).itemsize)
        self.block = max(1, FILL_BLOCK_BYTES // frame_bytes)
        self._blocks: dict[int, Future] = {}  # block number -> its frames

    def _request(self, number: int) -> np.ndarray:
        start = number * self.block
        return self._fetch(self.node, start, min(start + self.block, self._count))

    def _first_unreadable(self, start: int, stop: int) -> int:
        """The first frame of ``start:stop`` that tiled cannot serve (``start`` if none).

        Each frame is asked for twice: the connection that carried a server error
        can fail the next request once, which says nothing about that frame.
        """
        for index in range(start, min(stop, self._count)):
            for _ in range(2):
                try:
                    self.node[index]
                    break
                except Exception:
                    continue
            else:
                return index
        return start

    def _block_of(self, number: int) -> np.ndarray:
        last = (self._count - 1) // self.block
        for ahead in range(number, min(number + FILL_AHEAD, last) + 1):
            if ahead not in self._blocks:
                self._blocks[ahead] = self._pool.submit(self._request, ahead)
        for old in [n for n in self._blocks if n < number]:  # frames come in order
            self._blocks.pop(old).cancel()
        try:
            return self._blocks[number].result()
        except Exception as exc:  # tiled answers 500 when it cannot read the file
            self.cancel()
            start = number * self.block
            bad = self._first_unreadable(start, start + self.block)
            first_line = (str(exc).splitlines() or [""])[0]
            raise ReplayError(
                f"tiled could not serve frame {bad} of {self.where} "
                f"({type(exc).__name__}: {first_line}). The server cannot read the detector "
                "file (moved, deleted, truncated, or the frame's checksum does not match): "
                "restore it where the server reads it, then replay again."
            ) from exc

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (the blocks after it are requested meanwhile)."""
        if index >= self._count:
            raise ReplayError(
                f"{self.where} has {self._count} frames in tiled; its events ask for "
                f"frame {index}. The run's detector file is truncated."
            )
        block = self._block_of(index // self.block)
        frame = block[index % self.block]
        if self.shape and tuple(frame.shape[-2:]) != self.shape:
            raise ReplayError(
                f"Frame {index} of {self.where} is {frame.shape}, but the run's descriptor "
                f"says {self.shape}: the stored frames do not match the run's description."
            )
        return frame

    def cancel(self) -> None:
        """Drop the blocks not yet fetched."""
        for future in self._blocks.values():
            future.cancel()
        self._blocks.clear()


def filled_documents(run, uid: str, docs: list[tuple[str, dict]]) -> Iterator[tuple[str, dict]]:
    """``docs`` with every external frame fetched from tiled into its event.

    StreamResource and StreamDatum documents are left out (the events carry the
    frames, ``filled`` says so).

    Parameters
    ----------
    run : tiled run client
        The stored run (``raw[uid]``) whose arrays hold the frames.
    uid : str
        The run's uid, for messages.
    docs : list of (str, dict)
        The run's documents in order, as stored.

    Yields
    ------
    (str, dict)
        ``(name, document)``; events carry their frames (``filled`` True) and the
        StreamResource / StreamDatum documents are dropped.

    Raises
    ------
    ReplayError
        If tiled has no array for a data key, or cannot serve one of its frames.
    """
    external: dict[str, tuple[str, dict[str, tuple[int, ...]]]] = {}  # descriptor -> keys
    fetchers: dict[tuple[str, str], FrameFetcher] = {}
    pool = ThreadPoolExecutor(max_workers=FILL_AHEAD, thread_name_prefix="replay-fill")
    try:
        for name, doc in docs:
            if name == "descriptor":
                keys = {k: frame_shape(v) for k, v in doc["data_keys"].items() if v.get("external")}
                external[doc["uid"]] = (doc["name"], keys)
                yield name, doc
            elif name in ("stream_resource", "stream_datum"):
                continue
            elif name == "event" and external.get(doc["descriptor"], ("", {}))[1]:
                stream, keys = external[doc["descriptor"]]
                data, filled = dict(doc["data"]), dict(doc.get("filled", {}))
                for key, shape in keys.items():
                    fetcher = fetchers.get((stream, key))
                    if fetcher is None:
                        fetcher = fetchers[(stream, key)] = _fetcher(
                            run, uid, stream, key, shape, pool
                        )
                    data[key] = fetcher.frame(doc["seq_num"] - 1)
                    filled[key] = True
                yield name, {**doc, "data": data, "filled": filled}
            else:
                yield name, doc
    finally:
        for fetcher in fetchers.values():
            fetcher.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


def uncompressed_frames(node, start: int, stop: int) -> np.ndarray:
    """``node[start:stop]`` of a tiled array, asked for without on-the-fly compression.

    tiled's client offers the server every encoding it can decode, and the server
    then compresses each response (zstd): detector frames, noise in their low bits,
    shrink little, and the encoding costs the server and this process more CPU than
    the bytes it saves on a local network (measured: half the rate on loopback).
    The request is the one ``node[start:stop]`` makes, with ``Accept-Encoding:
    identity``; tiled's client has no option for it on arrays.

    Parameters
    ----------
    node : tiled array client
        A frame stack (frames on axis 0).
    start, stop : int
        First frame and one past the last, as in ``node[start:stop]``.

    Returns
    -------
    numpy.ndarray, shape (stop - start, H, W)
        The frames, in the array's dtype.
    """
    from tiled.client.utils import handle_error, retry_context

    url = node.item["links"]["full"]
    shape = (stop - start, *node.shape[1:])
    params = {
        **parse_qs(urlsplit(url).query),
        "slice": f"{start}:{stop}",
        "expected_shape": ",".join(str(n) for n in shape),
    }
    headers = {"Accept": "application/octet-stream", "Accept-Encoding": "identity"}
    for attempt in retry_context(node.context):
        with attempt:
            response = node.context.http_client.get(url, headers=headers, params=params)
            content = handle_error(response).read()
    return np.frombuffer(content, dtype=node.dtype).reshape(shape)


def _fetcher(run, uid: str, stream: str, key: str, shape, pool) -> FrameFetcher:
    try:
        node = run[stream][key]
    except KeyError:
        raise ReplayError(
            f"Run {uid} lists {key!r} in stream {stream!r} but tiled has no such array: "
            "the run was stored without its frames."
        ) from None
    return FrameFetcher(node, f"run {uid}, stream {stream!r}, {key!r}", shape, pool)
