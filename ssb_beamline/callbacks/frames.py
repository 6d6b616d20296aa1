"""Resolve detector frames referenced by StreamResource / StreamDatum documents.

A detector file is opened the plain way (HDF5 checks that it is complete: a file
cut short is refused as "truncated") unless another process still writes it, which
HDF5 reports as "already open for write": only then is it opened in SWMR mode
(single writer, multiple readers) and refreshed before each read. A closed file is
never read through SWMR, which skips the end-of-file check and returns the frames
past a cut as zeros. The simulated detectors store one Fletcher-32 checksum per
frame (``fletcher32=True``, one chunk per frame); a frame whose bytes changed fails
its checksum and is reported with its file and index.

From a closed file (a replay) the next frames, as many as the last StreamDatum
asked for, are read ahead on a thread while the caller analyses these: HDF5's
read and checksum run on one core and the analysis kernels release the GIL, so
the two overlap. A file still being written is never read ahead.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np

from ssb_beamline._memory import BlockPool
from ssb_beamline._uris import file_uri_path

__all__ = ["HDF5_MIMETYPE", "FrameResolverError", "HDF5FrameResolver", "uri_to_path"]

logger = logging.getLogger(__name__)

HDF5_MIMETYPE = "application/x-hdf5"


class FrameResolverError(RuntimeError):
    """A StreamDatum refers to frames that cannot be read."""


def uri_to_path(uri: str) -> Path:
    """The local path of a ``file://`` URI (as ophyd-async writes them).

    Parameters
    ----------
    uri : str
        A resource's URI, ``file://<host>/<path>`` as ophyd-async writes them.

    Returns
    -------
    pathlib.Path
        The local file.

    Raises
    ------
    FrameResolverError
        If the URI is not a local ``file://`` one (replay such runs from tiled).
    """
    path = file_uri_path(uri)
    if path is None:
        raise FrameResolverError(
            f"Cannot read frames from {uri!r}: only local file:// URIs are supported live. "
            "Replay the run from tiled instead."
        )
    return path


def _shape(shape: tuple[int, ...]) -> str:
    return " x ".join(str(n) for n in shape) + " px"


#: What HDF5 says when a file is open for writing by another process.
_BEING_WRITTEN = "already open for write"


def _open_hdf5(path: Path, what: str) -> h5py.File:
    """Open a detector file: plainly if closed, in SWMR mode while it is being written.

    ``what`` names the frames wanted (e.g. "frames 0-4 of 'det'"), for the messages.
    """
    if not path.exists():
        raise FrameResolverError(
            f"The detector file {path} does not exist: it was moved or deleted, or this "
            "process does not see the detector's file system. Restore the file, or replay "
            "the run from tiled with fill='always' (--fill always) if the server has it."
        )
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        if _BEING_WRITTEN not in str(exc):
            raise _damaged(path, what, exc) from exc
    try:  # a live scan: the detector (another process) still appends frames
        return h5py.File(path, "r", swmr=True)
    except OSError as exc:
        raise _damaged(path, what, exc) from exc


def _damaged(path: Path, what: str, exc: BaseException) -> FrameResolverError:
    first_line = (str(exc).splitlines() or [""])[0]
    return FrameResolverError(
        f"The detector file {path} is not a readable HDF5 file ({first_line}), so {what} "
        "cannot be read: it is truncated or damaged (a full disk, an interrupted copy). "
        "Restore it from a backup; frames cannot be read from it."
    )


class HDF5FrameResolver:
    """Read the frames of StreamDatum documents from the detector's HDF5 files.

    A file still being written by another process is opened in SWMR mode and
    refreshed before each read, so frames are read while the detector writes;
    a closed file is opened plainly (see the module docstring).

    Parameters
    ----------
    defer_read_ahead : bool
        Hold each read of the next frames back until :meth:`start_read_ahead` is
        called (h5py keeps the GIL for a whole read, so a caller starts it just
        before GIL-free work, which the read then overlaps). False: the read ahead
        starts as soon as a frame is resolved.
    """

    def __init__(self, *, defer_read_ahead: bool = False) -> None:
        #: Hold each read ahead back until :meth:`start_read_ahead`: h5py keeps the GIL
        #: for a whole read, so a read that starts while the caller runs Python stalls
        #: the caller; started just before GIL-free work, it overlaps that work.
        self.defer_read_ahead = defer_read_ahead
        self._deferred: tuple | None = None  # the read ahead held back
        self._resources: dict[str, dict] = {}
        self._files: dict[str, h5py.File] = {}
        # One Dataset object per resource: h5py rebuilds its fast reader for each new
        # object, which costs about 10 ms per read of a 2048 x 2048 frame.
        self._datasets: dict[str, h5py.Dataset] = {}
        self._shapes: dict[str, tuple[tuple[int, ...], str]] = {}  # data key -> first shape
        self._pool: ThreadPoolExecutor | None = None  # reads ahead (closed files only)
        self._ahead: dict[str, tuple[int, int, Future]] = {}  # resource -> start, stop
        # Blocks are read into buffers reused once no frame of theirs is referenced:
        # a fresh ~32 MiB block would cost a page fault per page (see ssb_beamline._memory).
        self._blocks = BlockPool(keep=4)

    def stream_resource(self, doc: dict) -> None:
        """Remember a StreamResource (its file is opened on first use)."""
        self._resources[doc["uid"]] = doc

    def data_key(self, resource_uid: str) -> str:
        """The data key of the frames a StreamResource describes."""
        return self._resources[resource_uid]["data_key"]

    def frames(self, datum: dict) -> np.ndarray:
        """The frames ``datum`` refers to, shape ``(n, H, W)``."""
        resource = self._resources.get(datum["stream_resource"])
        if resource is None:
            raise FrameResolverError(
                f"StreamDatum {datum.get('uid')} refers to an unknown StreamResource "
                f"{datum['stream_resource']}; the document stream is incomplete."
            )
        if resource.get("mimetype") != HDF5_MIMETYPE:
            raise FrameResolverError(
                f"Frames of mimetype {resource.get('mimetype')!r} cannot be read live; "
                f"only {HDF5_MIMETYPE} is supported."
            )
        uid = resource["uid"]
        self._deferred = None  # a read ahead never started: read here instead
        start, stop = datum["indices"]["start"], datum["indices"]["stop"]
        what = f"frames {start}-{stop - 1} of {resource['data_key']!r}"
        dataset = self._datasets.get(uid)
        if dataset is None:
            dataset = self._datasets[uid] = self._open_dataset(resource, what)
        if dataset.file.swmr_mode:
            dataset.refresh()
        self._check_frame_shape(resource, dataset.shape[1:])
        if stop > dataset.shape[0]:
            raise FrameResolverError(
                f"{resource['uri']} holds {dataset.shape[0]} frames; StreamDatum asks for "
                f"frames {start}-{stop - 1}. The file is truncated or still being written."
            )
        frames = self._read_before(uid, start, stop)
        if frames is None:
            frames = self._blocks.take((stop - start, *dataset.shape[1:]), dataset.dtype)
            try:
                dataset.read_direct(frames, np.s_[start:stop])  # no intermediate copy
            except OSError as exc:
                raise self._bad_frame(resource, dataset, start, stop, exc) from exc
        if not dataset.file.swmr_mode and stop < dataset.shape[0]:
            ahead = (uid, dataset, stop, min(2 * stop - start, dataset.shape[0]))
            if self.defer_read_ahead:
                self._deferred = ahead
            else:
                self._read_ahead(*ahead)
        return frames

    def start_read_ahead(self) -> None:
        """Start the read ahead held back by ``defer_read_ahead`` (if any), now."""
        if self._deferred is not None:
            ahead, self._deferred = self._deferred, None
            self._read_ahead(*ahead)

    def _read_before(self, uid: str, start: int, stop: int) -> np.ndarray | None:
        """The frames read ahead if they are ``start:stop`` of ``uid`` (else None)."""
        ahead = self._ahead.pop(uid, None)
        if ahead is None:
            return None
        future = ahead[2]
        if ahead[:2] != (start, stop):
            future.cancel()
            return None
        try:
            return future.result()
        except OSError:  # read again here, where the error names the frame
            return None

    def _read_ahead(self, uid: str, dataset: h5py.Dataset, start: int, stop: int) -> None:
        def read() -> np.ndarray:
            frames = self._blocks.take((stop - start, *dataset.shape[1:]), dataset.dtype)
            dataset.read_direct(frames, np.s_[start:stop])
            return frames

        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="frames-ahead")
        self._ahead[uid] = (start, stop, self._pool.submit(read))

    @staticmethod
    def _bad_frame(
        resource: dict, dataset: h5py.Dataset, start: int, stop: int, exc: OSError
    ) -> FrameResolverError:
        """The error for a read that failed: it names the first frame that cannot be read."""
        bad = start
        for index in range(start, stop):  # find the frame (one chunk each)
            try:
                dataset[index]
            except OSError:
                bad = index
                break
        checksummed = dataset.fletcher32
        why = (
            "its Fletcher-32 checksum does not match: bytes of the file were overwritten "
            "or lost (a damaged disk or copy)"
            if checksummed
            else f"HDF5 cannot read it ({(str(exc).splitlines() or [''])[0]})"
        )
        path = uri_to_path(resource["uri"])
        return FrameResolverError(
            f"Frame {bad} of {resource['data_key']!r} in the detector file {path} "
            f"(dataset {dataset.name}) is damaged: {why}. Restore the file from a backup; "
            "the run is not analysed from damaged frames."
        )

    def _open_dataset(self, resource: dict, what: str) -> h5py.Dataset:
        uid = resource["uid"]
        if uid not in self._files:
            self._files[uid] = _open_hdf5(uri_to_path(resource["uri"]), what)
        name = resource["parameters"]["dataset"]
        try:
            return self._files[uid][name]
        except KeyError:
            raise FrameResolverError(
                f"{resource['uri']} has no dataset {name!r}: the file is not the one the "
                "detector wrote for this run (or was overwritten)."
            ) from None

    def _check_frame_shape(self, resource: dict, shape: tuple[int, ...]) -> None:
        """Every file of one data key (darks, flats, images) must hold frames of one shape."""
        key = resource["data_key"]
        first = self._shapes.setdefault(key, (tuple(shape), resource["uri"]))
        if first[0] != tuple(shape):
            raise FrameResolverError(
                f"The frames of {key!r} in {resource['uri']} are {_shape(shape)} but those "
                f"in {first[1]} are {_shape(first[0])}: the detector's region of interest "
                "or binning changed during the run. Darks, flats and images must have the "
                "same shape; retake the run with one detector setting."
            )

    def close(self) -> None:
        """Close every open file (after the read ahead, if any, has ended)."""
        self._deferred = None
        if self._pool is not None:
            self._ahead.clear()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        for f in self._files.values():
            try:
                f.close()
            except Exception:  # closing must not mask the run's own outcome
                logger.debug("could not close %s", f, exc_info=True)
        self._files.clear()
        self._datasets.clear()
        self._blocks.clear()
