"""Every check on a stored run before it is replayed, in one place.

Each check raises a :class:`ReplayError` whose message says what is wrong with the
run (or the request) and what to do: a run still open, one not taken by
``xanes_scan``, one without its dark/flat/image streams, streams whose frames
disagree in shape, detector files not readable here, a replay speed that is not a
positive number.
"""

from __future__ import annotations

from collections.abc import Iterable

from ssb_beamline._uris import file_uri_path

__all__ = [
    "XANES_START_KEYS",
    "XANES_STREAMS",
    "ReplayError",
    "check_files_readable",
    "check_frame_shapes",
    "check_replayable",
    "check_run_closed",
    "check_speed",
    "frame_shape",
    "readable_path",
]

#: Start-document keys the XANES analysis needs (``xanes_scan`` writes them).
XANES_START_KEYS = ("energies_ev", "detector_key", "energy_key")
#: Streams a XANES run must have to be analysed.
XANES_STREAMS = ("dark", "flat", "primary")


class ReplayError(ValueError):
    """A run cannot be replayed; the message says why and what to do."""


def check_speed(speed: float | None) -> float | None:
    """``speed`` if it is None (as fast as possible) or > 0, else a :class:`ReplayError`.

    Parameters
    ----------
    speed : float or None
        Replay pace relative to the original timing (1.0: as recorded, 10: ten times
        faster); None: as fast as possible.

    Raises
    ------
    ReplayError
        If ``speed`` is zero, negative or NaN.

    Examples
    --------
    >>> check_speed(10.0), check_speed(None)
    (10.0, None)
    """
    if speed is not None and not speed > 0:
        raise ReplayError(f"speed must be > 0 (1.0 is the original timing), not {speed}.")
    return speed


def check_run_closed(run) -> str:
    """The uid of a stored run that has its stop document; `ReplayError` otherwise.

    Parameters
    ----------
    run : tiled run client
        A stored run (``raw[uid]``), whose metadata hold its start and stop documents.

    Returns
    -------
    str
        The run's uid.

    Raises
    ------
    ReplayError
        If the run has no stop document (still acquiring, or interrupted: run
        ``ssb-beamline sync`` first).
    """
    uid = (run.metadata.get("start") or {}).get("uid", "?")
    if not run.metadata.get("stop"):
        raise ReplayError(
            f"Run {uid} is still open (it has no stop document): it is being acquired or "
            "was interrupted before it closed. Wait for it to finish; an interrupted run "
            "can be replayed after `ssb-beamline sync` closes it."
        )
    return uid


def check_replayable(run) -> None:
    """Raise :class:`ReplayError` unless ``run`` can go through the XANES analysis.

    It must be closed (a stop document), taken by ``xanes_scan`` (whose start
    document names the energies and data keys) and hold its ``dark``, ``flat`` and
    ``primary`` streams.

    Parameters
    ----------
    run : tiled run client
        A stored run (``raw[uid]``), whose metadata hold its start and stop documents.

    Raises
    ------
    ReplayError
        If the run is open, was not taken by ``xanes_scan``, lacks start-document keys
        or a ``dark``/``flat``/``primary`` stream; the message says what to do.
    """
    start = run.metadata.get("start") or {}
    uid = check_run_closed(run)
    plan = start.get("plan_name")
    if plan != "xanes_scan":
        raise ReplayError(
            f"Run {uid} was taken by {plan!r}, not xanes_scan; there is no XANES analysis "
            "to replay it through. Select XANES runs with --plan xanes_scan."
        )
    missing = [key for key in XANES_START_KEYS if key not in start]
    if missing:
        raise ReplayError(
            f"Run {uid} lacks {missing} in its start document: it was not taken with "
            "ssb_beamline's xanes_scan, so the XANES analysis cannot follow it."
        )
    streams = set(run)
    absent = [name for name in XANES_STREAMS if name not in streams]
    if absent:
        status = (run.metadata.get("stop") or {}).get("exit_status")
        raise ReplayError(
            f"Run {uid} has no {' or '.join(absent)} stream (it has {sorted(streams)}; "
            f"exit status {status!r}): it stopped before its images were taken, so there "
            "is nothing to analyse. Take the scan again."
        )


def frame_shape(data_key: dict) -> tuple[int, ...]:
    """(H, W) of an external data key's frames (descriptors give (1, H, W) or (H, W)).

    Parameters
    ----------
    data_key : dict
        One data key of an event descriptor (its ``shape``).

    Returns
    -------
    tuple of int
        ``(H, W)``, pixels; ``()`` for a scalar or 1D key.

    Examples
    --------
    >>> frame_shape({"shape": [1, 512, 256]}), frame_shape({"shape": []})
    ((512, 256), ())
    """
    shape = tuple(int(n) for n in data_key.get("shape") or ())
    return shape[-2:] if len(shape) >= 2 else ()


def check_frame_shapes(uid: str, descriptors: Iterable[dict]) -> None:
    """Every stream (dark, flat, primary) must describe one data key's frames alike.

    Parameters
    ----------
    uid : str
        The run's uid, for the message.
    descriptors : iterable of dict
        The run's event descriptors (dark, flat, primary).

    Raises
    ------
    ReplayError
        If one data key's frames differ in shape between streams (ROI or binning
        changed during the run).
    """
    seen: dict[str, tuple[tuple[int, ...], str]] = {}
    for doc in descriptors:
        for key, data_key in doc["data_keys"].items():
            shape = frame_shape(data_key) if data_key.get("external") else ()
            if not shape:
                continue
            first = seen.setdefault(key, (shape, doc["name"]))
            if first[0] != shape:
                raise ReplayError(
                    f"Run {uid}: {key!r} frames are {shape} in stream {doc['name']!r} but "
                    f"{first[0]} in stream {first[1]!r}. Darks, flats and images must have "
                    "the same shape (the detector ROI or binning changed); this run cannot "
                    "be analysed as one XANES stack."
                )


def readable_path(uri: str):
    """The local path of a detector file URI if that file exists here, else None.

    Parameters
    ----------
    uri : str
        A detector file's URI (``file://host/path``).

    Returns
    -------
    pathlib.Path or None
        The local path if the URI is a local file that exists here.
    """
    path = file_uri_path(uri)
    return path if path is not None and path.exists() else None


def check_files_readable(uid: str, resources: Iterable[dict]) -> None:
    """Every StreamResource's file must exist here (for ``fill="never"``).

    Parameters
    ----------
    uid : str
        The run's uid, for the message.
    resources : iterable of dict
        The run's StreamResource documents (their ``uri`` names the detector file).

    Raises
    ------
    ReplayError
        If a detector file cannot be read on this machine; use ``fill="auto"`` or
        ``"always"`` to fetch frames from tiled instead.
    """
    missing = [doc["uri"] for doc in resources if readable_path(doc["uri"]) is None]
    if missing:
        raise ReplayError(
            f"Run {uid}: fill='never' reads frames from the detector files, but "
            f"{len(missing)} of them cannot be read here (first: {missing[0]}). Use "
            "fill='auto' or 'always' (--fill) to fetch the frames from tiled instead."
        )
