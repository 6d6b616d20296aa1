"""The embedded tiled server: real HTTP, persistence, results next to runs, bad URIs."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from ssb_beamline.storage import (
    EmbeddedTiledServer,
    TiledResultSink,
    TiledUnavailableError,
    open_store,
    read_results,
    result_versions,
)
from ssb_beamline.storage.catalog_db import CATALOG_URI_ENV
from ssb_beamline.storage.connect import check_tiled_uri
from ssb_beamline.storage.server_config import DataLayout, write_server_config


def test_server_speaks_http_and_requires_its_key(catalog_server):
    tiled_server = catalog_server
    search = f"{tiled_server.url}/search/"
    assert httpx.get(search, timeout=5, trust_env=False).status_code == 401
    ok = httpx.get(
        search,
        headers={"Authorization": f"Apikey {tiled_server.api_key}"},
        timeout=5,
        trust_env=False,
    )
    assert ok.status_code == 200


def test_catalog_and_results_survive_a_restart(tmp_path, catalog, monkeypatch):
    if catalog:  # the embedded server takes its catalog from $SSB_CATALOG_URI
        monkeypatch.setenv(CATALOG_URI_ENV, catalog)
    with open_store(data_dir=tmp_path) as store:
        sink = TiledResultSink(store.results)
        stored = sink.publish(
            "run-1", {"soc": np.full((4, 5), 0.25, np.float32)}, units={"soc": "1"},
            metadata={"source": "live"},
        )  # fmt: skip
        assert stored == "results/run-1/v1"
    with open_store(data_dir=tmp_path) as store:  # a new server on the same directory
        result = read_results(store.results, "run-1")
        assert result.metadata["source"] == "live"
        assert result.metadata["units"] == {"soc": "1"}
        np.testing.assert_array_equal(result.arrays["soc"], np.full((4, 5), 0.25, np.float32))


def test_reanalysis_is_a_new_version_never_an_overwrite(catalog_server):
    client = catalog_server.client()
    results = client.create_container("results-versions")
    sink = TiledResultSink(results)
    sink.publish("abc", {"m": np.zeros(3)}, units={}, metadata={"source": "live"})
    sink.publish("abc", {"m": np.ones(3)}, units={}, metadata={"source": "replay"})
    assert result_versions(results, "abc") == ["v1", "v2"]
    np.testing.assert_array_equal(read_results(results, "abc", "v1").arrays["m"], np.zeros(3))
    np.testing.assert_array_equal(read_results(results, "abc").arrays["m"], np.ones(3))
    with pytest.raises(KeyError, match="not 'v7'"):
        read_results(results, "abc", "v7")
    with pytest.raises(KeyError, match="No analysis results are stored"):
        read_results(results, "nope")


def test_a_uri_that_does_not_answer_gets_a_clear_error():
    with pytest.raises(
        TiledUnavailableError, match=r"No tiled server answered at http://127\.0\.0\.1:9"
    ):
        open_store("http://127.0.0.1:9/api/v1")


def test_a_uri_that_is_not_http_gets_a_clear_error():
    with pytest.raises(TiledUnavailableError, match="is not a tiled server URI"):
        check_tiled_uri("localhost:8000")


def test_a_wrong_key_is_refused(tiled_server):
    with pytest.raises(TiledUnavailableError, match="refused the connection"):
        open_store(tiled_server.url, api_key="not-the-key")


def test_server_config_yaml_for_a_stock_tiled_server(tmp_path):
    import yaml

    path = write_server_config(DataLayout(tmp_path), tmp_path / "tiled.yml")
    config = yaml.safe_load(path.read_text())
    assert "authentication" not in config  # the key comes from the environment
    assert config["media_types"]["BlueskyRun"]["application/json-seq"].endswith("json_seq_exporter")
    args = config["trees"][0]["args"]
    assert args["readable_storage"] == [str(tmp_path / "detector")]
    assert args["init_if_not_exists"] is True


def test_embedded_server_reports_a_clear_error_for_an_unusable_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises((RuntimeError, OSError)):
        EmbeddedTiledServer(blocker / "data")


def test_tables_are_stored_with_the_maps(catalog_server):
    import pandas as pd

    client = catalog_server.client()
    results = client.create_container("results-tables")
    table = pd.DataFrame({"label": [1, 2], "radius_um": [1.5, 3.0]})
    TiledResultSink(results).publish(
        "run", {"soc": np.zeros((2, 2))}, units={}, metadata={}, tables={"particles": table}
    )
    stored = read_results(results, "run")
    pd.testing.assert_frame_equal(stored.tables["particles"], table)
    assert set(stored.arrays) == {"soc"}
