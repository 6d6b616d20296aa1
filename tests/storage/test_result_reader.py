"""``show``/``report``'s reader over tiled's HTTP API returns what the tiled client reads.

One run with one results version (maps of several dtypes, a stack read in slices,
the x/y coordinates, a table with text) on the session's real tiled server.
"""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from ssb_beamline.storage import open_store, read_results
from ssb_beamline.storage import result_reader as reader
from ssb_beamline.storage.result_reader import read_results_http, resolve_uid_http
from ssb_beamline.storage.results import TiledResultSink
from ssb_beamline.storage.run_checks import ReplayError
from ssb_beamline.storage.synthetic import count_run, write_run
from ssb_beamline.storage.tiled_http import TiledHttp, TiledHttpError


@pytest.fixture(scope="module")
def stored(tiled_server, tmp_path_factory):
    """``(store, uid)`` of a run with one results version."""
    store = open_store(tiled_server.url, api_key=tiled_server.api_key,
                       data_dir=tmp_path_factory.mktemp("reader-client"))  # fmt: skip
    uid = str(uuid.uuid4())
    write_run(store.raw, count_run(uid))
    rng = np.random.default_rng(0)
    arrays = {
        "soc": rng.random((6, 5), dtype=np.float32),
        "particle_labels": rng.integers(0, 4, (6, 5)).astype(np.int32),
        "mask": rng.random((6, 5)) > 0.5,
        "normalized": rng.random((4, 6, 5)),
    }
    table = pd.DataFrame({"label": [1, 2, 3], "size_class": ["small", "large", "small"],
                          "soc_mean": [0.1, 0.5, np.nan]})  # fmt: skip
    TiledResultSink(store.results).publish(
        uid, arrays, units={"soc": ""}, metadata={"analysis": "test"}, tables={"particles": table}
    )
    yield store, uid
    store.close()


def test_reads_what_the_client_reads(stored, tiled_server, monkeypatch):
    store, uid = stored
    monkeypatch.setattr(reader, "MAX_RESPONSE_BYTES", 6 * 5 * 8)  # the stack: 4 requests
    api = TiledHttp(tiled_server.url, tiled_server.api_key)
    fast, client = read_results_http(api, uid), read_results(store.results, uid)
    assert (fast.run_uid, fast.version, fast.metadata) == (uid, "v1", client.metadata)
    assert list(fast.arrays) == list(client.arrays) and "soc" in fast.arrays
    for key, value in client.arrays.items():
        assert fast.arrays[key].dtype == value.dtype, key
        np.testing.assert_array_equal(fast.arrays[key], value)
    assert fast.arrays["soc"].flags.writeable
    assert sorted(fast.coords) == sorted(client.coords) and {"x", "y"} <= set(fast.coords)
    for key, value in client.coords.items():
        np.testing.assert_array_equal(fast.coords[key], value)
    assert list(fast.tables) == ["particles"]
    pd.testing.assert_frame_equal(fast.tables["particles"], client.tables["particles"])
    with pytest.raises(KeyError, match="not 'v7'"):
        read_results_http(api, uid, "v7")


def test_uids_resolve_as_with_the_client(stored, tiled_server):
    _, uid = stored
    api = TiledHttp(tiled_server.url, tiled_server.api_key)
    assert resolve_uid_http(api, uid) == uid
    assert resolve_uid_http(api, uid[:13]) == uid
    with pytest.raises(ReplayError, match="No stored run has a uid starting with 'zz0000'"):
        resolve_uid_http(api, "zz0000")
    with pytest.raises(ReplayError, match="is not a run uid"):
        resolve_uid_http(api, "../results")
    with pytest.raises(KeyError, match="No analysis results are stored"):
        read_results_http(api, "zz0000-no-such-run")


def test_a_wrong_key_is_refused_with_its_status(stored, tiled_server):
    _, uid = stored
    with pytest.raises(TiledHttpError) as caught:
        resolve_uid_http(TiledHttp(tiled_server.url, "not-the-key"), uid)
    assert caught.value.status in (401, 403)


def test_show_with_a_wrong_key_says_to_check_the_key(stored, tiled_server, tmp_path, monkeypatch,
                                                     capsys):  # fmt: skip
    from ssb_beamline.cli import main
    from ssb_beamline.storage.server_config import TILED_API_KEY_ENV

    _, uid = stored
    monkeypatch.setenv(TILED_API_KEY_ENV, "not-the-key")
    assert main(["show", uid[:8], "--tiled", tiled_server.url, "--out", str(tmp_path)]) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert f"Reading run '{uid[:8]}' failed: HTTP 40" in out and "Check the API key" in out
    assert "Traceback" not in out and not any(tmp_path.iterdir())
