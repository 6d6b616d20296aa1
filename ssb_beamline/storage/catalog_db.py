"""The tiled catalog database: SQLite in the data directory, or PostgreSQL for a facility.

``ssb-beamline serve --catalog postgresql://USER@HOST:PORT/DB`` keeps the catalog
(metadata, structure, data sources) in PostgreSQL; arrays and tables stay in the
data directory (``files/``, ``storage.duckdb``), detector HDF5 files in its
``detector/`` folder. Before a server starts, :func:`prepare_catalog` checks the
database with one short connection and says what to fix in one line:

- nobody answers at HOST:PORT, the password is wrong, the database does not exist;
- the database holds another application's tables, or a tiled catalog of an older
  schema (upgrade it with ``tiled catalog upgrade-database``);
- the catalog already describes stored arrays but the data directory's array
  storage is missing (a wrong ``--data-dir``, an unmounted disk).

An empty database is initialised here, in this process, under a PostgreSQL
advisory lock (two servers starting at once initialise it once): tiled's own
``init_if_not_exists`` runs ``python -m tiled catalog init URI`` in a subprocess,
which would put the password on a command line that every local user can read.

Put the password in ``PGPASSWORD`` or ``~/.pgpass`` rather than in the URI; a
password in the URI is accepted, never logged (:func:`redact_uri`) and never
written to a configuration file.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "CATALOG_URI_ENV",
    "CatalogDatabaseError",
    "catalog_password",
    "check_sqlite_array_storage",
    "is_postgresql",
    "prepare_catalog",
    "redact_uri",
    "tiled_catalog_uri",
    "without_password",
]

logger = logging.getLogger(__name__)

#: Environment variable naming the catalog database (default: SQLite in the data dir).
CATALOG_URI_ENV = "SSB_CATALOG_URI"
_PG_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")
#: Key of the advisory lock held while a catalog is checked and initialised.
_INIT_LOCK = 0x55B_CA7A


class CatalogDatabaseError(ValueError):
    """The catalog database cannot be used; the message says what to fix (one line)."""


def is_postgresql(uri: str | None) -> bool:
    """Whether ``uri`` names a PostgreSQL database.

    Parameters
    ----------
    uri : str or None
        A catalog URI; ``postgresql://``, ``postgres://`` and
        ``postgresql+asyncpg://`` count. None, empty or any other scheme (a SQLite
        path) gives False.
    """
    return bool(uri) and urlsplit(uri).scheme.lower() in _PG_SCHEMES


def redact_uri(uri: str) -> str:
    """``uri`` with its password, if any, replaced by ``[redacted]``.

    Parameters
    ----------
    uri : str
        Any URL (``postgresql://USER:PASSWORD@HOST:PORT/DB``); one without a
        password is returned unchanged.

    Examples
    --------
    >>> redact_uri("postgresql://tiled:s3cret@db.example:5432/catalog")
    'postgresql://tiled:[redacted]@db.example:5432/catalog'
    >>> redact_uri("postgresql://tiled@db.example/catalog")
    'postgresql://tiled@db.example/catalog'
    """
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    netloc = f"{parts.username}:[redacted]@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def without_password(uri: str) -> str:
    """``uri`` with its password removed (for configuration files).

    The server then takes the password from ``PGPASSWORD`` or ``~/.pgpass``.

    Parameters
    ----------
    uri : str
        A database URL; one without a password is returned unchanged.

    Examples
    --------
    >>> without_password("postgresql+asyncpg://tiled:s3cret@db:5432/catalog")
    'postgresql+asyncpg://tiled@db:5432/catalog'
    """
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}@{host}"))


def check_sqlite_array_storage(catalog: Path, files_dir: Path) -> None:
    """Refuse a data directory whose catalog exists but whose array storage is gone.

    A catalog without its files would list runs whose arrays cannot be read.

    Parameters
    ----------
    catalog : Path
        The SQLite catalog file (``<data_dir>/catalog.db``); a missing one passes
        (a first start creates both).
    files_dir : Path
        The folder of arrays that catalog refers to.

    Raises
    ------
    CatalogDatabaseError
        If ``catalog`` exists and ``files_dir`` does not.
    """
    if catalog.exists() and not files_dir.is_dir():
        raise CatalogDatabaseError(
            f"The catalog {catalog} exists but its array storage {files_dir} does not: "
            "restore that folder (or mount its disk), or choose another --data-dir."
        )


def catalog_password(uri: str | None) -> str | None:
    """The password written in ``uri`` (to register with the log redaction), if any.

    Parameters
    ----------
    uri : str or None
        A catalog URI; percent-escapes in its password are decoded. None, an
        empty string or a URI without a password gives None.
    """
    if not uri:
        return None
    password = urlsplit(uri).password
    return unquote(password) if password else None


def tiled_catalog_uri(uri: str) -> str:
    """The SQLAlchemy URI tiled needs (``postgresql+asyncpg://``) for a PostgreSQL URI.

    Parameters
    ----------
    uri : str
        A PostgreSQL URI (check it with :func:`is_postgresql` first: the scheme of
        any URI, even a SQLite one, is replaced).
    """
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(scheme="postgresql+asyncpg"))


def _where(uri: str) -> tuple[str, str, str]:
    parts = urlsplit(uri)
    host = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
    return host, parts.path.lstrip("/"), parts.username or "(current user)"


def prepare_catalog(uri: str, *, files_dir: Path, timeout_s: float = 10.0) -> str:
    """Check (and on first use initialise) the PostgreSQL catalog at ``uri``.

    Parameters
    ----------
    uri : str
        ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DB``.
    files_dir : path
        The data directory's array storage, which an existing catalog refers to.
    timeout_s : float
        Bound on connecting.

    Returns
    -------
    str
        ``"created"`` (schema made now) or ``"existing"``.

    Raises
    ------
    CatalogDatabaseError
        If the server does not answer, refuses the credentials, the database is
        missing or of another layout, or the array storage is missing.
    """
    _, database, _ = _where(uri)
    if not database:
        raise CatalogDatabaseError(
            f"The catalog URI {redact_uri(uri)} names no database: give one like "
            "postgresql://USER@HOST:5432/tiled_catalog."
        )
    return asyncio.run(_prepare(uri, Path(files_dir), timeout_s))


async def _connect(uri: str, timeout_s: float):
    import asyncpg

    host, database, user = _where(uri)
    dsn = urlunsplit(urlsplit(uri)._replace(scheme="postgresql"))
    try:
        return await asyncpg.connect(dsn, timeout=timeout_s)
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        raise CatalogDatabaseError(
            f"PostgreSQL at {host} refused user {user!r} ({type(exc).__name__}): fix the "
            "password ($PGPASSWORD or ~/.pgpass, not the URI) or the user in --catalog."
        ) from None
    except asyncpg.InvalidCatalogNameError:
        raise CatalogDatabaseError(
            f"PostgreSQL at {host} has no database {database!r}: create it "
            f"(createdb -h {host.split(':')[0]} -p {host.split(':')[1]} {database}) "
            "or fix the database name in --catalog."
        ) from None
    except (OSError, TimeoutError) as exc:
        raise CatalogDatabaseError(
            f"No PostgreSQL server answered at {host} ({type(exc).__name__}): start it, "
            "or fix the host and port in --catalog."
        ) from None
    except asyncpg.PostgresError as exc:
        raise CatalogDatabaseError(
            f"PostgreSQL at {host} refused the connection to {database!r} "
            f"({type(exc).__name__}: {exc}): check the user's rights on that database."
        ) from None


async def _prepare(uri: str, files_dir: Path, timeout_s: float) -> str:
    conn = await _connect(uri, timeout_s)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _INIT_LOCK)
        tables = {
            row[0]
            for row in await conn.fetch(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            )
        }
        if not tables:
            await _initialise(uri)
            logger.info("created the tiled catalog schema in %s", redact_uri(uri))
            return "created"
        await _check_layout(conn, uri, tables)
        await _check_array_storage(conn, uri, files_dir)
        return "existing"
    finally:
        await conn.close()  # also releases the advisory lock


async def _check_layout(conn, uri: str, tables: set[str]) -> None:
    from tiled.catalog.core import ALL_REVISIONS, REQUIRED_REVISION

    host, database, _ = _where(uri)
    if "alembic_version" not in tables or "nodes" not in tables:
        shown = ", ".join(sorted(tables)[:4]) + (", ..." if len(tables) > 4 else "")
        raise CatalogDatabaseError(
            f"The database {database!r} at {host} holds {len(tables)} tables of another "
            f"layout ({shown}), not a tiled catalog: give the server an empty database "
            f"of its own (createdb {database}_tiled) in --catalog."
        )
    revision = await conn.fetchval("SELECT version_num FROM alembic_version")
    if revision == REQUIRED_REVISION:
        return
    if revision in ALL_REVISIONS:
        raise CatalogDatabaseError(
            f"The tiled catalog {database!r} at {host} has the older schema {revision}: "
            "back it up, then run `tiled catalog upgrade-database URI` once."
        )
    raise CatalogDatabaseError(
        f"The database {database!r} at {host} is stamped with revision {revision!r}, "
        "which is not a tiled catalog this version knows: give the server an empty "
        "database of its own in --catalog."
    )


async def _check_array_storage(conn, uri: str, files_dir: Path) -> None:
    if files_dir.is_dir():
        return
    # assets that data refer to (the table storage's row is registered at every start)
    stored = await conn.fetchval(
        "SELECT count(DISTINCT asset_id) FROM data_source_asset_association"
    )
    if stored:
        host, database, _ = _where(uri)
        raise CatalogDatabaseError(
            f"The catalog {database!r} at {host} refers to {stored} stored files but the "
            f"array storage {files_dir} does not exist: mount or restore it, or pass the "
            "--data-dir that holds it."
        )


async def _initialise(uri: str) -> None:
    """tiled's schema, then the alembic stamp (last: a stamped catalog is complete)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from tiled.catalog.core import REQUIRED_REVISION, initialize_database

    engine = create_async_engine(tiled_catalog_uri(uri))
    try:
        await initialize_database(engine)
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
                )
            )
            await connection.execute(
                text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                {"v": REQUIRED_REVISION},
            )
    except Exception as exc:
        host, database, user = _where(uri)
        raise CatalogDatabaseError(
            f"Could not create the tiled catalog in {database!r} at {host} as {user!r} "
            f"({type(exc).__name__}): let that user create tables and the btree_gin "
            "extension there (make it the database's owner)."
        ) from None
    finally:
        await engine.dispose()
