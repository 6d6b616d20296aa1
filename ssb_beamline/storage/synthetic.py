"""Synthetic runs: the documents of a ``xanes_scan`` with its frames in HDF5 files.

For tests and benchmarks of storage and replay that need a run of a given size, or
with one given fault (a missing stream, a frame shape that changes, no stop
document), without simulating an acquisition: the documents are those the
simulated beamline emits (start, descriptor, StreamResource, StreamDatum, event,
stop), made with event-model's composers, and the frames are written the way
the simulated detectors write them (one chunk per frame, each with a
Fletcher-32 checksum).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import h5py
import numpy as np
from event_model import compose_run

from ssb_beamline.private_files import create_private_file

__all__ = [
    "DATASET",
    "HDF5_MIMETYPE",
    "FrameSource",
    "constant_frames",
    "count_run",
    "mixture_frames",
    "write_frames",
    "write_run",
    "xanes_run",
]

HDF5_MIMETYPE = "application/x-hdf5"
DATASET = "/entry/data/data"

#: ``frames(stream, index, shape)`` -> one uint16 frame.
FrameSource = Callable[[str, int, tuple[int, int]], np.ndarray]

_LEVEL = {"dark": 100, "flat": 20000, "primary": 8000}


def constant_frames(stream: str, index: int, shape: tuple[int, int]) -> np.ndarray:
    """Flat frames: dark 100, flat 20000, image 8000 counts (enough to replay).

    Parameters
    ----------
    stream : str
        ``"dark"``, ``"flat"`` or ``"primary"``; another name gives zeros.
    index : int
        Frame number in the stream (unused: every frame is the same).
    shape : tuple of int
        ``(H, W)`` of a frame, pixels.

    Returns
    -------
    numpy.ndarray of uint16, shape (H, W)
        The frame, counts.
    """
    return np.full(shape, _LEVEL.get(stream, 0), np.uint16)


def mixture_frames(energies: Sequence[float], shape: tuple[int, int], seed: int = 0) -> FrameSource:
    """Frames of a Ni2+/Ni3+ mixture field (random state of charge), with cheap noise.

    The images follow the shipped NiO / LiNiO2 references, so the maps of a replay
    are those of a real analysis; the noise is one Gaussian field rolled from frame
    to frame (drawing fresh noise for a 2048 x 2048 frame costs more than the rest).

    Parameters
    ----------
    energies : sequence of float
        Energy of each primary frame, eV (inside the Ni K-edge references' range,
        about 8.2-8.6 keV).
    shape : tuple of int
        ``(H, W)`` of the frames, pixels.
    seed : int, default 0
        Seed of the state-of-charge field and the noise (same seed, same frames).

    Returns
    -------
    FrameSource
        ``frames(stream, index, shape) -> uint16 frame`` for :func:`write_frames`:
        dark 100 counts, flat about 30000, images by Beer-Lambert.
    """
    from ssb_beamline.reference_data import ni_k_edge_references

    rng = np.random.default_rng(seed)
    ni2, ni3 = ni_k_edge_references()
    soc = np.clip(rng.normal(0.5, 0.2, shape), 0, 1).astype(np.float32)
    noise = rng.normal(0.0, 30.0, shape).astype(np.float32)
    flat = np.clip(30000 + noise, 0, 65535).astype(np.uint16)
    dark = np.full(shape, 100, np.uint16)

    def frames(stream: str, index: int, frame_shape: tuple[int, int]) -> np.ndarray:
        if stream == "dark":
            return dark
        if stream == "flat":
            return flat
        e = float(energies[index])
        mu = 0.6 * ((1 - soc) * ni2.at([e])[0] + soc * ni3.at([e])[0]) + 0.2
        counts = 100 + 29900 * np.exp(-mu) + np.roll(noise, index, axis=0)
        return np.clip(counts, 0, 65535).astype(np.uint16)

    return frames


def write_frames(path: Path, stream: str, count: int, shape: tuple[int, int], frames: FrameSource):
    """Write ``count`` frames of one stream to an HDF5 file, one checksummed chunk per frame.

    Parameters
    ----------
    path : pathlib.Path
        The HDF5 file to create (0600; an existing file is replaced). The frames go
        to ``/entry/data/data``, as areaDetector writes them.
    stream : str
        Stream name passed to ``frames`` (``"dark"``, ``"flat"``, ``"primary"``).
    count : int
        Number of frames.
    shape : tuple of int
        ``(H, W)`` of a frame, pixels.
    frames : FrameSource
        ``frames(stream, index, shape)`` gives frame ``index`` (uint16).
    """
    create_private_file(path)
    with h5py.File(path, "w") as f:
        dataset = f.create_dataset(
            DATASET, shape=(count, *shape), dtype=np.uint16, chunks=(1, *shape), fletcher32=True
        )
        for i in range(count):
            dataset[i] = frames(stream, i, shape)


def xanes_run(
    uid: str,
    folder: Path,
    energies: Sequence[float],
    *,
    shape: tuple[int, int] = (8, 8),
    frames: FrameSource = constant_frames,
    n_dark: int = 2,
    plan: str = "xanes_scan",
    start_keys: bool = True,
    streams: Sequence[str] = ("dark", "flat", "primary"),
    shapes: dict[str, tuple[int, int]] | None = None,
    file_shapes: dict[str, tuple[int, int]] | None = None,
    exit_status: str | None = "success",
    files_per_stream: int = 1,
) -> list[tuple[str, dict]]:
    """The documents of a ``xanes_scan``-like run; its frames go to ``folder``.

    Parameters
    ----------
    uid : str
        The run's uid (files are named ``<uid>-<stream>.h5``).
    folder : pathlib.Path
        Where the HDF5 files are written (a tiled server's readable storage for a
        run to be stored there).
    energies : sequence of float
        Energies, eV; a flat and an image per energy.
    shape : tuple of int, default (8, 8)
        ``(H, W)`` of the frames, pixels.
    frames : FrameSource, default constant_frames
        Frame content (see :func:`mixture_frames`).
    n_dark : int, default 2
        Number of dark frames.
    plan : str, default "xanes_scan"
        Plan name of the start document.
    start_keys : bool, default True
        False leaves out the keys the XANES analysis needs (energies, data keys).
    streams : sequence of str, default ("dark", "flat", "primary")
        Which streams the run has.
    shapes, file_shapes : dict of str to tuple of int, optional
        Per-stream frame shapes in the descriptors / in the files (default
        ``shape``), to make runs whose shapes disagree.
    exit_status : str or None, default "success"
        Of the stop document; None leaves the run open (no stop).
    files_per_stream : int, default 1
        Split each stream's frames over this many files, each with its own
        StreamResource (as a detector staged once per energy writes them, e.g. a 3D
        XANES scan); the files are named ``<uid>-<stream>-<n>.h5``.
    """
    md: dict = {"plan_name": plan, "scan_id": 7, "num_points": len(energies)}
    if start_keys:
        md |= {"energies_ev": [float(e) for e in energies], "detector_key": "det"}
        md |= {"energy_key": "energy", "i0_key": "i0"}
    run = compose_run(uid=uid, metadata=md)
    docs: list[tuple[str, dict]] = [("start", run.start_doc)]
    number = {"shape": [], "dtype": "number", "source": "synthetic"}
    for stream in streams:
        described = (shapes or {}).get(stream, shape)
        count = n_dark if stream == "dark" else len(energies)
        frame = {"shape": [1, *described], "dtype": "array", "dtype_numpy": "<u2"}
        keys = {"det": {**frame, "source": "synthetic", "external": "STREAM:"}}
        desc = run.compose_descriptor(
            name=stream, data_keys={**keys, "energy": number, "i0": number}
        )
        docs.append(("descriptor", desc.descriptor_doc))
        parts = np.array_split(np.arange(count), max(1, min(files_per_stream, count)))
        for part, indices in enumerate(parts):
            name = f"{uid}-{stream}.h5" if len(parts) == 1 else f"{uid}-{stream}-{part}.h5"
            file_shape = (file_shapes or {}).get(stream, described)
            docs += _file_documents(run, desc, folder / name, indices, file_shape, frames, energies)
    if exit_status is not None:
        docs.append(("stop", run.compose_stop(exit_status=exit_status)))
    return docs


def _file_documents(run, desc, path: Path, indices, file_shape, frames, energies) -> list:
    """Frames ``indices`` of one stream written to ``path``: its resource, datums, events."""
    stream, described = desc.descriptor_doc["name"], desc.descriptor_doc["data_keys"]["det"]
    offset = int(indices[0]) if len(indices) else 0
    write_frames(
        path, stream, len(indices), file_shape, lambda s, i, shp: frames(s, offset + i, shp)
    )
    res = run.compose_stream_resource(
        mimetype=HDF5_MIMETYPE,
        uri=f"file://localhost{path}",
        data_key="det",
        parameters={"dataset": DATASET, "chunk_shape": described["shape"]},
    )
    docs: list = [("stream_resource", res.stream_resource_doc)]
    for k, i in enumerate(int(i) for i in indices):
        datum = res.compose_stream_datum(
            indices={"start": k, "stop": k + 1},
            seq_nums={"start": i + 1, "stop": i + 2},
            descriptor=desc.descriptor_doc,
        )
        data = {"energy": float(energies[0 if stream == "dark" else i]), "i0": 1.0}
        stamps = dict.fromkeys(data, time.time())
        event = desc.compose_event(data=data, timestamps=stamps, seq_num=i + 1)
        docs += [("stream_datum", datum), ("event", event)]
    return docs


def count_run(uid: str, values: Sequence[float] = (1.0, 2.0, 3.0)) -> list[tuple[str, dict]]:
    """The documents of a bluesky ``count`` of one scalar detector (no frames).

    Parameters
    ----------
    uid : str
        The run's start uid.
    values : sequence of float, default (1.0, 2.0, 3.0)
        The detector reading of each event (one event per value).

    Returns
    -------
    list of (str, dict)
        ``(name, document)`` pairs: start, descriptor, events, stop.
    """
    run = compose_run(uid=uid, metadata={"plan_name": "count", "scan_id": 8})
    data_keys = {"det": {"shape": [], "dtype": "number", "source": "synthetic"}}
    desc = run.compose_descriptor(name="primary", data_keys=data_keys)
    events = [
        ("event", desc.compose_event(data={"det": v}, timestamps={"det": 0.0}, seq_num=i + 1))
        for i, v in enumerate(values)
    ]
    return [
        ("start", run.start_doc),
        ("descriptor", desc.descriptor_doc),
        *events,
        ("stop", run.compose_stop()),
    ]


def write_run(raw, docs: list[tuple[str, dict]]) -> None:
    """Store a run's documents with bluesky's TiledWriter, as the live writer does.

    Parameters
    ----------
    raw : tiled container client
        The container of raw runs, with write access.
    docs : list of (str, dict)
        The run's ``(name, document)`` pairs in order (start first, stop last).
    """
    from bluesky.callbacks.tiled_writer import TiledWriter

    writer = TiledWriter(raw)
    for name, doc in docs:
        writer(name, doc)
