"""Read-only API keys for the project's tiled server.

tiled's single-user mode has one key with full access. This ASGI middleware in
front of the tiled app adds read-only keys: a request carrying one may only read
(GET, HEAD); its key is swapped for the server's own before tiled sees it, and any
other method is refused with 403. Requests with no key, or an unknown one, reach
tiled unchanged and are refused there (401). Keys are compared in constant time
and never logged.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

__all__ = ["READONLY_KEYS_ENV", "ReadOnlyKeys", "add_readonly_key", "load_readonly_keys"]

#: Environment variable with comma-separated read-only keys.
READONLY_KEYS_ENV = "SSB_TILED_READONLY_API_KEYS"
_READ_METHODS = {"GET", "HEAD"}


def load_readonly_keys(root: Path) -> list[str]:
    """Read-only keys: ``$SSB_TILED_READONLY_API_KEYS`` and ``<data dir>/.readonly_api_keys``.

    Parameters
    ----------
    root : pathlib.Path
        The data directory of the tiled server; a missing key file is fine.

    Returns
    -------
    list of str
        The keys of the environment variable first, then those of the file.
    """
    keys = [k.strip() for k in os.environ.get(READONLY_KEYS_ENV, "").split(",") if k.strip()]
    path = root / ".readonly_api_keys"
    if path.exists():
        keys += [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return keys


def add_readonly_key(root: Path, key: str) -> None:
    """Keep a read-only key in the data directory (file mode 0600).

    Parameters
    ----------
    root : pathlib.Path
        The data directory of the tiled server (``--data-dir``).
    key : str
        The new read-only key, appended to ``<root>/.readonly_api_keys`` (created
        0600); the server reads it at its next start.
    """
    path = root / ".readonly_api_keys"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(key + "\n")


def _matches(candidate: str, keys: Iterable[str]) -> bool:
    found = False
    for key in keys:  # no early exit: constant time over the key list
        found |= hmac.compare_digest(candidate.encode(), key.encode())
    return found


class ReadOnlyKeys:
    """ASGI middleware granting read-only access to the keys in ``readonly_keys``.

    Parameters
    ----------
    app : ASGI application
        The tiled server application to wrap.
    server_key : str
        The server's single API key (full access); a request with a read-only key is
        passed on with this one (keyword only).
    readonly_keys : iterable of str
        Keys that may only read (GET, HEAD, OPTIONS); a write with one gets HTTP 403.
        Empty strings are ignored; no keys: every request passes untouched.
    """

    def __init__(self, app, *, server_key: str, readonly_keys: Iterable[str]) -> None:
        self.app = app
        self.server_key = server_key
        self.readonly_keys = [k for k in readonly_keys if k]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.readonly_keys:
            return await self.app(scope, receive, send)
        headers = list(scope["headers"])
        key, where = None, None
        for i, (name, value) in enumerate(headers):
            if name == b"authorization" and value.lower().startswith(b"apikey "):
                key, where = value[7:].decode().strip(), i
        query = parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True)
        if key is None:
            key = next((v for k, v in query if k == "api_key"), None)
        if key is None or not _matches(key, self.readonly_keys):
            return await self.app(scope, receive, send)
        if scope["method"] not in _READ_METHODS:
            await _refuse(send)
            return None
        real = b"Apikey " + self.server_key.encode()
        if where is not None:
            headers[where] = (b"authorization", real)
        else:
            headers.append((b"authorization", real))
        query = [(k, v) for k, v in query if k != "api_key"]
        scope = {**scope, "headers": headers, "query_string": urlencode(query).encode()}
        return await self.app(scope, receive, send)


_REFUSAL = json.dumps(
    {
        "detail": "This API key is read-only: it can list, read and export runs, not "
        "write. Use the server's read-write key to write."
    }
).encode()


async def _refuse(send) -> None:
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": _REFUSAL})
