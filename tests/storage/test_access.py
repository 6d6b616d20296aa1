"""Access control over HTTP: read-write key, read-only keys, no key."""

from __future__ import annotations

import secrets

import bluesky.plans as bp
import httpx
import numpy as np
import pytest
from bluesky.callbacks.tiled_writer import TiledWriter
from bluesky.run_engine import RunEngine
from ophyd.sim import SynGauss, motor
from tiled.client import from_uri
from tiled.client.utils import ClientError

from ssb_beamline.storage import EmbeddedTiledServer
from ssb_beamline.storage.access import add_readonly_key
from ssb_beamline.storage.replay import run_documents
from ssb_beamline.storage.server_config import DataLayout


@pytest.fixture(scope="module")
def secured(tmp_path_factory, catalog):
    root = tmp_path_factory.mktemp("secured")
    readonly = secrets.token_hex(16)
    add_readonly_key(DataLayout(root).create().root, readonly)
    with EmbeddedTiledServer(root, catalog=catalog) as server:
        client = server.client()
        runs = client.create_container("raw")
        engine = RunEngine({}, call_returns_result=False)
        engine.subscribe(TiledWriter(runs))
        det = SynGauss("det", motor, "motor", center=0, Imax=1, sigma=1)
        (uid,) = engine(bp.count([det], 3))
        client.create_container("results").write_array(np.arange(4), key="a")
        yield server, readonly, uid, root


def test_without_a_key_nothing_is_served(secured):
    server, _, _, _ = secured
    for key in (None, "not-a-key"):
        headers = {"Authorization": f"Apikey {key}"} if key else {}
        response = httpx.get(f"{server.url}/search/", headers=headers, trust_env=False)
        assert response.status_code == 401


def test_a_readonly_key_lists_reads_and_exports(secured):
    server, readonly, uid, _ = secured
    client = from_uri(server.url, api_key=readonly)
    assert {"raw", "results"} <= set(client)
    np.testing.assert_array_equal(client["results"]["a"].read(), np.arange(4))
    run = client["raw"][uid]
    assert len(run["primary"]["det"].read()) == 3
    names = [name for name, _ in run_documents(run)]
    assert names[0] == "start" and names[-1] == "stop" and names.count("event") == 3


def test_a_readonly_key_cannot_write(secured):
    server, readonly, _, _ = secured
    client = from_uri(server.url, api_key=readonly)
    with pytest.raises(ClientError, match="403: This API key is read-only"):
        client.create_container("intruder")
    with pytest.raises(ClientError, match="403"):
        client["results"].write_array(np.zeros(2), key="b")
    response = httpx.delete(
        f"{server.url}/metadata/results/a",
        headers={"Authorization": f"Apikey {readonly}"},
        trust_env=False,
    )
    assert response.status_code == 403
    assert "a" in server.client()["results"]


def test_the_readwrite_key_writes(secured):
    server, _, _, _ = secured
    server.client()["results"].write_array(np.ones(2), key="c")


def test_keys_never_reach_logs_or_stored_metadata(secured):
    server, readonly, _, root = secured
    secret_files = {root / ".api_key", root / ".readonly_api_keys"}
    for path in root.rglob("*"):
        if path.is_file() and path not in secret_files:
            data = path.read_bytes()
            for key in (server.api_key, readonly):
                assert key.encode() not in data, f"a key leaked into {path}"
