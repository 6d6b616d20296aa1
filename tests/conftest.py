"""Shared fixtures: a real RunEngine, small simulated TXMs, an embedded tiled server."""

from __future__ import annotations

import os

# The tests kill and restart tiled servers on purpose. tiled's client retries a dead
# server for up to 45 s by default (10 attempts); a beamline wants that, the tests
# only need to see the failure. Read by tiled at import, so set before any import.
os.environ.setdefault("TILED_RETRY_ATTEMPTS", "2")
os.environ.setdefault("TILED_RETRY_TIMEOUT", "5")
# Commands start no background tiled server that would outlive a test (tests that
# check it turn it on, and stop it).
os.environ.setdefault("SSB_BACKGROUND_SERVER", "0")

import pytest
import xdist_recovery
from bluesky.run_engine import RunEngine
from ophyd_async.plan_stubs import ensure_connected

from ssb_beamline.sim_devices.factory import make_sim_txm
from ssb_beamline.sim_devices.phantom import PhantomConfig

#: A small phantom that keeps plan tests fast (96 x 96 px, 0.13 um/px).
SMALL_PHANTOM = PhantomConfig(
    shape=(96, 96), n_particles=6, radius_range_um=(0.8, 2.0), min_gap_um=0.3
)


class DocumentCollector:
    """Collect (name, doc) pairs emitted by a RunEngine."""

    def __init__(self) -> None:
        self.docs: list[tuple[str, dict]] = []

    def __call__(self, name: str, doc: dict) -> None:
        self.docs.append((name, doc))

    def of(self, name: str) -> list[dict]:
        return [d for n, d in self.docs if n == name]

    def events(self, stream: str) -> list[dict]:
        uids = {d["uid"] for d in self.of("descriptor") if d["name"] == stream}
        return [d for d in self.of("event") if d["descriptor"] in uids]


@pytest.fixture
def RE():  # noqa: N802 (the name every bluesky user knows)
    engine = RunEngine({}, call_returns_result=False)
    yield engine
    if engine.state != "idle":
        engine.halt()


@pytest.fixture
def docs(RE) -> DocumentCollector:
    collector = DocumentCollector()
    RE.subscribe(collector)
    return collector


@pytest.fixture
def make_txm(RE, tmp_path):
    """Factory of connected simulated TXMs writing into ``tmp_path``."""

    def make(phantom: PhantomConfig = SMALL_PHANTOM, **options):
        txm = make_sim_txm(phantom, directory=tmp_path / "detector", **options)
        RE(ensure_connected(*txm.devices))
        return txm

    return make


@pytest.fixture(scope="session")
def tiled_server(tmp_path_factory):
    """One embedded tiled server (real HTTP on 127.0.0.1) for the test session."""
    from ssb_beamline.storage import EmbeddedTiledServer

    server = EmbeddedTiledServer(tmp_path_factory.mktemp("tiled-data"))
    yield server
    server.close()


def _postgresql_required() -> bool:
    """In CI (``CI=true``) the PostgreSQL half of the storage tests must run, not skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def postgres_cluster():
    """One throwaway PostgreSQL cluster (127.0.0.1, random password) per test process.

    Skipped when PostgreSQL is not installed, except in CI where that fails.
    """
    from ssb_beamline.storage.pg_cluster import PostgresNotInstalledError, ThrowawayCluster

    try:
        cluster = ThrowawayCluster()
    except (PostgresNotInstalledError, RuntimeError, OSError) as exc:
        if _postgresql_required():
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"no PostgreSQL for the catalog tests: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def catalog(request) -> str | None:
    """The catalog of a module's server: None (SQLite in the data directory) or the
    URI of a fresh PostgreSQL database on :func:`postgres_cluster`."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_cluster").new_database()


@pytest.fixture(scope="module")
def catalog_server(tmp_path_factory, catalog):
    """An embedded tiled server (child process, 127.0.0.1) on :func:`catalog`."""
    from ssb_beamline.storage import EmbeddedTiledServer

    server = EmbeddedTiledServer(tmp_path_factory.mktemp("tiled-catalog"), catalog=catalog)
    yield server
    server.close()


#: The test files that take longest in ``make test``, longest first (each file's wall time
#: on its worker in a full run on 2 busy cores, 2026-12-07). ``make test`` runs each file
#: whole on one xdist worker (``--dist loadfile``) in collection order
#: (``--no-loadscope-reorder``). xdist's own order (files with most tests first) started
#: tests/profiles/test_faults.py (9 tests, the longest file) after 400 s and the
#: tutorials, the full-disk and the PostgreSQL-outage files in the last minutes; started
#: first, the long files overlap and the many short ones fill the workers' gaps at the
#: end. Files not listed keep their usual order after these; tests/test_suite_order.py
#: checks that every path here exists.
LONGEST_FIRST: tuple[str, ...] = (
    "tests/profiles/test_faults.py",
    "tests/profiles/test_concurrent_demos.py",
    "tests/test_docs_tutorials.py",
    "tests/cli/test_cli.py",
    "tests/profiles/test_replay.py",
    "tests/storage/test_disk_full.py",
    "tests/profiles/test_worker.py",
    "tests/epics/test_cli_epics.py",
    "tests/storage/test_live_writer.py",
    "tests/epics/test_tomo_over_ca.py",
    "tests/storage/test_postgresql_outage.py",
    "tests/storage/test_array_batch.py",
    "tests/profiles/test_network3d_end_to_end.py",
    "tests/qserver/test_queue_end_to_end.py",
    "tests/storage/test_server.py",
    "tests/storage/test_postgresql.py",
    "tests/storage/test_stock_catalog.py",
    "tests/epics/test_faults_over_ca.py",
    "tests/profiles/test_stxm_end_to_end.py",
    "tests/storage/test_idempotent_delete.py",
    "tests/storage/test_array_codecs.py",
    "tests/storage/test_private_files.py",
    "tests/test_bad_message_inputs.py",
    "tests/profiles/test_tomo_end_to_end.py",
    "tests/epics/test_xanes_over_ca.py",
    "tests/analysis/test_kernel_cache.py",
    "tests/test_docs.py",
)


def pytest_configure(config) -> None:
    """A worker that crashes is reported, and the run goes on (see ``xdist_recovery``)."""
    xdist_recovery.install()


def pytest_collection_modifyitems(session, config, items) -> None:
    """Put the files of :data:`LONGEST_FIRST` first, keeping each file's own test order."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
