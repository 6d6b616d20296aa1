"""Simulated tomography camera: `TXMDetector` logic plus rotation, distance and time stamps.

`TomoDetector` reuses the trigger and acquire logic of `TXMDetector` but reads a
`TomoState` (which adds the rotation angle and the holotomography distance to the
`BeamlineState`) and writes, next to the frames, the time stamp of each frame (UNIX
time at mid-exposure, like an area detector's ``NDArrayTimeStamp`` attribute) to
``/entry/instrument/NDAttributes/NDArrayTimeStamp``. Both datasets are described by
StreamResources of the same file: ``<name>`` (frames) and ``<name>-timestamp``. The
time stamps let a fly scan recover the angle of each frame from the monitored
rotation readback (`ssb_beamline.analysis.fly_angles.angles_from_monitor`).

The beamline state of a frame is read at mid-exposure, so a frame taken while the
sample rotates shows the angle at its time stamp.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from ophyd_async.core import (
    SignalR,
    StreamResourceInfo,
)

from .detector import (
    SimCamera,
    TXMDataLogic,
    TXMFrameFile,
    TXMFrameWriter,
    validate_exposure_time,
)
from .state import BeamlineState, BeamlineStateSources, is_open, read_value

__all__ = [
    "TIMESTAMP_PATH",
    "TIMESTAMP_SUFFIX",
    "FrameModel",
    "TomoDataLogic",
    "TomoDetector",
    "TomoFrameFile",
    "TomoFrameWriter",
    "TomoState",
    "TomoStateSources",
]

logger = logging.getLogger(__name__)

#: HDF5 dataset holding the frame time stamps (UNIX time at mid-exposure, s).
TIMESTAMP_PATH = "/entry/instrument/NDAttributes/NDArrayTimeStamp"
#: Suffix of the time-stamp data key (``<detector name>-timestamp``).
TIMESTAMP_SUFFIX = "-timestamp"


@dataclass(frozen=True)
class TomoState(BeamlineState):
    """`BeamlineState` plus the rotation angle (deg) and the ``holo_z`` distance (mm)."""

    rotation_deg: float = 0.0
    holo_z_mm: float = 0.0
    #: UNIX time (s) at which the rotation was read.
    timestamp: float = 0.0


@dataclass
class TomoStateSources(BeamlineStateSources):
    """`BeamlineStateSources` plus ``rotation`` and ``holo_z`` (see `read_value`).

    A ``rotation`` source with a ``position_at(t)`` method (`RotationAxis`) gives
    the exact angle at the frame's time stamp.
    """

    rotation: Any = 0.0
    holo_z: Any = 0.0

    async def snapshot(self, stamp: float | None = None) -> TomoState:
        """Read the rotation (time-stamped), then all other sources concurrently.

        ``stamp`` (UNIX s, default now) is the instant of the frame: a rotation with
        ``position_at`` gives its exact angle then, even if that instant has passed.
        """
        stamp = time.time() if stamp is None else stamp
        position_at = getattr(self.rotation, "position_at", None)
        if callable(position_at):  # exact angle at the time stamp (simulated axes)
            rotation = position_at(stamp)
        else:  # a synchronous source (classic ophyd, callable) is read without yielding
            rotation = await read_value(self.rotation)
        sources = (self.energy, self.zp_z, self.det_z, self.sample_x, self.sample_y,
                   self.shutter, self.i0, self.holo_z)  # fmt: skip
        values = await asyncio.gather(*(read_value(s) for s in sources))
        energy, zp, det, x, y, shutter, flux, holo_z = values
        return TomoState(
            energy_ev=float(energy),
            zp_z_mm=float(zp),
            det_z_mm=float(det),
            sample_x_um=float(x),
            sample_y_um=float(y),
            shutter_open=is_open(shutter),
            flux=float(flux),
            rotation_deg=float(rotation),
            holo_z_mm=float(holo_z),
            timestamp=stamp,
        )


class FrameModel(Protocol):
    """What the camera needs from an image model (e.g. `ProjectionImageModel`)."""

    @property
    def detector_shape(self) -> tuple[int, int]:
        """Frame shape ``(H, W)``."""
        ...

    def render(self, state: TomoState, exposure_s: float) -> np.ndarray:
        """One uint16 frame."""
        ...


class TomoFrameFile(TXMFrameFile):
    """HDF5 file with the frames and their time stamps."""

    def create_extra_datasets(self) -> None:
        """The time-stamp dataset (UNIX time at mid-exposure, s)."""
        self.timestamps = self.file.create_dataset(
            TIMESTAMP_PATH,
            shape=(0,),
            dtype=np.float64,
            maxshape=(None,),
            chunks=(1,),
            fletcher32=True,
        )

    def append_frame(self, frame: np.ndarray, timestamp: float) -> None:
        """Append one frame and its time stamp, then flush (refused if the disk is full)."""
        self.check_space(f"frame {self.frames_written} of {self.path}")
        self.timestamps.resize(self.frames_written + 1, axis=0)
        self.timestamps[self.frames_written] = timestamp
        self.timestamps.flush()
        self.append(frame)


class TomoFrameWriter(TXMFrameWriter):
    """Frames from a `FrameModel` and `TomoStateSources`, with time stamps.

    Attributes
    ----------
    frame_log : list of (float, TomoState)
        Time stamp and state of every frame written since the detector was made
        (the ground truth of each frame, e.g. its exact rotation angle).
    """

    def __init__(
        self, model: FrameModel, sources: TomoStateSources, exposure_time: SignalR[float]
    ) -> None:
        super().__init__(model, sources, exposure_time)  # type: ignore[arg-type]
        self.frame_log: list[tuple[float, TomoState]] = []

    @property
    def shape(self) -> tuple[int, int]:
        """Frame shape ``(H, W)``."""
        return self.model.detector_shape

    def open_file(self, path: Path) -> None:
        """Start a new HDF5 file with a time-stamp dataset."""
        self.close_file()
        self._file = TomoFrameFile(path, self.shape)
        self._set_images_written(0)
        logger.debug("Opened %s", path)

    async def acquire(self) -> None:
        """Expose ``number_of_frames`` frames on a fixed clock; state read at mid-exposure.

        Frame ``i`` is exposed from ``t0 + i * (exposure + deadtime)`` and sees the
        sample as it was at mid-exposure, like a camera on its own hardware clock:
        when computing a frame overruns (a loaded machine), the following frames
        are delivered late but keep their instants, time stamps and angles.
        """
        file = self._file
        if not isinstance(file, TomoFrameFile):
            raise RuntimeError("Tomography detector file not open: prepare() was not run")
        t0, t0_unix = time.monotonic(), time.time()
        scheduled = t0
        for i in range(self.number_of_frames):
            exposure = validate_exposure_time(await self.exposure_time.get_value())
            start = scheduled
            scheduled += exposure + self.deadtime
            if (late := time.monotonic() - start) > exposure:
                logger.debug("frame %d is computed %.3f s after its exposure began", i, late)
            await asyncio.sleep(max(0.0, start + exposure / 2 - time.monotonic()))
            state = await self.sources.snapshot(stamp=t0_unix + (start - t0) + exposure / 2)
            frame = await asyncio.to_thread(self.model.render, state, exposure)
            await asyncio.sleep(max(0.0, start + exposure - time.monotonic()))
            file.append_frame(frame, state.timestamp)
            self.frame_log.append((state.timestamp, state))
            self._set_images_written(file.frames_written)


class TomoDataLogic(TXMDataLogic):
    """One HDF5 file per prepare, described by two StreamResources (frames, times)."""

    def stream_resources(self, datakey_name: str) -> list[StreamResourceInfo]:
        """The frames (``datakey_name``) and their time stamps (``<datakey_name>-timestamp``)."""
        stamps = StreamResourceInfo(
            data_key=datakey_name + TIMESTAMP_SUFFIX,
            shape=(),
            chunk_shape=(1,),
            dtype_numpy=np.dtype(np.float64).str,
            parameters={"dataset": TIMESTAMP_PATH},
        )
        return [*super().stream_resources(datakey_name), stamps]


class TomoDetector(SimCamera):
    """Simulated tomography camera writing uint16 frames and time stamps to HDF5.

    Parameters
    ----------
    path_provider : PathProvider
        Where to write.
    model : FrameModel
        Frame formation (e.g. `ProjectionImageModel`).
    sources : TomoStateSources
        Devices the frame depends on (swappable, e.g. ``detector.sources.rotation =
        ophyd.sim.SynAxis(...)``).
    exposure_time : float
        Initial exposure time, s.
    name : str
        Device name; the frames' data key (time stamps: ``<name>-timestamp``).

    Attributes
    ----------
    exposure_time : SignalRW[float]
        Exposure time, s; setting a value <= 0 raises ``ValueError``.
    images_written : SignalR[int]
        Frames written to the current file.
    """

    writer_class = TomoFrameWriter
    data_logic_class = TomoDataLogic

    @property
    def sources(self) -> TomoStateSources:
        """The beamline state sources read at each exposure."""
        return self.writer.sources  # type: ignore[return-value]

    @property
    def timestamp_key(self) -> str:
        """Data key of the frame time stamps."""
        return self.name + TIMESTAMP_SUFFIX
