"""Why a tiled server of a data directory did not start, in one line for the user.

The embedded and the background servers are child processes writing to
``<data dir>/server.log``; when one exits or never answers, the cause (a damaged
catalogue, a port in use, a folder that cannot be written) is in that log only.
:func:`server_start_error` reads what the child wrote there during this start and
names the cause, how long was waited, and a fix that fits the cause.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["START_FIX", "ServerStartError", "log_size", "server_start_error", "thread_start_error"]

#: What to try when a server's log names no known cause.
START_FIX = (
    "Check that the data directory is writable, or pass --tiled URI to use a running server."
)

#: A traceback's last line: ``package.module.SomeError: message``.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b:? ?.*$")
#: What SQLite says of a damaged database file.
_DAMAGED = ("database disk image is malformed", "file is not a database")
#: Bytes of the log read back at most (its end).
_TAIL_BYTES = 64_000


class ServerStartError(RuntimeError, ValueError):
    """A data directory's tiled server did not start; the message says why.

    A ``ValueError`` too, so that the command line prints it as one line.
    """


def log_size(log: Path) -> int:
    """Bytes in ``log`` now (0 if missing): where this start's own lines begin.

    Parameters
    ----------
    log : pathlib.Path
        The server's log file.
    """
    try:
        return log.stat().st_size
    except OSError:
        return 0


def last_error(log: Path, since: int = 0) -> str | None:
    """The last exception line written to ``log`` after byte ``since``, or None.

    Parameters
    ----------
    log : pathlib.Path
        The server's log file.
    since : int, optional
        Where this start's lines begin (:func:`log_size` before it).

    Examples
    --------
    >>> import tempfile
    >>> log = Path(tempfile.mkdtemp()) / "server.log"
    >>> _ = log.write_text("Traceback ...\\nsqlite3.DatabaseError: file is not a database\\n")
    >>> last_error(log)
    'sqlite3.DatabaseError: file is not a database'
    >>> last_error(log, since=log.stat().st_size) is None
    True
    """
    try:
        with log.open("rb") as file:
            file.seek(max(since, log_size(log) - _TAIL_BYTES))
            text = file.read().decode(errors="replace")
    except OSError:
        return None
    found = [line.strip() for line in text.splitlines() if _EXCEPTION_LINE.match(line.strip())]
    return found[-1] if found else None


def server_start_error(
    what: str, root: Path, log: Path, since: int, *, exited: bool, waited_s: float, fix: str
) -> ServerStartError:
    """The error for a server of ``root`` that did not start.

    Parameters
    ----------
    what : str
        Which server, e.g. ``"embedded tiled server"``.
    root : pathlib.Path
        Its data directory.
    log : pathlib.Path
        Its log (``server.log``), read from byte ``since`` (this start's lines).
    since : int
        The log's size before the server was started (:func:`log_size`).
    exited : bool
        Whether the server's process ended (else it did not answer in time).
    waited_s : float
        Seconds waited for it.
    fix : str
        What to do when the log names no cause this module knows.
    """
    cause = last_error(log, since)
    how = f"stopped after {waited_s:.0f} s" if exited else f"did not answer within {waited_s:.0f} s"
    head = f"The {what} for {root} {how}"
    if cause and any(mark in cause for mark in _DAMAGED):
        return ServerStartError(
            f"{head}: its catalogue {root / 'catalog.db'} is damaged ({cause}). Restore "
            "catalog.db from a backup, or use another data directory (--data-dir or "
            "$SSB_DATA_DIR); the detector files and the journal are not affected."
        )
    because = f": {cause}" if cause else ""
    return ServerStartError(f"{head}{because} (see {log}). {fix}")


def thread_start_error(root: Path, *, alive: bool) -> ServerStartError:
    """The error for an embedded server in this process (its error was logged already).

    Parameters
    ----------
    root : pathlib.Path
        Its data directory.
    alive : bool
        Whether its thread still runs (it did not answer in time) or ended.
    """
    how = "did not answer in time" if alive else "stopped as it started"
    return ServerStartError(
        f"The embedded tiled server for {root} {how} (its error is logged above). {START_FIX}"
    )
