"""A few read-only requests of tiled's HTTP API with the standard library.

The command-line readers (``runs``, ``show``, ``report``) ask a running tiled server
for metadata, array bytes and table partitions. The tiled Python client would do
the same, but importing it (with httpx, dask, and the ``bluesky_tiled_plugins``
entry points that its containers load) took 5-10 s of a 1-5 s budget on a loaded
2-core machine; these requests take milliseconds. Writing stays with the client.

Examples
--------
>>> api = TiledHttp("http://127.0.0.1:8000/api/v1/", api_key=None)
>>> api.url("array/full", "results/abc/v1/soc")
'http://127.0.0.1:8000/api/v1/array/full/results/abc/v1/soc'
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

__all__ = ["PAGE_LIMIT", "TiledHttp", "TiledHttpError"]

PAGE_LIMIT = 300  # tiled's largest page


class TiledHttpError(ConnectionError):
    """The server refused or failed a request (``status``: HTTP code, None: no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TiledHttp:
    """GET requests of one tiled server, never via a proxy.

    Parameters
    ----------
    url : str
        The server's API root, ``http://HOST:PORT/api/v1``.
    api_key : str or None
        Its API key (sent as ``Authorization: Apikey ...``).
    timeout_s : float
        Seconds to wait for each answer.
    """

    def __init__(self, url: str, api_key: str | None, timeout_s: float = 30.0) -> None:
        self.headers = {"Accept": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Apikey {api_key}"
        self.base = url.rstrip("/")
        self.timeout_s = timeout_s
        # loopback or a named server: never through a proxy from the environment
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def url(self, route: str, path: str = "", **params: Any) -> str:
        """The address of ``route/path`` with the query ``params``."""
        quoted = urllib.parse.quote(path.strip("/"))
        query = urllib.parse.urlencode(params, doseq=True)
        return f"{self.base}/{route}/{quoted}".rstrip("/") + (f"?{query}" if query else "")

    def get(self, route: str, path: str = "", *, accept: str | None = None, **params) -> bytes:
        """The body of ``GET route/path?params``."""
        address = self.url(route, path, **params)
        headers = {**self.headers, **({"Accept": accept} if accept else {})}
        request = urllib.request.Request(address, headers=headers)
        try:
            with self.opener.open(request, timeout=self.timeout_s) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            raise TiledHttpError(f"HTTP {exc.code} from {address.split('?')[0]}", exc.code) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise TiledHttpError(f"no answer from {self.base} ({exc})") from exc

    def get_json(self, route: str, path: str = "", **params: Any) -> dict:
        """``GET`` as JSON."""
        return json.loads(self.get(route, path, **params))

    def search(self, path: str, **params: Any) -> dict:
        """One page of ``search/path``."""
        return self.get_json("search", path, **params)

    def children(self, path: str, **params: Any) -> Iterator[dict]:
        """Every child item of the container at ``path``, in the server's order."""
        offset = 0
        while True:
            page = {"page[offset]": offset, "page[limit]": PAGE_LIMIT}
            body = self.search(path, omit_links=True, **params, **page)
            items = body.get("data") or []
            yield from items
            offset += len(items)
            if not items or offset >= int((body.get("meta") or {}).get("count") or 0):
                return
