"""The local path a ``file://`` URI names: the one parser for detector-file URIs.

ophyd-async writes the detector files' locations as ``file://localhost/<path>``
(percent-encoded); live analysis and replay both turn them back into paths. It
imports nothing of the package, so every layer may use it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["file_uri_path"]


def file_uri_path(uri: str) -> Path | None:
    """The path of a ``file://`` URI (or a bare path); None for any other scheme.

    Examples
    --------
    >>> file_uri_path("file://localhost/data/run%201/det.h5")
    PosixPath('/data/run 1/det.h5')
    >>> file_uri_path("http://host/det.h5") is None
    True
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("file", ""):
        return None
    return Path(unquote(parts.path))
