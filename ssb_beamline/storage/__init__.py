"""tiled storage: the embedded server, results next to raw runs, reading runs back.

The names below are imported on first use (PEP 562), so that a command that needs
one small module (``ssb-beamline runs``: :mod:`.run_table`, :mod:`.service`) does
not import the server, httpx and numpy first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .connect import (
        RAW_CONTAINER,
        RESULTS_CONTAINER,
        TiledStore,
        TiledUnavailableError,
        open_store,
    )
    from .results import (
        ResultsNotPublishedError,
        StoredResult,
        TiledResultSink,
        read_results,
        result_versions,
    )
    from .server import EmbeddedTiledServer

_WHERE = {
    "RAW_CONTAINER": ".connect",
    "RESULTS_CONTAINER": ".connect",
    "TiledStore": ".connect",
    "TiledUnavailableError": ".connect",
    "open_store": ".connect",
    "ResultsNotPublishedError": ".results",
    "StoredResult": ".results",
    "TiledResultSink": ".results",
    "read_results": ".results",
    "result_versions": ".results",
    "EmbeddedTiledServer": ".server",
}

__all__ = [
    "RAW_CONTAINER",
    "RESULTS_CONTAINER",
    "EmbeddedTiledServer",
    "ResultsNotPublishedError",
    "StoredResult",
    "TiledResultSink",
    "TiledStore",
    "TiledUnavailableError",
    "open_store",
    "read_results",
    "result_versions",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
