"""Deleting results whose data files were never written succeeds (CI stop 24's failure).

The server was killed after a results version's table node was created but before its
Parquet partition was written; after the restart ``sync`` deleted that attempt and
tiled answered 500 (``FileNotFoundError`` on the partition), so sync reported a failure.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from tiled.client import from_uri

from ssb_beamline.storage.result_layout import delete_version


def _files_of(node) -> list[Path]:
    return [
        Path(urlparse(asset.data_uri).path)
        for source in node.data_sources()
        for asset in source.assets
    ]


def test_a_version_whose_files_are_gone_deletes_on_either_catalog(catalog_server):
    client = from_uri(catalog_server.url, api_key=catalog_server.api_key)
    run = client.create_container(f"results-{uuid.uuid4().hex[:8]}").create_container("run")
    version = run.create_container("v1")
    version.write_table(pd.DataFrame({"radius": [1.0, 2.0]}), key="particles")
    version.write_array(np.ones((4, 4), np.float32), key="soc")
    missing = _files_of(version["particles"])
    assert missing and all(path.exists() for path in missing)
    for path in missing:  # as if the server died before writing the partition
        path.unlink()
    run["v1"].delete(recursive=True, external_only=False)  # no 500
    assert "v1" not in run


class _RunNode:
    """A results run node whose delete fails, as a server without the fix answers."""

    def __init__(self, gone_after_failure: bool) -> None:
        self.gone = gone_after_failure
        self.item = {"id": "run"}

    def __getitem__(self, key):
        return self

    def __contains__(self, key) -> bool:
        return not self.gone

    def delete(self, **kwargs) -> None:
        raise RuntimeError("500 Internal Server Error")


def test_a_delete_the_server_carried_out_counts_as_done_and_one_it_did_not_fails(caplog):
    delete_version(_RunNode(gone_after_failure=True), "v1")
    assert "is deleted, but the server failed" in caplog.text
    with pytest.raises(RuntimeError, match="500"):
        delete_version(_RunNode(gone_after_failure=False), "v1")
