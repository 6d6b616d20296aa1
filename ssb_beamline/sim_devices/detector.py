"""Simulated TXM area detector writing HDF5 files, modelled on ``SimBlobDetector``.

`TXMDetector` is an ophyd-async `StandardDetector` assembled from a trigger,
an acquire and a data logic, exactly like ``ophyd_async.sim.SimBlobDetector``:
frames are appended to ``/entry/data/data`` (uint16, ``(N, H, W)``, one chunk
with a Fletcher-32 checksum per frame) of an HDF5 file named by the
`PathProvider`, and the detector emits StreamResource / StreamDatum documents
through ophyd-async's own `StreamResourceDataProvider`.
Each frame is computed from the beamline state read at the start of its exposure.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from ophyd_async.core import (
    DetectorAcquireLogic,
    DetectorDataLogic,
    DetectorTriggerLogic,
    PathProvider,
    SignalR,
    SignalRW,
    StandardDetector,
    StreamableDataProvider,
    StreamResourceDataProvider,
    StreamResourceInfo,
    TriggerInfo,
    soft_signal_r_and_setter,
    soft_signal_rw,
)

from ssb_beamline.diskspace import MIN_FREE_BYTES, check_free_space
from ssb_beamline.private_files import create_private_file, make_private_dir

from .image_model import TXMImageModel
from .state import BeamlineStateSources

__all__ = [
    "DATA_PATH",
    "MAX_EXPOSURE_S",
    "SimCamera",
    "TXMAcquireLogic",
    "TXMDataLogic",
    "TXMDetector",
    "TXMFrameFile",
    "TXMFrameWriter",
    "TXMTriggerLogic",
    "validate_exposure_time",
]

logger = logging.getLogger(__name__)

#: HDF5 dataset holding the frames.
DATA_PATH = "/entry/data/data"
#: Longest accepted exposure, s.
MAX_EXPOSURE_S = 600.0


def validate_exposure_time(value: float) -> float:
    """Return ``value`` if it is a valid exposure time (0 < t <= 600 s), else raise.

    Raises
    ------
    ValueError
        If the exposure time is not a finite number in (0, `MAX_EXPOSURE_S`].
    """
    value = float(value)
    if not np.isfinite(value) or value <= 0 or value > MAX_EXPOSURE_S:
        raise ValueError(f"Exposure time must be > 0 s and <= {MAX_EXPOSURE_S} s, got {value} s.")
    return value


class TXMFrameFile:
    """An open HDF5 file receiving frames (single writer, multiple readers).

    Each frame is one chunk with a Fletcher-32 checksum (HDF5's ``fletcher32``
    filter), so a reader detects a frame whose bytes changed on disk. A frame that
    would leave less than ``min_free_bytes`` on the file system is refused with
    `DiskFullError` before HDF5 writes anything (see :mod:`ssb_beamline.diskspace`:
    a write that fails for lack of space breaks HDF5 for the whole process).
    """

    #: Space left free on the file system (the run must still be closed and stored).
    min_free_bytes: int = MIN_FREE_BYTES

    def __init__(self, path: Path, shape: tuple[int, int]) -> None:
        h, w = shape
        self.path = path
        self.frame_bytes = h * w * np.dtype(np.uint16).itemsize
        self.check_space(f"the new detector file {path}")
        create_private_file(path)  # h5py keeps the mode of a file it truncates
        self.file = h5py.File(path, "w", libver="latest")
        self.data = self.file.create_dataset(
            DATA_PATH,
            shape=(0, h, w),
            dtype=np.uint16,
            maxshape=(None, h, w),
            chunks=(1, h, w),
            fletcher32=True,
        )
        self.create_extra_datasets()  # every dataset must exist before SWMR mode starts
        self.file.swmr_mode = True
        self.frames_written = 0

    def create_extra_datasets(self) -> None:
        """Create datasets besides the frames (none here; subclasses add theirs)."""

    def check_space(self, what: str) -> None:
        """Raise `DiskFullError` unless one more frame fits above the reserve."""
        # a frame, its checksum and chunk-index entries, and HDF5 metadata: 2 frames
        check_free_space(self.path, 2 * self.frame_bytes, what=what, reserve=self.min_free_bytes)

    def append(self, frame: np.ndarray) -> None:
        """Append one frame and flush (refused first if the file system is full)."""
        self.check_space(f"frame {self.frames_written} of {self.path}")
        self.data.resize(self.frames_written + 1, axis=0)
        self.data[self.frames_written] = frame
        self.data.flush()
        self.frames_written += 1

    def close(self) -> None:
        """Close the file."""
        self.file.close()


class TXMFrameWriter:
    """Produces frames from the image model and writes them to the open file."""

    def __init__(
        self,
        model: TXMImageModel,
        sources: BeamlineStateSources,
        exposure_time: SignalR[float],
    ) -> None:
        self.model = model
        self.sources = sources
        self.exposure_time = exposure_time
        self.images_written, self._set_images_written = soft_signal_r_and_setter(int, 0)
        self.number_of_frames = 1
        self.deadtime = 0.0
        self._file: TXMFrameFile | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """Frame shape ``(H, W)``."""
        return self.model.phantom.shape

    def open_file(self, path: Path) -> None:
        """Start a new HDF5 file."""
        self.close_file()
        self._file = TXMFrameFile(path, self.shape)
        self._set_images_written(0)
        logger.debug("Opened %s", path)

    def close_file(self) -> None:
        """Close the current file, if any."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def truncate(self, n_frames: int) -> int:
        """Shrink the open file to its first ``n_frames`` frames; return how many went.

        A pause rewinds to the last saved event: frames written after it are
        dropped here, and the rewind retakes them.
        """
        file = self._file
        if file is None or file.frames_written <= n_frames:
            return 0
        dropped = file.frames_written - n_frames
        file.data.resize(n_frames, axis=0)
        file.data.flush()
        file.frames_written = n_frames
        self._set_images_written(n_frames)
        return dropped

    async def acquire(self) -> None:
        """Expose ``number_of_frames`` frames in real time and write them."""
        if self._file is None:
            raise RuntimeError("TXM detector file not open: prepare() was not run")
        file = self._file
        for i in range(self.number_of_frames):
            start = time.monotonic()
            exposure = validate_exposure_time(await self.exposure_time.get_value())
            state = await self.sources.snapshot()
            frame = await asyncio.to_thread(self.model.render, state, exposure)
            await asyncio.sleep(max(0.0, start + exposure - time.monotonic()))
            file.append(frame)
            self._set_images_written(file.frames_written)
            if i + 1 < self.number_of_frames and self.deadtime > 0:
                await asyncio.sleep(self.deadtime)


