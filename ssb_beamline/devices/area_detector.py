"""The TXM camera: a stock areaDetector driver (``cam1:``) and HDF5 plugin (``HDF1:``).

Built from ophyd-async's own ``epics.adcore`` classes: `ADBaseIO` driver,
`ADAcquireLogic`, the generic exposure logic of ``adsimdetector`` (image mode,
number of images, acquire time/period: nothing camera-specific) and the stock
`ADHDFDataLogic`, which points the plugin at the `PathProvider`'s directory and
emits StreamResource/StreamDatum for ``/entry/data/data``; the IOC writes the file.

Two additions, and why:

* fly scans date each frame by the time stamp the plugin stores per frame
  (``/entry/instrument/NDAttributes/NDArrayTimeStamp``, written by every HDF5
  plugin), under the data key ``<name>-timestamp`` that the tomography plans and
  live analysis use. The stock logic declares only the NDAttributes named in an
  XML file, so `TimestampedHDFDataLogic` adds that dataset to its resources;
* the signals the stock logic waits on at every trigger (``Acquire``,
  ``DetectorState_RBV``, ``NumCaptured_RBV``, ``Capture``) are monitored from
  the first ``stage`` on (`TXMAreaDetector.MONITORED`). Without a monitor each
  ``observe_value`` / ``get_value`` of a trigger opens and closes its own CA
  subscription or does a CA get: about six round trips per frame, which cost
  more than a short exposure. With one, ophyd-async serves them from the
  monitor's cache (values arrive in the order the IOC posts them, so the cache
  never lags behind the readback a trigger waits for).
"""

from __future__ import annotations

from collections.abc import Sequence

from ophyd_async.core import (
    AsyncStatus,
    PathProvider,
    SignalR,
    StreamableDataProvider,
    StreamResourceDataProvider,
    StreamResourceInfo,
)
from ophyd_async.epics.adcore import (
    ADAcquireLogic,
    ADBaseIO,
    ADHDFDataLogic,
    ADWriterFactory,
    AreaDetector,
    NDFileHDF5IO,
)
from ophyd_async.epics.adsimdetector import SimDetectorTriggerLogic

__all__ = [
    "TIMESTAMP_DATASET",
    "TIMESTAMP_SUFFIX",
    "TXMAreaDetector",
    "TimestampedHDFDataLogic",
]

#: Per-frame time stamps (s, POSIX) written by the HDF5 plugin.
TIMESTAMP_DATASET = "/entry/instrument/NDAttributes/NDArrayTimeStamp"
#: Data key suffix of the frame time stamps (``<detector name>-timestamp``).
TIMESTAMP_SUFFIX = "-timestamp"


class TimestampedHDFDataLogic(ADHDFDataLogic):
    """`ADHDFDataLogic` that also declares the per-frame ``NDArrayTimeStamp`` dataset.

    Parameters
    ----------
    array_description : NDArrayDescription
        Signals giving the frame shape and data type (from the driver).
    path_provider : PathProvider
        Where the HDF5 files go (directory as the IOC sees it, file name per run).
    writer : NDFileHDF5IO
        The HDF5 file plugin (``{prefix}HDF1:``).
    driver : NDArrayBaseIO, optional
        The camera driver, whose NDAttributes are declared too.
    plugins : sequence of NDPluginBaseIO, default ()
        Other plugins whose NDAttributes are declared.
    datakey_suffix : str, default ""
        Appended to the frame data key. The per-frame time stamps are the data key
        ``<name>-timestamp`` (float64, s, the IOC's ``NDArrayTimeStamp``).
    """

    async def prepare_unbounded(self, datakey_name: str) -> StreamableDataProvider:
        """Prepare the stock HDF5 writer; add ``<datakey_name>-timestamp`` to its resources."""
        provider = await super().prepare_unbounded(datakey_name)
        assert isinstance(provider, StreamResourceDataProvider)
        stamps = StreamResourceInfo(
            data_key=f"{datakey_name}{TIMESTAMP_SUFFIX}",
            shape=(),
            chunk_shape=(1,),
            dtype_numpy="<f8",
            parameters={"dataset": TIMESTAMP_DATASET},
        )
        return StreamResourceDataProvider(
            uri=provider.uri,
            resources=[*provider.resources, stamps],
            mimetype="application/x-hdf5",
            collections_written_signal=provider.collections_written_signal,
            flush_signal=provider.flush_signal,
        )


