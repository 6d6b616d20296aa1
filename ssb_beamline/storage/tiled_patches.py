"""The changes the project's server makes to tiled 0.2.20's own code, installed together.

Each lives in its own module, which says what it changes, why, and what a tiled
upgrade must re-check; :func:`install` applies them all (each once per process)
before :func:`~.server.build_app` builds the application.
"""

from __future__ import annotations

from .array_body import install as check_array_bodies
from .array_codecs import install as encode_arrays_faster
from .dependency_cache import install as cache_dependency_trees
from .direct_lookup import install as look_up_paths_at_once
from .idempotent_delete import install as tolerate_deleted_files
from .lone_body import install as pass_bodies_uncopied
from .node_keys import install as refuse_dot_keys
from .piecewise_writes import install as write_files_in_pieces

__all__ = ["install"]


def install() -> None:
    """Apply every patch of tiled the server needs (idempotent).

    Examples
    --------
    >>> install()
    >>> install()  # a second call changes nothing
    """
    cache_dependency_trees()  # FastAPI rebuilt them on every request (~half its CPU)
    tolerate_deleted_files()  # a never-written file must not fail a delete
    look_up_paths_at_once()  # one catalog query per request path, not one per segment
    encode_arrays_faster()  # new zarr arrays: zstd level 1, no fill-value check; leftovers replaced
    pass_bodies_uncopied()  # Starlette's Request.body() copied a one-piece body again
    check_array_bodies()  # an array body of the wrong size: 400, not 500 (and no retries)
    write_files_in_pieces()  # one 31 MB write() took huge pages a VM must fault in again
    refuse_dot_keys()  # a node '..' had its array stored at the storage root
