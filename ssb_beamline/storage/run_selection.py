"""Which stored runs to replay: a uid or a unique prefix of one, or a search.

:func:`select_runs` turns what a user typed (uids, a scan id, a plan name, a sample
name, a time range) into the uids of stored runs, with a :class:`ReplayError` that
says what to fix when nothing (or more than one run) matches.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from .run_checks import ReplayError

__all__ = ["MAX_SCAN_ID", "check_uid", "describe", "resolve_uid", "select_runs", "unique_match"]

#: What a run uid (or a prefix of one) may contain: no path separators, no "..".
_UID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
#: The largest scan id the catalog can search for (a signed 64-bit integer).
MAX_SCAN_ID = 2**63 - 1


def check_uid(partial: object) -> str:
    """``partial`` if it can be (a prefix of) a run uid, else a :class:`ReplayError`.

    Parameters
    ----------
    partial : object
        A uid or a prefix of one (letters, digits and ``-``).

    Returns
    -------
    str
        ``partial``.

    Raises
    ------
    ReplayError
        If ``partial`` is not a string of uid characters.
    """
    if not isinstance(partial, str) or not _UID_PATTERN.fullmatch(partial):
        raise ReplayError(
            f"{partial!r} is not a run uid: uids are letters, digits and '-' (e.g. "
            "3f2a9c1e-...), and a unique prefix of one is enough. List the runs with "
            "`ssb-beamline runs`."
        )
    return partial


def resolve_uid(raw, partial: str) -> str:
    """The full uid of the stored run whose uid is or starts with ``partial``.

    Parameters
    ----------
    raw : tiled container client
        The container of raw runs.
    partial : str
        A full uid or a unique prefix of one.

    Returns
    -------
    str
        The full uid.

    Raises
    ------
    ReplayError
        If ``partial`` is not uid-like, matches no run, or matches several (the
        message lists up to five).
    """
    check_uid(partial)
    try:  # a CatalogOfBlueskyRuns client also resolves a unique partial uid here
        start = raw[partial].metadata.get("start") or {}
        return start.get("uid") or partial
    except (KeyError, ValueError):  # not a key; or ambiguous / too short for the catalogue
        pass
    return unique_match(partial, [uid for uid in raw if uid.startswith(partial)])


def unique_match(partial: str, matches: list[str]) -> str:
    """The one uid in ``matches`` (those starting with ``partial``); `ReplayError` else.

    Parameters
    ----------
    partial : str
        The start of a uid, as the user typed it.
    matches : list of str
        The stored uids that start with ``partial``.

    Returns
    -------
    str
        The full uid.

    Raises
    ------
    ReplayError
        If no uid or more than one starts with ``partial``; the message says what to do.

    Examples
    --------
    >>> unique_match("ab", ["abc123"])
    'abc123'
    """
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ReplayError(
            f"No stored run has a uid starting with {partial!r}; list them with "
            "`ssb-beamline runs`."
        )
    shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
    raise ReplayError(f"{partial!r} matches {len(matches)} runs ({shown}); give more of the uid.")


def _timestamp(value: str | float | dt.datetime | None) -> float | None:
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ReplayError(
                f"{value!r} is not a date/time; use ISO format, e.g. 2026-11-26T14:00."
            ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def _scan_id(value: object) -> int:
    whole = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if whole or (isinstance(value, str) and value.strip().lstrip("+-").isdigit()):
        number = int(value)  # type: ignore[arg-type]
        if not 0 <= number <= MAX_SCAN_ID:
            raise ReplayError(
                f"scan_id {number} is out of range: scan ids are whole numbers from 0 to "
                f"{MAX_SCAN_ID}. Give the scan number `ssb-beamline runs` lists."
            )
        return number
    raise ReplayError(
        f"scan_id must be a whole number (the scan number `ssb-beamline runs` lists), "
        f"not {value!r}."
    )


def select_runs(
    raw,
    uids: Iterable[str] = (),
    *,
    scan_id: int | None = None,
    plan_name: str | None = None,
    sample: str | None = None,
    since: str | float | dt.datetime | None = None,
    until: str | float | dt.datetime | None = None,
) -> list[str]:
    """Uids of stored runs: the given uids (or unique prefixes), else those matching.

    Filters combine (and): ``scan_id``, ``plan_name``, ``sample`` (a substring of
    the sample name), and the start time between ``since`` and ``until`` (ISO
    strings, datetimes or UNIX seconds; naive times are UTC). Runs come oldest first.

    Parameters
    ----------
    raw : tiled container client
        The container of raw runs.
    uids : iterable of str, default ()
        Uids or unique prefixes; when given, the filters are ignored.
    scan_id : int, optional
        The scan number (``start.scan_id``); a digit string is accepted, out of range
        raises ``ReplayError``.
    plan_name : str, optional
        Exact plan name, e.g. ``"xanes_scan"``.
    sample : str, optional
        Substring of the sample name.
    since, until : str, float or datetime.datetime, optional
        Start-time bounds (inclusive): ISO strings (``2026-11-26T14:00``), datetimes
        or UNIX seconds; naive times are UTC. ``since`` after ``until`` raises
        ``ReplayError``.

    Returns
    -------
    list of str
        Full uids, oldest first.

    Raises
    ------
    ReplayError
        For an unknown or ambiguous uid, or when nothing matches the filters.
    """
    from tiled.queries import Comparison, Eq, Like

    chosen = [resolve_uid(raw, u) for u in uids]
    if chosen:
        return chosen
    t0, t1 = _timestamp(since), _timestamp(until)
    if t0 is not None and t1 is not None and t0 > t1:
        raise ReplayError(
            f"The time range is empty: since={since!r} is after until={until!r}. "
            "Swap them (--since is the earlier time)."
        )
    results = raw
    if scan_id is not None:
        results = results.search(Eq("start.scan_id", _scan_id(scan_id)))
    if plan_name is not None:
        results = results.search(Eq("start.plan_name", plan_name))
    if sample is not None:
        results = results.search(Like("start.sample.name", f"%{sample}%"))
    if t0 is not None:
        results = results.search(Comparison("ge", "start.time", t0))
    if t1 is not None:
        results = results.search(Comparison("le", "start.time", t1))
    found = list(results)
    if not found:
        raise ReplayError(
            "No stored run matches the selection; check the filters with `ssb-beamline runs`."
        )
    return found


def describe(run) -> dict[str, Any]:
    """A one-line summary of a stored run's start document (for listings).

    Parameters
    ----------
    run : tiled run client
        A stored run (``raw[uid]``).

    Returns
    -------
    dict
        ``uid``, ``scan_id``, ``plan_name``, ``time`` (UNIX s) and ``num_points``
        (None where the start document lacks one).
    """
    start = run.metadata.get("start", {})
    return {key: start.get(key) for key in ("uid", "scan_id", "plan_name", "time", "num_points")}