def _ignore(reading: object) -> None:
    """A monitor callback that keeps the signal's cache alive and does nothing else."""


def _hdf_factory(path_provider: PathProvider, hdf_suffix: str) -> ADWriterFactory[NDFileHDF5IO]:
    factory = ADWriterFactory.hdf(path_provider, writer_suffix=hdf_suffix)

    def data_logic(writer, description, driver, plugins) -> TimestampedHDFDataLogic:
        return TimestampedHDFDataLogic(
            array_description=description,
            path_provider=path_provider,
            writer=writer,
            driver=driver,
            plugins=list(plugins),
        )

    factory.data_logic_factory = data_logic
    return factory


class TXMAreaDetector(AreaDetector[ADBaseIO]):
    """Area detector ``{prefix}cam1:`` + HDF5 plugin ``{prefix}HDF1:`` writing via the IOC.

    Parameters
    ----------
    prefix : str
        Detector PV prefix, e.g. ``"BL:"`` (driver ``BL:cam1:``, writer ``BL:HDF1:``).
    path_provider : PathProvider
        Where the IOC writes (``directory_path``: as the IOC sees it) and where the
        analysis reads (``directory_uri``).
    driver_suffix, hdf_suffix : str
        PV suffixes of the driver and the HDF5 plugin.
    config_sigs : sequence of SignalR
        More configuration signals (acquire time and period are always included).
    name : str
        Device name: the data key of the frames.

    Examples
    --------
    >>> from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider
    >>> det = TXMAreaDetector(
    ...     "SSBSIM:", StaticPathProvider(UUIDFilenameProvider(), "/tmp"), name="detector")
    >>> det.driver.acquire_time.source, det.hdf.file_path.source
    ('ca://SSBSIM:cam1:AcquireTime_RBV', 'ca://SSBSIM:HDF1:FilePath_RBV')
    """

    def __init__(
        self,
        prefix: str,
        path_provider: PathProvider,
        *,
        driver_suffix: str = "cam1:",
        hdf_suffix: str = "HDF1:",
        config_sigs: Sequence[SignalR] = (),
        name: str = "",
    ) -> None:
        driver = ADBaseIO(prefix + driver_suffix)
        super().__init__(
            driver,
            prefix,
            _hdf_factory(path_provider, hdf_suffix),
            acquire_logic=ADAcquireLogic(driver),
            trigger_logic=SimDetectorTriggerLogic(driver),
            config_sigs=config_sigs,
            name=name,
        )
        #: Monitor the `MONITORED` signals from the first ``stage`` on (False: the stock
        #: behaviour, one CA subscription or get per wait, e.g. to benchmark the difference).
        self.keep_monitors = True
        self._monitored = False

    #: Signals waited on or read at every trigger, by attribute path from the detector.
    MONITORED = ("driver.acquire", "driver.detector_state", "hdf.num_captured", "hdf.capture")

    def _monitor(self) -> None:
        """Keep a CA monitor on each `MONITORED` signal (needs the running event loop)."""
        if self._monitored or not self.keep_monitors:
            return
        for path in self.MONITORED:
            owner, attr = path.split(".")
            getattr(getattr(self, owner), attr).subscribe_reading(_ignore)
        self._monitored = True

    @AsyncStatus.wrap
    async def stage(self) -> None:
        """Start the per-trigger monitors (once), then the stock stage."""
        self._monitor()
        await super().stage()
