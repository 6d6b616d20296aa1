"""The ETag of a frame block comes from where its frames are, not from hashing them.

tiled hashes every array it answers with (SHA-1 on the event loop) to make its
ETag; a replay over HTTP spent about a third of the server's time there. Blocks
the checked HDF5 adapter reads carry their source (files with size, mtime and
inode, dataset, frames), and the ETag is made from that.
"""

from __future__ import annotations

import numpy as np
from tiled.server import core

from ssb_beamline.storage.checked_hdf5 import FrameBlock, block_source, install_frame_etags


def block(source: tuple, value: int) -> FrameBlock:
    frames = FrameBlock((2, 4, 4), np.uint16)
    frames[:] = value
    frames.source = source
    return frames


def etag(payload: np.ndarray) -> str:
    """The ETag tiled's data answer computes (its array route first takes ``asarray``)."""
    assert install_frame_etags()
    return core.tokenize((np.asarray(payload, dtype=payload.dtype), "application/octet-stream"))


def test_a_block_is_tagged_by_its_source_not_its_bytes():
    source = ((("/data/det.h5", 100, 5, 7),), "/entry/data/data", 0, 2, "uint16")
    moved = ((("/data/det.h5", 100, 6, 7),), "/entry/data/data", 0, 2, "uint16")
    assert etag(block(source, 1)) == etag(block(source, 2))  # bytes never read
    assert etag(block(source, 1)) != etag(block(moved, 1))  # the file changed


def test_anything_else_keeps_tiled_s_content_tag():
    source = ((("/data/det.h5", 100, 5, 7),), "/entry/data/data", 0, 2, "uint16")
    frames = block(source, 1)
    assert block_source(frames[:1]) is None  # part of a block: its own bytes
    plain = np.ones((2, 4, 4), np.uint16)
    assert etag(plain) != etag(plain + 1)
    assert etag(plain) == etag(plain.copy())
    assert block_source(block((), 1)) is None  # no source: hashed as before
