"""Keep API keys out of every log line the tiled server writes.

uvicorn's access log prints each request line, query string included, so a client
that passes its key as ``?api_key=...`` (a browser, ``curl``) would have the key
written to the terminal of ``ssb-beamline serve`` and to the embedded server's
``server.log``; tiled's own loggers may quote URLs too. :class:`RedactSecrets` is a
`logging.Filter` that rewrites a record before any handler formats it: the value
of every ``api_key=`` query parameter, every ``Authorization: Apikey ...`` value
and every key registered with :func:`register_secret` become ``[redacted]``.

It is installed on the handlers (not the loggers) so that it also sees records
that propagate from child loggers: a logger's own filters do not apply to them.
Neither uvicorn nor tiled offers such a filter, hence this module.

Examples
--------
>>> import logging
>>> record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0,
...     '%s - "%s %s"', ("127.0.0.1", "GET", "/api/v1/?api_key=s3cret&x=1"), None)
>>> RedactSecrets().filter(record)
True
>>> record.getMessage()
'127.0.0.1 - "GET /api/v1/?api_key=[redacted]&x=1"'
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

__all__ = ["REDACTED", "RedactSecrets", "redact", "redact_server_logs", "register_secret"]

#: What a secret is replaced with.
REDACTED = "[redacted]"
#: Loggers whose handlers the server's records go through.
SERVER_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "tiled")

_PATTERNS = (
    re.compile(r"(?i)(api_key(?:=|%3D))[^&\s\"'#]+"),
    re.compile(r"(?i)(apikey\s+)[^\s\"',]+"),
    re.compile(r"(?i)(tiled_api_key=)[^;\s\"',]+"),  # tiled's cookie
    # the password of a database URI (postgresql://user:PASSWORD@host/db)
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s/]+(?=@)"),
)
_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(*values: str) -> None:
    """Redact these exact strings (API keys) wherever they appear in a log record.

    Parameters
    ----------
    *values : str
        The secrets; empty ones and those shorter than 4 characters are ignored
        (they would redact ordinary words).
    """
    with _lock:
        _secrets.update(v for v in values if v and len(v) >= 4)


def redact(text: str) -> str:
    """``text`` with every API key in it replaced by :data:`REDACTED`.

    Parameters
    ----------
    text : str
        A log message or traceback.

    Returns
    -------
    str
        ``text`` with API keys (``Apikey ...``, ``api_key=...``) and every registered
        secret replaced.
    """
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_value(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


class RedactSecrets(logging.Filter):
    """Rewrite a record's message, arguments and traceback text without its keys.

    Parameters
    ----------
    name : str, default ""
        :class:`logging.Filter`'s name (records of that logger and its children only);
        "" filters every record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_value(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_value(v) for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def redact_server_logs(secrets: Iterable[str] = (), loggers: Iterable[str] = SERVER_LOGGERS):
    """Register ``secrets`` and filter every handler of ``loggers`` through them.

    Call it after logging is configured (uvicorn configures it when its ``Config``
    is built); calling it again adds no second filter to a handler.

    Parameters
    ----------
    secrets : iterable of str, default ()
        Exact strings to redact as well (the server's API key, the database password).
    loggers : iterable of str, default SERVER_LOGGERS
        Names of the loggers whose handlers get the filter (the root logger,
        uvicorn's and tiled's).
    """
    register_secret(*secrets)
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactSecrets) for f in handler.filters):
                handler.addFilter(RedactSecrets())
