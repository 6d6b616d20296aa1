"""Stock clients on the project's catalogue: the plain tiled client + bluesky-tiled-plugins.

After two ``ssb-beamline demo`` runs into a server, ``raw`` answers the stock
bluesky lookups without any of the project's helpers, scan ids run on from one
demo to the next, a run links its results, and the results read back as an
xarray Dataset with x/y (um) and energy (eV) coordinates.
"""

from __future__ import annotations

import logging
import threading

import pytest
from bluesky_tiled_plugins.queries import PartialUID, ScanID
from tiled.client import from_uri

from ssb_beamline.cli import main
from ssb_beamline.storage.catalog import ScanIdCounter, ensure_catalog_spec

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    """A server of this module alone: other tests' runs would share its scan ids."""
    from ssb_beamline.storage import EmbeddedTiledServer

    server = EmbeddedTiledServer(tmp_path_factory.mktemp("stock-catalog"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def two_demos(own_server, tmp_path_factory):
    """Two tiny demos written through ``--tiled`` into a fresh server; their uids."""
    tiled_server = own_server
    out = tmp_path_factory.mktemp("demo-figures")
    client = from_uri(tiled_server.url, api_key=tiled_server.api_key)
    uids = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SSB_TILED_API_KEY", tiled_server.api_key)
        for _ in range(2):
            args = ["demo", "--tiled", tiled_server.url,
                    "--data-dir", str(tiled_server.layout.root),
                    "--size", "64", "--preset", "quick", "--out", str(out)]  # fmt: skip
            assert main(args) == 0
            uids.append(client["raw"].values().last().metadata["start"]["uid"])
    return client, uids


@pytest.mark.slow
def test_the_stock_client_finds_demo_runs_by_index_scan_id_and_partial_uid(two_demos):
    client, (first, second) = two_demos
    raw = client["raw"]
    assert type(raw).__name__ == "CatalogOfBlueskyRuns"
    assert [(s.name, s.version) for s in raw.specs] == [("CatalogOfBlueskyRuns", "3.0")]
    n = raw[first].metadata["start"]["scan_id"]
    assert raw[second].metadata["start"]["scan_id"] == n + 1  # two demos: n and n + 1
    assert raw[-1].metadata["start"]["uid"] == second
    assert raw[n].metadata["start"]["uid"] == first
    assert raw[n + 1].metadata["start"]["uid"] == second
    assert list(raw.search(ScanID(n))) == [first]
    assert list(raw.search(PartialUID(second[:8]))) == [second]
    assert raw[second[:8]].metadata["start"]["uid"] == second


@pytest.mark.slow
def test_a_run_links_its_results_which_read_as_xarray_with_axes(two_demos):
    client, (_, uid) = two_demos
    link = client["raw"][uid].metadata["results"]
    assert link["latest"] == f"results/{uid}/{link['versions'][-1]}"
    node = client[link["latest"]]
    ds = node.read(variables=["soc", "normalized", "x", "y", "energy"])
    assert ds["soc"].dims == ("y", "x") and ds["normalized"].dims == ("energy", "y", "x")
    start = client["raw"][uid].metadata["start"]
    pixel = start["pixel_size_um"]
    assert ds["x"].attrs["units"] == "um" and ds["energy"].attrs["units"] == "eV"
    assert ds["x"].values[1] - ds["x"].values[0] == pytest.approx(pixel)
    assert ds["energy"].values.tolist() == pytest.approx(start["energies_ev"])


def test_an_older_raw_container_is_migrated_with_a_message(tiled_server, caplog):
    client = from_uri(tiled_server.url, api_key=tiled_server.api_key)
    key = f"old-raw-{threading.get_ident()}"
    client.create_container(key, metadata={"ssb_beamline": "raw"})  # as before: no spec
    with caplog.at_level(logging.WARNING, logger="ssb_beamline.storage.catalog"):
        node = ensure_catalog_spec(client, key)
    assert "Migrated" in caplog.text and "CatalogOfBlueskyRuns" in caplog.text
    assert type(node).__name__ == "CatalogOfBlueskyRuns"
    caplog.clear()
    ensure_catalog_spec(client, key)  # the next start: nothing to do, nothing said
    assert "Migrated" not in caplog.text


def test_concurrent_sessions_on_one_data_directory_never_share_a_scan_id(tmp_path):
    counters = [ScanIdCounter(tmp_path), ScanIdCounter(tmp_path)]
    got: list[int] = []

    def take(counter: ScanIdCounter) -> None:
        md: dict = {}
        for _ in range(40):
            md["scan_id"] = counter(md)  # as the RunEngine does
            got.append(md["scan_id"])

    threads = [threading.Thread(target=take, args=(c,)) for c in counters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 81))
    assert ScanIdCounter(tmp_path)({}) == 81  # persisted for the next session
