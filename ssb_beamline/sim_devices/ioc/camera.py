"""The simulated camera driver, ``{P}cam1:``: the ``ADBase.template`` PVs and the exposure loop.

``Acquire`` = 1 starts an acquisition of ``NumImages`` frames (``ImageMode``
``Multiple``), one frame (``Single``) or frames until ``Acquire`` = 0
(``Continuous``), one every ``max(AcquireTime, AcquirePeriod)`` s. The put
completes when the acquisition ends, as a busy record does (ophyd-async writes
``Acquire`` with ``wait=non_zero``). Each frame is rendered by the
`~ssb_beamline.sim_devices.ioc.frames.FrameSource` from the axes read at
mid-exposure, handed to the plugins (the HDF5 writer) with its NDAttributes, and
``I0:Counts`` is set to the flux integrated over that exposure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from caproto import ChannelType
from caproto.server import pvproperty

from .adbase import AD_STATES, NDArrayBase, boolean, is_true, rbv_pair
from .frames import FrameSource

__all__ = ["CameraDriver", "Frame"]

logger = logging.getLogger(__name__)

STR = ChannelType.STRING
IMAGE_MODES = ("Single", "Multiple", "Continuous")
MAX_EXPOSURE_S = 600.0


@dataclass(frozen=True)
class Frame:
    """One exposed frame and what the plugins store with it."""

    data: np.ndarray
    unique_id: int
    #: UNIX time at mid-exposure, s (the ``NDArrayTimeStamp`` of the HDF5 file).
    timestamp: float
    exposure_s: float
    #: Incident flux integrated over the exposure (``I0:Counts``).
    i0_counts: float
    #: NDAttribute values keyed by attribute name.
    attributes: dict[str, Any]


#: The parts of the beamline state that a frame depends on and that change only when
#: a move or a shutter does (flux and ring current drift slowly and are read per frame).
_SCENE_FIELDS = ("energy_ev", "zp_z_mm", "det_z_mm", "sample_x_um", "sample_y_um",
                 "rotation_deg", "holo_z_mm", "shutter_open", "fe_shutter_open")  # fmt: skip


def _scene(state: Any) -> tuple:
    return tuple(getattr(state, name, None) for name in _SCENE_FIELDS)


class CameraDriver(NDArrayBase):
    """``{P}cam1:`` of the simulated TXM.

    Parameters
    ----------
    prefix : str
        ``"<IOC prefix>cam1:"``.
    frames : FrameSource
        Renders frames from the axes.
    read_state : callable
        ``read_state(t)`` -> state at UNIX time ``t`` (see `FrameSource`).
    attributes : callable
        ``attributes(t, frame_info)`` -> NDAttribute values for a frame at ``t``.
    on_i0 : callable
        ``await on_i0(counts)`` after each frame.
    """

    acquire_time, acquire_time_rbv = rbv_pair("AcquireTime", 0.02, precision=4, units="s")
    acquire_period, acquire_period_rbv = rbv_pair("AcquirePeriod", 0.0, precision=4, units="s")
    num_images, num_images_rbv = rbv_pair("NumImages", 1)
    image_mode, image_mode_rbv = rbv_pair("ImageMode", "Multiple", enum=IMAGE_MODES)
    acquire, acquire_rbv = rbv_pair("Acquire", False, enum=("Done", "Acquire"))
    detector_state = pvproperty(name="DetectorState_RBV", value="Idle", enum_strings=AD_STATES,
                                dtype=ChannelType.ENUM, read_only=True)  # fmt: skip
    wait_for_plugins = boolean("WaitForPlugins")
    manufacturer = pvproperty(
        name="Manufacturer_RBV", value="ssb_beamline", read_only=True, dtype=STR
    )
    model = pvproperty(name="Model_RBV", value="Simulated TXM camera", read_only=True, dtype=STR)
    serial_number = pvproperty(name="SerialNumber_RBV", value="SIM-0001", read_only=True, dtype=STR)
    sdk_version = pvproperty(name="SDKVersion_RBV", value="caproto", read_only=True, dtype=STR)
    firmware_version = pvproperty(name="FirmwareVersion_RBV", value="1", read_only=True, dtype=STR)
    num_images_counter = pvproperty(name="NumImagesCounter_RBV", value=0, read_only=True)
    status_message = pvproperty(name="StatusMessage_RBV", value="Idle", read_only=True,
                                dtype=ChannelType.STRING)  # fmt: skip

    def __init__(
        self,
        prefix: str,
        frames: FrameSource,
        read_state: Callable[[float], Any],
        attributes: Callable[[float, dict], dict[str, Any]],
        on_i0: Callable[[float], Awaitable[None]],
        **kwargs: Any,
    ) -> None:
        super().__init__(prefix=prefix, **kwargs)
        self.frames = frames
        self.read_state = read_state
        self.attributes = attributes
        self.on_i0 = on_i0
        self.plugins: list[Any] = []
        self._task: asyncio.Task | None = None
        self.init_array_shape(*frames.shape)

    @property
    def acquiring(self) -> bool:
        """True while an acquisition runs."""
        return self._task is not None and not self._task.done()

    async def on_put(self, suffix: str, value: Any) -> Any:
        """Validate exposure settings; ``Acquire`` starts/stops the exposure loop."""
        if suffix == "AcquireTime" and not 0 < value <= MAX_EXPOSURE_S:
            raise ValueError(f"AcquireTime must be in (0, {MAX_EXPOSURE_S}] s, got {value}")
        if suffix in ("AcquirePeriod", "NumImages") and value < 0:
            raise ValueError(f"{suffix} must be >= 0, got {value}")
        if suffix != "Acquire":
            return value
        if not is_true(value):
            await self.stop_acquisition()
            return "Done"
        if not self.acquiring:
            self._task = asyncio.create_task(self._acquire())
            await self.acquire_rbv.write("Acquire")
        task = self._task
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return "Done"

    async def stop_acquisition(self) -> None:
        """Abort the acquisition in progress (the frame being exposed is dropped)."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _frame_budget(self) -> float:
        mode = self.image_mode.value
        if mode == "Single":
            return 1
        if mode == "Continuous":
            return float("inf")
        return max(int(self.num_images.value), 1)

    async def _acquire(self) -> None:
        """Expose frames on a fixed clock until the budget is spent or stopped."""
        budget, done = self._frame_budget(), 0
        await self.detector_state.write("Acquire")
        await self.num_images_counter.write(0)
        await self.set_array_shape(*self.frames.shape)
        for plugin in self.plugins:
            await plugin.set_array_shape(*self.frames.shape)
        t0 = time.time()
        try:
            while done < budget:
                exposure = float(self.acquire_time.value)
                period = max(exposure, float(self.acquire_period.value))
                start = max(t0 + done * period, time.time())
                await asyncio.sleep(max(0.0, start - time.time()))
                frame = await self._expose(exposure, start + exposure / 2)
                await asyncio.sleep(max(0.0, start + exposure - time.time()))
                await self._deliver(frame)
                done += 1
                await self.num_images_counter.write(done)
        except Exception:
            logger.exception("%s acquisition failed", self.prefix)
            await self.detector_state.write("Error")
            raise
        finally:
            if self.detector_state.value != "Error":
                await self.detector_state.write("Idle")
            await self.acquire_rbv.write("Done")

    async def _expose(self, exposure: float, t_mid: float) -> Frame:
        """The frame of the scene at mid-exposure ``t_mid``, rendered during the exposure.

        The axes' trajectories are known, so the state at ``t_mid`` is computed when the
        exposure starts and the frame is rendered (in a worker thread) while it runs, as
        the in-process camera does: a frame costs max(exposure, render), not half the
        exposure plus the render. If a move or a shutter changed the scene before
        ``t_mid`` (e.g. a move commanded just after the exposure started), the frame is
        rendered again from the state at ``t_mid``.
        """
        state = self.read_state(t_mid)
        rendering = asyncio.ensure_future(asyncio.to_thread(self.frames.render, state, exposure))
        await asyncio.sleep(max(0.0, t_mid - time.time()))
        data = await rendering
        if _scene(self.read_state(t_mid)) != _scene(state):
            state = self.read_state(t_mid)
            data = await asyncio.to_thread(self.frames.render, state, exposure)
        uid = int(self.unique_id.value) + 1
        i0 = self.frames.i0_counts(state, exposure)
        info = {"exposure": exposure, "unique_id": uid, "i0": i0, "timestamp": t_mid}
        return Frame(data, uid, t_mid, exposure, i0, self.attributes(t_mid, info))

    async def _deliver(self, frame: Frame) -> None:
        """Publish counters and I0, then hand the frame to every plugin."""
        await self.unique_id.write(frame.unique_id)
        await self.array_counter_rbv.write(int(self.array_counter_rbv.value) + 1)
        await self.on_i0(frame.i0_counts)
        for plugin in self.plugins:
            await plugin.receive(frame)

    def add_plugins(self, plugins: Sequence[Any]) -> None:
        """Add plugins: ``await plugin.receive(frame)``, ``await plugin.set_array_shape(h, w)``."""
        self.plugins.extend(plugins)
