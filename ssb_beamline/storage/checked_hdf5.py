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
Such a block's ETag is made from where its frames come from (each file's path,
size and modification time, the dataset, the frames), as tiled does for an HDF5
dataset, instead of hashing its bytes: tiled hashes every array it answers with
(dask's ``tokenize``, SHA-1 without optional hash libraries) on the server's event
loop, which took about a third of the server's time serving a replay (~1.7 GB).
:func:`install_frame_etags` puts that in place (at the first frame request).

Hand-written because tiled has no option for either (its adapter takes ``swmr``
from the data source, and its server turns every adapter error into a bare 500,
and it computes ETags with no way to supply one).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from fastapi import HTTPException
from tiled.adapters.hdf5 import SWMR_DEFAULT, HDF5Adapter, HDF5ArrayAdapter
from tiled.structures.core import StructureFamily
from tiled.utils import path_from_uri

from ssb_beamline._memory import no_huge_page_requests

from .function_patch import patch_function

__all__ = [
    "DAMAGED_STATUS",
    "CheckedHDF5Adapter",
    "CheckedHDF5ArrayAdapter",
    "FrameBlock",
    "block_source",
    "install_frame_etags",
]

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


class FrameBlock(np.ndarray):
    """Frames read straight from detector files, with where they come from.

    ``source`` names the files (path, size, modification time in ns, inode), the
    dataset and the frames; the ETag of an answer made of the whole block is made
    from it (see :func:`install_frame_etags`). Made empty, like ``numpy.empty``, the
    frames are read into it, then it is given its ``source``.

    Parameters
    ----------
    shape, dtype, buffer, offset, strides, order
        As for :class:`numpy.ndarray`.
    """

    source: tuple = ()


def _file_state(path: Path) -> tuple:
    st = os.stat(path)
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ino)


def block_source(array: np.ndarray) -> tuple | None:
    """The ``source`` of the whole :class:`FrameBlock` ``array`` is (or views), else None.

    tiled's array route turns the adapter's answer into a plain ndarray view
    (``numpy.asarray``), so a view of all of a block counts as the block.

    Parameters
    ----------
    array : ndarray
        An array about to be answered (a :class:`FrameBlock`, a view of one, or
        any other array).

    Returns
    -------
    tuple or None
        The block's ``source``, or None if ``array`` is not all of a frame block.
    """
    block = array if isinstance(array, FrameBlock) else getattr(array, "base", None)
    if not isinstance(block, FrameBlock) or not block.source:
        return None
    whole = (
        array.shape == block.shape
        and array.dtype == block.dtype
        and array.__array_interface__["data"][0] == block.__array_interface__["data"][0]
    )
    return block.source if whole else None


def _frame_etag(original: Callable) -> Callable:
    """tiled's ``tokenize`` made from a frame block's source instead of its bytes."""

    def tokenize(obj, *args, **kwargs):
        if isinstance(obj, tuple) and obj and isinstance(obj[0], np.ndarray):
            source = block_source(obj[0])
            if source is not None:  # (payload, media type) of an array answer
                obj = ("ssb_beamline frame block", source, *obj[1:])
        return original(obj, *args, **kwargs)

    return tokenize


@functools.cache  # once per process
def install_frame_etags() -> bool:
    """Make the ETag of a frame block answer from its source, not a hash of its bytes.

    Replaces ``tiled.server.core.tokenize`` (which tiled's data answers call) by a
    wrapper that gives a :class:`FrameBlock` the token of its ``source`` and
    leaves every other payload to tiled; idempotent. The process serving frame
    blocks also stops numpy asking for huge pages (``no_huge_page_requests``):
    each block is a fresh array.

    Returns
    -------
    bool
        True when the wrapper is in place (False: this tiled has no such function).
    """
    from tiled.server import core

    no_huge_page_requests()
    return patch_function(core, "tokenize", _frame_etag)


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
        dtype = self.structure().data_type.to_numpy_dtype()
        out = FrameBlock((len(frames), *shape[1:]), dtype)  # owns its memory: views name it
        states = tuple(_file_state(path) for path in self.paths)  # before the read
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
        if offset != shape[0] or done != len(frames):
            return None
        out.source = (states, self.dataset_path, frames.start, frames.stop, str(dtype))
        return out

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
        install_frame_etags()  # the server answers frame blocks from now on
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
