"""One HDF5 file of the simulated HDF5 plugin, in the layout ophyd-async's writer describes.

Frames go to ``/entry/data/data`` (``(N, H, W)`` uint16, chunks of
``NumFramesChunks`` frames, fletcher32 checksums), per-frame NDAttributes to
``/entry/instrument/NDAttributes/<name>`` (1-D, chunks of 16384 as areaDetector
makes them). Every dataset is created before SWMR mode starts, each frame is
flushed, so a reader (the client's tiled server) sees complete frames while the
file grows, and a killed IOC leaves a readable file of the frames written.
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np

from ssb_beamline.private_files import create_private_file

from .ndattributes import AttributeSpec

__all__ = ["ATTRIBUTES_GROUP", "DATA_PATH", "FrameFile"]

logger = logging.getLogger(__name__)

DATA_PATH = "/entry/data/data"
ATTRIBUTES_GROUP = "/entry/instrument/NDAttributes"
ATTRIBUTE_CHUNK = 16384


class FrameFile:
    """An open frame file (single writer, SWMR readers).

    Parameters
    ----------
    path : Path
        File to create (truncated if it exists).
    shape : tuple of int
        Frame shape ``(H, W)``.
    attributes : list of AttributeSpec
        Per-frame attribute datasets to create.
    frames_per_chunk : int
        Frames per HDF5 chunk of the data set.
    swmr : bool
        Start SWMR mode after creating the datasets.
    """

    def __init__(
        self,
        path: Path,
        shape: tuple[int, int],
        attributes: list[AttributeSpec],
        frames_per_chunk: int = 1,
        swmr: bool = True,
    ) -> None:
        h, w = shape
        self.path = path
        self.shape = (h, w)
        create_private_file(path)  # h5py keeps the mode of a file it truncates: never chmod after
        self.file = h5py.File(path, "w", libver="latest")
        chunk = (max(int(frames_per_chunk), 1), h, w)
        self.data = self.file.create_dataset(
            DATA_PATH, shape=(0, h, w), maxshape=(None, h, w), dtype=np.uint16, chunks=chunk,
            fletcher32=True,
        )  # fmt: skip
        group = self.file.require_group(ATTRIBUTES_GROUP)
        self.attributes = {
            spec.name: group.create_dataset(spec.name, shape=(0,), maxshape=(None,),
                                            dtype=np.dtype(spec.dtype), chunks=(ATTRIBUTE_CHUNK,))
            for spec in attributes
        }  # fmt: skip
        if swmr:
            self.file.swmr_mode = True
        self.frames = 0

    def append(self, frame: np.ndarray, attributes: dict[str, np.ndarray]) -> None:
        """Append one frame and its attributes (missing ones are 0), then flush."""
        if frame.shape != self.shape:
            raise ValueError(f"{self.path.name}: frame shape {frame.shape} != file {self.shape}")
        n = self.frames + 1
        for name, dataset in self.attributes.items():
            dataset.resize((n,))
            dataset[n - 1] = attributes.get(name, np.zeros((), dataset.dtype))
            dataset.flush()
        self.data.resize(n, axis=0)
        self.data[n - 1] = frame
        self.data.flush()
        self.frames = n

    @property
    def closed(self) -> bool:
        """True once the file is closed."""
        return not self.file.id.valid

    def flush(self) -> None:
        """Flush everything to disk."""
        self.file.flush()

    def close(self) -> None:
        """Close the file."""
        if self.file.id.valid:
            self.file.close()
            logger.info("Closed %s (%d frames)", self.path, self.frames)
