"""A stored run's frame references rewritten per detector file and in bounded blocks.

tiled's document exporter (bluesky-tiled-plugins' json-seq) describes each external
data key of a stream with ONE StreamResource and ONE StreamDatum spanning every
frame. Two things follow for a replay that reads the detector files itself:

- a stream written to several files (a detector staged once per energy or
  tomogram, as a 3D XANES scan does) keeps only the first file's URI in that
  StreamResource (its file names carry no counter the exporter could turn into a
  template), so the frames of the other files cannot be found and the reader
  stops with "holds 1 frames; StreamDatum asks for frames 0-10";
- a one-file stream is read in one piece: 100 frames of 2048 x 2048 are 800 MB
  held at once next to the analysis stack.

:func:`per_file_documents` takes the file list from the array's data source in
tiled (its assets, in order) and each file's frame count from the file, and gives
one StreamResource per file with StreamDatums of about :data:`FILE_BLOCK_BYTES`
each, so the frames are read file by file, a block at a time. Written here
because neither the exporter nor the HDF5 reader can do it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import h5py
import numpy as np

from ssb_beamline._uris import file_uri_path

from .run_checks import ReplayError

__all__ = ["FILE_BLOCK_BYTES", "per_file_documents", "stream_file_uris"]

logger = logging.getLogger(__name__)

#: Bytes of frames per StreamDatum (rounded to whole frames, at least one frame).
FILE_BLOCK_BYTES = 32 * 2**20

Docs = list[tuple[str, dict]]


def _asset_uris(run, stream: str, key: str) -> list[str]:
    """The files of ``run[stream][key]`` in frame order ([] if tiled does not list them)."""
    try:
        sources = run[stream][key].data_sources() or []
    except KeyError:
        return []
    if not sources:
        return []
    assets = sorted(sources[0].assets, key=lambda a: a.num or 0)
    return [a.data_uri for a in assets if a.parameter in ("data_uris", "data_uri")]


def stream_file_uris(run, docs: Docs) -> dict[str, list[str]]:
    """StreamResource uid -> the URIs of every file holding its frames, in order.

    tiled is asked for the file list only when the resource's own file holds fewer
    frames than its StreamDatum spans (a stream written to several files); a
    resource whose file cannot be opened here keeps its URI (the frame reader, or
    ``fill="auto"``, deals with it).

    Parameters
    ----------
    run : tiled ``BlueskyRun`` client
        The stored run (asked for its data sources only when needed).
    docs : list of (name, document)
        All its documents (``run.documents()``), in recorded order.
    """
    descriptors = {doc["uid"]: doc for name, doc in docs if name == "descriptor"}
    resources = {doc["uid"]: doc for name, doc in docs if name == "stream_resource"}
    uris = {uid: [doc["uri"]] for uid, doc in resources.items()}
    for name, doc in docs:
        if name != "stream_datum" or doc["stream_resource"] not in resources:
            continue
        resource = resources[doc["stream_resource"]]
        descriptor = descriptors.get(doc["descriptor"])
        try:
            held = _frame_count(resource["uri"], resource["parameters"]["dataset"])
        except (ReplayError, KeyError):
            continue
        if descriptor is None or held >= doc["indices"]["stop"]:
            continue
        files = _asset_uris(run, descriptor["name"], resource["data_key"])
        if len(files) > 1:
            uris[resource["uid"]] = files
    return uris


def _frame_count(uri: str, dataset: str) -> int:
    """Frames in one detector file (its HDF5 metadata only)."""
    path = file_uri_path(uri)
    try:
        with h5py.File(path, "r") as f:
            return int(f[dataset].shape[0])
    except (OSError, KeyError, TypeError) as exc:
        first_line = (str(exc).splitlines() or [""])[0]
        raise ReplayError(
            f"The detector file {path} cannot be read ({first_line}): it was moved, "
            "truncated or damaged. Restore it, or replay from tiled with fill='always' "
            "(--fill always) if the server has the frames."
        ) from exc


def _frames_per_block(descriptor: dict, key: str) -> int:
    data_key = descriptor["data_keys"].get(key, {})
    shape = [int(n) for n in data_key.get("shape") or ()][-2:]
    itemsize = np.dtype(data_key.get("dtype_numpy") or "<u2").itemsize
    frame_bytes = max(1, int(np.prod(shape or [1])) * itemsize)
    return max(1, FILE_BLOCK_BYTES // frame_bytes)


def _split(resource: dict, datum: dict, files: list[str], block: int) -> Iterator[tuple[str, dict]]:
    """One StreamResource per file, the datum's frames in datums of ``block`` frames."""
    start, stop = datum["indices"]["start"], datum["indices"]["stop"]
    seq = datum["seq_nums"]["start"] - start  # seq_num of frame i is seq + i
    if len(files) == 1:
        counts, parts = [stop], [resource]
    else:
        dataset = resource["parameters"]["dataset"]
        counts = [_frame_count(uri, dataset) for uri in files]
        parts = [
            {**resource, "uid": f"{resource['uid']}-file{n}", "uri": uri}
            for n, uri in enumerate(files)
        ]
    offset = 0  # frames of the stream in the files before this one
    for part, count in zip(parts, counts, strict=True):
        first, last = max(start - offset, 0), min(stop - offset, count)
        if first < last and part is not resource:
            yield "stream_resource", part
        for begin in range(first, last, block):
            end = min(begin + block, last)
            yield (
                "stream_datum",
                {
                    **datum,
                    "uid": f"{datum['uid']}-{part['uid']}-{begin}",
                    "stream_resource": part["uid"],
                    "indices": {"start": begin, "stop": end},
                    "seq_nums": {"start": seq + offset + begin, "stop": seq + offset + end},
                },
            )
        offset += count
    if len(files) > 1 and stop > offset:
        raise ReplayError(
            f"The {len(files)} detector files of {resource['data_key']!r} hold {offset} "
            f"frames, but the run records {stop}: a file is truncated. Restore it, or "
            "replay from tiled with fill='always' (--fill always)."
        )


def per_file_documents(docs: Docs, files: dict[str, list[str]]) -> Iterator[tuple[str, dict]]:
    """``docs`` with each StreamDatum split per file (``files``) and into bounded blocks.

    A StreamResource spanning several files is replaced by one per file (uids
    ``<uid>-file<n>``); a one-file resource is kept as it is.

    Parameters
    ----------
    docs : list of (name, document)
        The run's documents in recorded order.
    files : dict of str to list of str
        :func:`stream_file_uris` of the same documents; a resource missing from it
        keeps its own URI. Each StreamDatum becomes blocks of about
        ``FILE_BLOCK_BYTES`` (32 MiB) of frames, at least one frame each.
    """
    descriptors = {doc["uid"]: doc for name, doc in docs if name == "descriptor"}
    resources = {doc["uid"]: doc for name, doc in docs if name == "stream_resource"}
    for name, doc in docs:
        if name == "stream_resource" and len(files.get(doc["uid"], ())) > 1:
            continue  # replaced by one per file, with the datums
        if name != "stream_datum" or doc["stream_resource"] not in resources:
            yield name, doc
            continue
        resource = resources[doc["stream_resource"]]
        descriptor = descriptors.get(doc["descriptor"], {"data_keys": {}})
        block = _frames_per_block(descriptor, resource["data_key"])
        yield from _split(resource, doc, files.get(resource["uid"], [resource["uri"]]), block)
