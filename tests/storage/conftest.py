"""Fixtures shared by the storage tests."""

from __future__ import annotations

import secrets

import pytest

from ssb_beamline.storage import EmbeddedTiledServer, open_store
from ssb_beamline.storage.access import add_readonly_key
from ssb_beamline.storage.server_config import DataLayout


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory, catalog):
    """The project's server (SQLite or PostgreSQL) with a read-only key; (server, key, store)."""
    root = tmp_path_factory.mktemp("keyed")
    readonly = secrets.token_hex(16)
    add_readonly_key(DataLayout(root).create().root, readonly)
    with EmbeddedTiledServer(root, catalog=catalog) as server:
        store = open_store(server.url, api_key=server.api_key, data_dir=root / "client")
        yield server, readonly, store
        store.close()
