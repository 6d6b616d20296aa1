"""The simulated NDFileHDF5 plugin, ``{P}HDF1:``: the PVs ophyd-async's HDF writer drives.

``Capture`` = 1 (``FileWriteMode`` ``Stream``; ``Capture`` is treated the same)
opens ``FullFileName`` = ``FileTemplate % (FilePath, FileName, FileNumber)`` at
the first frame (``LazyOpen``) or at once, appends every frame the camera
delivers while ``EnableCallbacks`` is ``Enable`` and counts them in
``NumCaptured_RBV``; it stops after ``NumCapture`` frames (0: until
``Capture`` = 0). The put completes when capturing stops, as a busy record does.
``FilePathExists_RBV`` tells whether ``FilePath`` is a writable directory, inside
the IOC's data directory when it has one; ``CreateDirectory`` != 0 creates it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from caproto.server import pvproperty

from ssb_beamline.private_files import make_private_dir

from .adbase import COMPRESSIONS, NDArrayBase, boolean, char_string, is_true, rbv_pair
from .camera import Frame
from .hdf_file import FrameFile
from .ndattributes import AttributeSpec

__all__ = ["HDFPlugin", "format_file_name"]

logger = logging.getLogger(__name__)

_CONVERSION = re.compile(r"%[-#0 +]*\d*(?:\.\d+)?[sdiuf]")


def format_file_name(template: str, path: str, name: str, number: int) -> str:
    """areaDetector's ``epicsSnprintf(template, path, name, number)`` (extra args ignored).

    >>> format_file_name("%s%s_%6.6d.h5", "/data/", "scan", 3)
    '/data/scan_000003.h5'
    >>> format_file_name("%s%s.h5", "/data/", "abc", 7)
    '/data/abc.h5'
    """
    n = len(_CONVERSION.findall(template.replace("%%", "")))
    try:
        return template % (path, name, number)[:n]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"FileTemplate {template!r} does not format (path, name, number): "
                         f"{exc}; use e.g. '%s%s_%6.6d.h5'") from exc  # fmt: skip


class HDFPlugin(NDArrayBase):
    """``{P}HDF1:`` of the simulated TXM.

    Parameters
    ----------
    prefix : str
        ``"<IOC prefix>HDF1:"``.
    attribute_specs : callable
        ``attribute_specs()`` -> the NDAttribute datasets of a new file.
    data_dir : Path, optional
        If given, files may only be written inside it.
    """

    nd_array_port, nd_array_port_rbv = rbv_pair("NDArrayPort", "SIM")
    enable_callbacks, enable_callbacks_rbv = rbv_pair("EnableCallbacks", True,
                                                      enum=("Disable", "Enable"))  # fmt: skip
    nd_array_address, nd_array_address_rbv = rbv_pair("NDArrayAddress", 0)
    queue_size, queue_size_rbv = rbv_pair("QueueSize", 20)
    file_path, file_path_rbv = rbv_pair("FilePath", "", long=True)
    file_name, file_name_rbv = rbv_pair("FileName", "", long=True)
    file_template, file_template_rbv = rbv_pair("FileTemplate", "%s%s_%6.6d.h5", long=True)
    file_path_exists = boolean("FilePathExists_RBV", read_only=True)
    full_file_name = char_string("FullFileName_RBV", read_only=True)
    file_number, file_number_rbv = rbv_pair("FileNumber", 0)
    auto_increment = boolean("AutoIncrement")
    file_write_mode, file_write_mode_rbv = rbv_pair(
        "FileWriteMode", "Stream", enum=("Single", "Capture", "Stream")
    )
    num_capture, num_capture_rbv = rbv_pair("NumCapture", 0)
    num_captured = pvproperty(name="NumCaptured_RBV", value=0, read_only=True)
    capture, capture_rbv = rbv_pair("Capture", False, enum=("Done", "Capture"))
    array_size0 = pvproperty(name="ArraySize0", value=0, read_only=True)
    array_size1 = pvproperty(name="ArraySize1", value=0, read_only=True)
    create_directory = pvproperty(name="CreateDirectory", value=0)
    position_mode, position_mode_rbv = rbv_pair("PositionMode", False)
    compression, compression_rbv = rbv_pair("Compression", "None", enum=COMPRESSIONS)
    num_extra_dims, num_extra_dims_rbv = rbv_pair("NumExtraDims", 0)
    swmr_mode, swmr_mode_rbv = rbv_pair("SWMRMode", True)
    flush_now = boolean("FlushNow")
    xml_file_name, xml_file_name_rbv = rbv_pair("XMLFileName", "", long=True)
    num_frames_chunks, num_frames_chunks_rbv = rbv_pair("NumFramesChunks", 0)
    chunk_size_auto, chunk_size_auto_rbv = rbv_pair("ChunkSizeAuto", True)
    lazy_open, lazy_open_rbv = rbv_pair("LazyOpen", True)
    write_message = char_string("WriteMessage", read_only=True)

    def __init__(
        self,
        prefix: str,
        attribute_specs: Callable[[], list[AttributeSpec]],
        data_dir: Path | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(prefix=prefix, **kwargs)
        self.attribute_specs = attribute_specs
        self.data_dir = Path(data_dir).resolve() if data_dir is not None else None
        self.file: FrameFile | None = None
        self._done: asyncio.Event | None = None
        self._io = asyncio.Lock()

    @property
    def capturing(self) -> bool:
        """True between ``Capture`` = 1 and the end of the capture."""
        return self._done is not None

    async def on_put(self, suffix: str, value: Any) -> Any:
        """``FilePath`` is checked (and created); ``Capture`` starts/stops a capture."""
        if suffix == "FilePath":
            return await self._set_file_path(str(value))
        if suffix in ("FileName", "FileTemplate", "FileNumber"):
            await self._update_full_name(**{suffix: value})
        if suffix == "Capture":
            return await self._capture(is_true(value))
        if suffix == "NumFramesChunks" and int(value) < 0:
            raise ValueError(f"NumFramesChunks must be >= 0, got {value}")
        return value

    def _allowed(self, path: Path) -> bool:
        return self.data_dir is None or path == self.data_dir or self.data_dir in path.parents

    async def _set_file_path(self, value: str) -> str:
        path = Path(value).expanduser()
        value = str(path) + "/"
        ok = path.is_absolute() and self._allowed(path.resolve())
        if ok and not path.is_dir() and self.create_directory.value != 0:
            try:
                make_private_dir(path)
            except OSError as exc:
                logger.error("HDF1: cannot create %s: %s", path, exc)
        exists = ok and path.is_dir() and os.access(path, os.W_OK)
        if not ok:
            logger.error("HDF1: FilePath %s refused: not an absolute path inside the IOC data "
                         "directory %s", path, self.data_dir)  # fmt: skip
        await self.file_path_exists.write("Yes" if exists else "No")
        await self._update_full_name(FilePath=value)
        return value

    async def _update_full_name(self, **changed: Any) -> str:
        parts = {
            "FilePath": self.file_path.value,
            "FileName": self.file_name.value,
            "FileTemplate": self.file_template.value,
            "FileNumber": self.file_number.value,
        }
        parts.update(changed)
        name = format_file_name(parts["FileTemplate"], parts["FilePath"], parts["FileName"],
                                int(parts["FileNumber"]))  # fmt: skip
        return name

    async def _capture(self, start: bool) -> str:
        if not start:
            await self.finish_capture()
            return "Done"
        if self._done is None:
            if self.file_path_exists.value != "Yes":
                raise ValueError(f"HDF1:FilePath {self.file_path.value!r} does not exist or is "
                                 "not writable; set an existing directory first")  # fmt: skip
            self._done = asyncio.Event()
            await self.num_captured.write(0)
            await self.capture_rbv.write("Capture")
            if not is_true(self.lazy_open.value):
                await self._open(*self._frame_shape())
        done = self._done
        await done.wait()
        return "Done"

    def _frame_shape(self) -> tuple[int, int]:
        return int(self.array_size1_rbv.value), int(self.array_size0_rbv.value)

    async def _open(self, height: int, width: int) -> FrameFile:
        """Create the capture's file in a worker thread (HDF5 creation blocks for ms).

        The server's event loop keeps answering Channel Access meanwhile.
        """
        name = format_file_name(self.file_template.value, self.file_path.value,
                                self.file_name.value, int(self.file_number.value))  # fmt: skip
        chunk = int(self.num_frames_chunks.value) or 1
        done = self._done
        file = await asyncio.to_thread(FrameFile, Path(name), (height, width),
                                       self.attribute_specs(), chunk,
                                       swmr=is_true(self.swmr_mode.value))  # fmt: skip
        if self._done is not done or done is None:  # the capture ended while it was created
            await asyncio.to_thread(file.close)
            raise RuntimeError(f"HDF1: capture ended while {name} was created")
        self.file = file
        logger.info("HDF1: writing %s", name)
        return file

    async def receive(self, frame: Frame) -> None:
        """Store one frame (if enabled and capturing)."""
        if not self.capturing or not is_true(self.enable_callbacks.value):
            return
        file = self.file
        if file is None:
            try:
                file = await self._open(*frame.data.shape)
            except RuntimeError as exc:
                logger.warning("%s; frame %d dropped", exc, frame.unique_id)
                return
            await self.full_file_name.write(str(file.path))
        async with self._io:  # a concurrent Capture = 0 closes the file after this frame
            if file.closed:
                logger.warning("HDF1: capture ended; frame %d dropped", frame.unique_id)
                return
            await asyncio.to_thread(file.append, frame.data, frame.attributes)
        await self.num_captured.write(file.frames)
        limit = int(self.num_capture.value)
        if limit > 0 and file.frames >= limit:
            await self.finish_capture()

    async def finish_capture(self) -> None:
        """Close the file (in a worker thread), bump ``FileNumber``, end the capture."""
        file, self.file = self.file, None
        done, self._done = self._done, None
        if file is not None:
            async with self._io:
                await asyncio.to_thread(file.close)
            if is_true(self.auto_increment.value):
                number = int(self.file_number.value) + 1
                await self.file_number.write(number)
        if done is not None:
            done.set()
        await self.capture_rbv.write("Done")

    @flush_now.putter
    async def flush_now(self, instance, value: Any) -> str:
        """Flush the open file (in a worker thread: the loop keeps serving); resets to No."""
        file = self.file
        if file is not None and is_true(value):
            async with self._io:
                if not file.closed:
                    await asyncio.to_thread(file.flush)
        return "No"
