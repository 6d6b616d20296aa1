"""tiled's HDF5 adapter, refusing damaged detector files with the file and the frame.

tiled 0.2.20 opens a detector file as its StreamResource says, and
bluesky-tiled-plugins' consolidator says ``swmr=True`` unless told otherwise. In
SWMR read mode HDF5 skips its end-of-file check, so a file cut short serves the
frames past the cut as zeros, and any client (``replay --fill always``, a user
reading ``run["primary"]["detector"]``) analyses them as data.

:class:`CheckedHDF5Adapter` is the stock adapter with two changes, registered for
``application/x-hdf5`` in the server configuration (``server_config``):

- a closed file is opened plainly, so HDF5 refuses a truncated one; SWMR is used
  only for a file that another process is still writing (HDF5 then says "already
  open for write"), as the live frame resolver does (``callbacks/frames.py``);
- HDF5's refusals (truncated file, a frame whose Fletcher-32 checksum does not
  match) become a 422 answer whose detail names the file and the frame, which
  tiled's client puts in its error. Without it the client sees "500: Internal
  server error" and cannot tell the user what to restore.

It also reads a block of whole frames straight from the files (one open per file,
no dask task per frame, no concatenation), which is what a replay over HTTP asks.

Hand-written because tiled has no option for either (its adapter takes ``swmr``
from the data source, and its server turns every adapter error into a bare 500).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from fastapi import HTTPException
from tiled.adapters.hdf5 import SWMR_DEFAULT, HDF5Adapter, HDF5ArrayAdapter
from tiled.structures.core import StructureFamily
from tiled.utils import path_from_uri

__all__ = ["DAMAGED_STATUS", "CheckedHDF5Adapter", "CheckedHDF5ArrayAdapter"]

logger = logging.getLogger(__name__)

#: HTTP status of a refused detector file (422 Unprocessable Content: the request is
#: fine, the stored content is not). tiled's client does not retry it.
DAMAGED_STATUS = 422
#: What HDF5 says when a file is open for writing by another process.
_BEING_WRITTEN = "already open for write"


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0]


def _damaged(path: Path | str, what: str, exc: BaseException) -> HTTPException:
    detail = (
        f"The detector file {path} cannot be read ({_first_line(exc)}), so {what} cannot "
        "be served: it is truncated or damaged (a full disk, an interrupted copy, "
        "overwritten bytes). Restore it from a backup where the server reads it."
    )
    logger.error("%s", detail)
    return HTTPException(status_code=DAMAGED_STATUS, detail=detail)


def open_mode(path: Path) -> bool:
    """Whether ``path`` must be read in SWMR mode (another process still writes it).

    Raises the 422 ``HTTPException`` when HDF5 refuses the file (truncated, not HDF5).
    """
    try:
        with h5py.File(path, "r"):
            return False
    except OSError as exc:
        if _BEING_WRITTEN in str(exc):
            return True
        raise _damaged(path, "its frames", exc) from exc


def _asset_paths(data_source) -> list[Path]:
    uris = [a.data_uri for a in data_source.assets if a.parameter == "data_uris"]
    return [path_from_uri(uri) for uri in uris or [data_source.assets[0].data_uri]]


def _leading_range(index: Any, length: int) -> range:
    """The frames (first axis) that an index tuple or slice selects."""
    first = index[0] if isinstance(index, tuple) and index else index
    if isinstance(first, slice):
        return range(length)[first]
    if isinstance(first, int):
        return range(first % length, first % length + 1)
    return range(length)


def _frame_range(index: Any, shape: tuple[int, ...]) -> range | None:
    """The frames of a request for whole frames ``start:stop`` (None for any other index)."""
    parts = tuple(index) if isinstance(index, tuple) else (index,)
    parts = tuple(p for p in parts if p is not Ellipsis)
    if not shape or not parts or not isinstance(parts[0], slice):
        return None
    if any(p != slice(None) for p in parts[1:]) or parts[0].step not in (None, 1):
        return None
    return range(shape[0])[parts[0]]


class CheckedHDF5ArrayAdapter(HDF5ArrayAdapter):
    """An HDF5 frame stack whose unreadable frames are named, with their file.

    Parameters
    ----------
    array : array_like
        The HDF5 dataset (frames on axis 0).
    structure : tiled structure, optional
        The array's structure as the catalogue records it.
    metadata : dict, optional
        Metadata of the node.
    specs : list, optional
        tiled specs of the node. A frame HDF5 cannot read is answered with an HTTP error
        naming the frame and its file, not a bare ``OSError``.
    """

    #: The detector files, the dataset path and the SWMR mode (set by the factory).
    paths: tuple[Path, ...] = ()
    dataset_path: str = ""
    swmr: bool = False

    def read(self, *args: Any, **kwargs: Any):
        index = args[0] if args else kwargs.get("slice", ...)
        try:
            frames = _frame_range(index, self.structure().shape)
            if frames is not None and self.paths:
                direct = self._read_frames(frames)
                if direct is not None:
                    return direct
            return super().read(*args, **kwargs)
        except OSError as exc:
            raise self._bad_frame(index, exc) from exc

    def _read_frames(self, frames: range):
        """Frames ``frames`` read straight from the files into one array (None: cannot).

        The stock adapter reads through dask, one task per frame, each opening the
        file, then concatenates the frames: for a block of whole frames (what a
        replay asks for) that is a file open per frame and one extra copy. Here each
        file is opened once and its frames go straight into the answer; None when
        the files do not add up to the array tiled describes (a ``slice`` or
        ``squeeze`` parameter), and the stock read is used.
        """
        shape = tuple(self.structure().shape)
        out = np.empty((len(frames), *shape[1:]), dtype=self.structure().data_type.to_numpy_dtype())
        offset, done = 0, 0
        for path in self.paths:
            with h5py.File(path, "r", swmr=self.swmr) as f:
                dataset = f[self.dataset_path]
                if tuple(dataset.shape[1:]) != shape[1:] or dataset.dtype != out.dtype:
                    return None
                count = int(dataset.shape[0])
                first, last = max(frames.start - offset, 0), min(frames.stop - offset, count)
                if first < last:
                    dest = np.s_[done : done + last - first]
                    dataset.read_direct(out, np.s_[first:last], dest)
                    done += last - first
                offset += count
        return out if offset == shape[0] and done == len(frames) else None

    def read_block(self, block, *args: Any, **kwargs: Any):
        try:
            return super().read_block(block, *args, **kwargs)
        except OSError as exc:
            index = tuple(block.slice_from_chunks(self.structure().chunks))
            raise self._bad_frame(index, exc) from exc

    def _bad_frame(self, index: Any, exc: OSError) -> HTTPException:
        """The first frame of the request that HDF5 cannot read, and its file."""
        offset = 0
        frames = _leading_range(index, self.structure().shape[0])
        for path in self.paths:
            with h5py.File(path, "r", swmr=self.swmr) as f:
                dataset = f[self.dataset_path]
                for frame in range(len(dataset)):
                    if offset + frame not in frames:
                        continue
                    try:
                        dataset[frame]
                    except OSError as frame_exc:
                        what = f"frame {offset + frame} (frame {frame} of this file)"
                        return _damaged(path, what, frame_exc)
                offset += len(dataset)
        where = ", ".join(str(p) for p in self.paths)
        return _damaged(where, f"frames {frames.start}-{frames.stop - 1}", exc)


class CheckedHDF5Adapter(HDF5Adapter):
    """tiled's ``HDF5Adapter``, opening closed files without SWMR and naming bad frames.

    Parameters
    ----------
    tree : h5py.File or h5py.Group
        The open HDF5 node (tiled's ``HDF5Adapter`` argument).
    data_uris : list of str, optional
        The ``file://`` URIs of the detector files.
    dataset : str or list of str, optional
        Path of the dataset inside the files.
    structure : tiled structure, optional
        The array's structure as the catalogue records it.
    metadata : dict, optional
        Metadata of the node.
    specs : list, optional
        tiled specs of the node.
    kwargs
        Passed to tiled's ``HDF5Adapter``. The server builds the adapter with
        ``from_catalog``, which opens a closed file without SWMR (SWMR only while the
        detector still writes it).
    """

    @classmethod
    def from_catalog(
        cls,
        data_source,
        node,
        /,
        dataset: str | list[str] = "/",
        swmr: bool = SWMR_DEFAULT,
        libver: str = "latest",
        locking: bool | str | None = None,
        **kwargs: Any,
    ):
        paths = _asset_paths(data_source)
        swmr = any([open_mode(path) for path in paths])  # SWMR only while being written
        if not isinstance(dataset, str):
            dataset = "/".join(dataset)
        if data_source.structure_family != StructureFamily.array:
            return super().from_catalog(
                data_source, node, dataset=dataset, swmr=swmr, libver=libver,
                locking=locking, **kwargs,
            )  # fmt: skip
        adapter = CheckedHDF5ArrayAdapter.from_catalog(
            data_source, node, dataset=dataset, swmr=swmr, libver=libver, locking=locking,
            **kwargs,
        )  # fmt: skip
        adapter.paths, adapter.dataset_path, adapter.swmr = tuple(paths), dataset, swmr
        return adapter