class TXMTriggerLogic(DetectorTriggerLogic):
    """Internal triggering; a non-zero livetime sets ``exposure_time``."""

    def __init__(self, writer: TXMFrameWriter, exposure_time: SignalRW[float]) -> None:
        self.writer = writer
        self.exposure_time = exposure_time

    def config_sigs(self) -> set[SignalR]:
        """Signals reported by ``read_configuration``."""
        return {self.exposure_time}

    async def prepare_internal(self, num: int, livetime: float, deadtime: float) -> None:
        """Set the number of frames per trigger, exposure and dead time."""
        if livetime:
            await self.exposure_time.set(livetime)
        self.writer.number_of_frames = max(int(num), 1)
        self.writer.deadtime = deadtime

    async def default_trigger_info(self) -> TriggerInfo:
        """One frame at the current exposure time."""
        return TriggerInfo()


class TXMAcquireLogic(DetectorAcquireLogic):
    """Runs the frame writer as a background task."""

    def __init__(self, writer: TXMFrameWriter) -> None:
        self.writer = writer
        self.task: asyncio.Task | None = None

    async def start_acquiring(self) -> None:
        """Start exposing."""
        self.task = asyncio.create_task(self.writer.acquire())

    async def wait_for_idle(self) -> None:
        """Wait for the exposures to finish (re-raises their errors)."""
        if self.task:
            await self.task

    async def ensure_stopped(self) -> None:
        """Cancel any running exposure."""
        if self.task:
            self.task.cancel()
            with suppress(asyncio.CancelledError):
                await self.task
            self.task = None


