"""How many PostgreSQL connections the tiled server keeps open to its catalog.

tiled 0.2.20 opens its catalog engine with SQLAlchemy's queue pool of 5 kept
connections and 10 "overflow" ones. An overflow connection is closed as soon as
its request returns it. At the end of a scan about 40 requests arrive within a
second (the results upload, its tables, the raw writer's stop-time requests),
more than 5 at once, so on a PostgreSQL catalog every scan's end opened and closed
4 to 6 connections (measured with ``log_connections`` on a throwaway cluster),
each of them inside the window a scientist waits for: a TCP connection, a forked
PostgreSQL backend, SCRAM authentication, asyncpg's two type-introspection queries
(20 of them took 100 ms of the ~220 ms PostgreSQL spent on that window's ~900
statements), tiled's ``SET plan_cache_mode`` and SQLAlchemy's ``set_config``, then
every statement parsed again because asyncpg's prepared-statement cache belongs to
the connection (100 parse messages per scan end instead of 9 to 14). A SQLite
catalog has none of this: its connections are file handles.

:func:`pool_arguments` gives tiled's catalog a pool that keeps
:data:`POOL_SIZE` connections, enough for a scan's end, so that after the first
scan none is opened there (``bench_skeleton.py --catalog postgresql``: last frame
to results stored 2.34 s against 2.37 s before, within the machine's noise; the
rest of PostgreSQL's gap is elsewhere). They are opened lazily (only as many as requests ever
needed at once) and idle ones cost a PostgreSQL backend each (a few MB): a
facility server with a low ``max_connections`` can lower the number with
``$SSB_CATALOG_POOL_SIZE``. Not hand-written: tiled's ``from_uri`` takes the pool
size as an argument, and the server configuration passes it.
"""

from __future__ import annotations

import os

__all__ = ["MAX_OVERFLOW", "POOL_SIZE", "POOL_SIZE_ENV", "pool_arguments"]

#: Connections the server keeps open to a PostgreSQL catalog (tiled's default: 5).
POOL_SIZE = 20
#: Further connections opened for a burst and closed after it (tiled's default).
MAX_OVERFLOW = 10
#: Environment variable overriding :data:`POOL_SIZE`.
POOL_SIZE_ENV = "SSB_CATALOG_POOL_SIZE"


def pool_arguments(catalog_uri: str | None) -> dict[str, int]:
    """The pool arguments of tiled's ``from_uri`` for a catalog (empty for SQLite).

    Parameters
    ----------
    catalog_uri : str or None
        The PostgreSQL catalog URI; None (the SQLite catalog of the data
        directory) keeps tiled's defaults.

    Returns
    -------
    dict
        ``catalog_pool_size`` (:data:`POOL_SIZE` or ``$SSB_CATALOG_POOL_SIZE``)
        and ``catalog_max_overflow`` for PostgreSQL; ``{}`` for SQLite.

    Raises
    ------
    ValueError
        If ``$SSB_CATALOG_POOL_SIZE`` is not a whole number of at least 1.

    Examples
    --------
    >>> pool_arguments(None)
    {}
    >>> pool_arguments("postgresql://tiled@db.example/catalog")["catalog_pool_size"] >= 1
    True
    """
    if not catalog_uri:
        return {}
    size = POOL_SIZE
    if env := os.environ.get(POOL_SIZE_ENV, "").strip():
        if not env.isdigit() or int(env) < 1:
            raise ValueError(
                f"${POOL_SIZE_ENV}={env!r} is not a number of connections: set it to a "
                f"whole number of at least 1 (default {POOL_SIZE}), or unset it."
            )
        size = int(env)
    return {"catalog_pool_size": size, "catalog_max_overflow": MAX_OVERFLOW}
