"""tiled storage: the embedded server, results next to raw runs, reading runs back."""

from .connect import RAW_CONTAINER, RESULTS_CONTAINER, TiledStore, TiledUnavailableError, open_store
from .results import (
    ResultsNotPublishedError,
    StoredResult,
    TiledResultSink,
    read_results,
    result_versions,
)
from .server import EmbeddedTiledServer

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