class TXMDataLogic(DetectorDataLogic):
    """Opens one HDF5 file per prepare and describes it as a StreamResource."""

    def __init__(self, path_provider: PathProvider, writer: TXMFrameWriter) -> None:
        self.path_provider = path_provider
        self.writer = writer

    async def prepare_unbounded(self, datakey_name: str) -> StreamableDataProvider:
        """Open ``<directory>/<filename>.h5`` and return its stream provider."""
        info = self.path_provider(datakey_name)
        directory = Path(info.directory_path)
        make_private_dir(directory)
        self.writer.open_file(directory / f"{info.filename}.h5")
        return StreamResourceDataProvider(
            uri=f"{info.directory_uri}{info.filename}.h5",
            resources=self.stream_resources(datakey_name),
            mimetype="application/x-hdf5",
            collections_written_signal=self.writer.images_written,
        )

    def stream_resources(self, datakey_name: str) -> list[StreamResourceInfo]:
        """The datasets of the file: the frames, under ``datakey_name``."""
        h, w = self.writer.shape
        return [
            StreamResourceInfo(
                data_key=datakey_name,
                shape=(h, w),
                chunk_shape=(1, h, w),
                dtype_numpy=np.dtype(np.uint16).str,
                parameters={"dataset": DATA_PATH},
            )
        ]

    async def stop(self) -> None:
        """Close the file."""
        self.writer.close_file()

    def get_hinted_fields(self, datakey_name: str) -> Sequence[str]:
        """The frames are hinted."""
        return [datakey_name]


class SimCamera(StandardDetector):
    """Simulated camera: the TXM trigger and acquire logic around a frame writer.

    Subclasses name their ``writer_class`` (``(model, sources, exposure_time)``)
    and ``data_logic_class`` (``(path_provider, writer)``).
    """

    writer_class: type[TXMFrameWriter] = TXMFrameWriter
    data_logic_class: type[TXMDataLogic] = TXMDataLogic

    def __init__(
        self,
        path_provider: PathProvider,
        model: Any,
        sources: BeamlineStateSources,
        exposure_time: float = 0.02,
        name: str = "",
    ) -> None:
        validate_exposure_time(exposure_time)
        self.exposure_time = soft_signal_rw(
            float, exposure_time, units="s", setter=self._check_exposure
        )
        self.model = model
        self.writer = self.writer_class(model, sources, self.exposure_time)
        self.images_written = self.writer.images_written
        self.add_detector_logics(
            TXMTriggerLogic(self.writer, self.exposure_time),
            TXMAcquireLogic(self.writer),
            self.data_logic_class(path_provider, self.writer),
        )
        super().__init__(name=name)

    def _check_exposure(self, value: float) -> None:
        validate_exposure_time(value)


class TXMDetector(SimCamera):
    """Simulated TXM camera writing uint16 frames to HDF5.

    Parameters
    ----------
    path_provider : PathProvider
        Where to write (e.g. ``StaticPathProvider(UUIDFilenameProvider(), dir)``).
    model : TXMImageModel
        Frame formation (phantom, beam, noise, optics).
    sources : BeamlineStateSources
        Devices the frame depends on; fields can be swapped (e.g. the zone-plate
        axis for an ``ophyd.sim.SynAxis``) through ``detector.sources``.
    exposure_time : float
        Initial exposure time, s (validated).
    name : str
        Device name; also the data key of the frames.

    Attributes
    ----------
    exposure_time : SignalRW[float]
        Exposure time, s; setting a value <= 0 raises ``ValueError``.
    images_written : SignalR[int]
        Frames written to the current file.
    """

    @property
    def sources(self) -> BeamlineStateSources:
        """The beamline state sources read at each exposure."""
        return self.writer.sources
