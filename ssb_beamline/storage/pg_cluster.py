"""A throwaway PostgreSQL cluster on a loopback port, for tests, benchmarks and CI.

:class:`ThrowawayCluster` runs Debian's ``initdb`` into a temporary directory and
``pg_ctl start`` on a free port of 127.0.0.1, with its socket in that directory
(never the system's), password authentication only (a random password made at
run time, never written anywhere but the cluster's own files), and removes
everything on :meth:`~ThrowawayCluster.stop`. ``initdb`` refuses to run as root,
so as root the server runs as the ``postgres`` user (``runuser``).

It is for throwaway catalogs only (``fsync`` is off, so an operating-system
crash may lose data); a beamline runs its catalog on a PostgreSQL its facility
administers. ``synchronous_commit`` keeps its default (on), as in production: a
commit PostgreSQL has acknowledged survives the server being killed
(:meth:`~ThrowawayCluster.stop_now`), so an outage test sees what a facility's
server would keep. No library starts a
PostgreSQL cluster from Python without extra packages (testing.postgresql and
pytest-postgresql are not installed), hence these 150 lines.

Examples
--------
>>> with ThrowawayCluster() as cluster:  # doctest: +SKIP
...     uri = cluster.new_database()
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PostgresNotInstalledError", "ThrowawayCluster", "find_pg_bin"]

logger = logging.getLogger(__name__)

_RUN_AS = "postgres"
_TIMEOUT_S = 120


class PostgresNotInstalledError(RuntimeError):
    """No PostgreSQL server binaries were found."""


def find_pg_bin() -> Path:
    """The newest ``/usr/lib/postgresql/N/bin`` with ``initdb`` (or ``$SSB_PG_BIN``)."""
    if env := os.environ.get("SSB_PG_BIN"):
        return Path(env)
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    if initdb := shutil.which("initdb"):
        return Path(initdb).parent
    raise PostgresNotInstalledError(
        "PostgreSQL is not installed (no initdb): install Debian's postgresql package "
        "(apt-get install postgresql) or set $SSB_PG_BIN to its bin directory."
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayCluster:
    """A private PostgreSQL cluster on 127.0.0.1 (see the module docstring).

    Parameters
    ----------
    bin_dir : pathlib.Path, optional
        Folder of PostgreSQL's ``initdb``, ``pg_ctl`` and ``psql``; None: ``$SSB_PG_BIN``,
        else the newest ``/usr/lib/postgresql/N/bin``, else ``initdb`` on ``$PATH``.

    Raises
    ------
    RuntimeError
        If PostgreSQL does not start (the message names its log); the directory is
        removed again.
    """

    user = "ssb"

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin = bin_dir or find_pg_bin()
        self.password = secrets.token_urlsafe(24)
        self.root = Path(tempfile.mkdtemp(prefix="ssb-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = 0
        self._as_other = os.geteuid() == 0
        self._databases = 0
        try:
            self._initdb()
            self.start()
        except BaseException:
            self.stop()
            raise

    def _run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_other:
            command = ["runuser", "-u", _RUN_AS, "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=_TIMEOUT_S, check=True, **kwargs
        )

    def _initdb(self) -> None:
        pwfile = self.root / "pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.password + "\n")
        if self._as_other:
            shutil.chown(self.root, _RUN_AS)
            shutil.chown(pwfile, _RUN_AS)
        os.chmod(self.root, 0o700)
        try:
            self._run(
                "initdb", "-D", str(self.data), "-U", self.user, f"--pwfile={pwfile}",
                "--auth=scram-sha-256", "-E", "UTF8", "--no-sync",
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self) -> None:
        """Start (or restart) the server; a first start picks a free loopback port."""
        options = (
            f"-p {self.port or _free_port()} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        port = int(options.split()[1])
        try:
            self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data),
                      "-l", str(self.log), "-o", options)  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(
                f"PostgreSQL did not start: {exc.stderr.strip()} ({self.log})"
            ) from None
        self.port = port
        logger.info("throwaway PostgreSQL on 127.0.0.1:%d (%s)", self.port, self.root)

    def stop_now(self) -> None:
        """Stop the server at once (``pg_ctl stop -m immediate``), as in an outage."""
        self._run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", str(self.data))

    def uri(self, database: str = "postgres", *, password: bool = True) -> str:
        """``postgresql://ssb:PASSWORD@127.0.0.1:PORT/database``."""
        auth = f"{self.user}:{self.password}" if password else self.user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "catalog") -> str:
        """Create an empty database; return its URI (with the password)."""
        self._databases += 1
        name = f"{prefix}_{os.getpid()}_{self._databases}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.uri(name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one SQL statement with ``psql``; return its output."""
        env = {**os.environ, "PGPASSWORD": self.password}
        result = subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
             "-d", database, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
            capture_output=True, text=True, timeout=_TIMEOUT_S, env=env, check=True,
        )  # fmt: skip
        return result.stdout

    def stop(self) -> None:
        """Stop the server and remove the cluster's directory."""
        if self.data.exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):  # not running
                self._run("pg_ctl", "stop", "-m", "fast", "-w", "-D", str(self.data))
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ThrowawayCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
