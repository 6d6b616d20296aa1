"""``show``/``report``'s reader of the data directory's files returns what the HTTP reader returns.

One XANES result (the project's XANES pipeline and particle statistics on a 64 x 64
phantom, published as the live analysis publishes it, plus a volume stored in
slice chunks with a chunk of fill values and a last chunk past the end) on the
session's tiled server, read both ways; and the layouts this reader leaves to
the server.
"""

from __future__ import annotations

import sqlite3
import uuid

import numpy as np
import pandas as pd
import pytest

from ssb_beamline.storage import open_store
from ssb_beamline.storage.result_files import ResultFilesError, open_result_files
from ssb_beamline.storage.result_files_data import open_zarr, read_zarr
from ssb_beamline.storage.result_reader import read_results_http
from ssb_beamline.storage.results import TiledResultSink
from ssb_beamline.storage.run_checks import ReplayError
from ssb_beamline.storage.synthetic import count_run, write_run
from ssb_beamline.storage.tiled_http import TiledHttp

ENERGIES = np.array([8300.0, 8320.0, 8331.0, 8334.0, 8337.0, 8340.0, 8343.0, 8346.0, 8349.0,
                     8360.0, 8390.0, 8440.0])  # fmt: skip


def _xanes_result(uid: str):
    """``(arrays, units, metadata, tables)`` as the live XANES analysis publishes them."""
    from ssb_beamline.analysis import analyse_xanes_stack
    from ssb_beamline.analysis._maps import normalized_stack
    from ssb_beamline.callbacks.particles_live import ParticleStatistics
    from ssb_beamline.callbacks.xanes_results import MapContext, result_arrays, result_metadata
    from ssb_beamline.reference_data import ni_k_edge_references
    from ssb_beamline.sim_devices.phantom import PhantomConfig, make_phantom
    from ssb_beamline.sim_devices.xray_physics import absorbance

    phantom = make_phantom(PhantomConfig(shape=(64, 64), n_particles=3,
                                         radius_range_um=(0.8, 2.0), min_gap_um=0.3))  # fmt: skip
    rng = np.random.default_rng(1)
    stack = np.stack([absorbance(phantom, e) for e in ENERGIES]).astype(np.float32)
    stack += rng.normal(0, 2e-3, stack.shape).astype(np.float32)
    references = ni_k_edge_references()
    maps = analyse_xanes_stack(stack, ENERGIES, references)
    arrays, units = result_arrays(maps, np.ones(stack.shape[1:], bool))
    arrays["energies"], units["energies"] = ENERGIES, "eV"
    arrays["normalized"] = normalized_stack(stack, ENERGIES, maps)
    context = MapContext(uid, {"pixel_size_um": 0.1}, ENERGIES, stack, references)
    extra = ParticleStatistics()(dict(arrays), context)
    metadata = {"source": "live", "frames_analysed": len(ENERGIES), **result_metadata(maps)}
    volume = rng.random((3, 5, 8, 8)).astype(np.float32)
    volume[:, 1] = 0  # chunk (0, 1, 0, 0) all fill values (test_array_codecs: with no file)
    arrays = {**arrays, **extra.arrays, "volume": volume}
    return arrays, {**units, **extra.units}, {**metadata, **extra.metadata}, extra.tables


@pytest.fixture(scope="module")
def stored(tiled_server, tmp_path_factory):
    """The run uid of a stored XANES result (a run in ``raw`` and its ``v1``)."""
    store = open_store(tiled_server.url, api_key=tiled_server.api_key,
                       data_dir=tmp_path_factory.mktemp("files-client"))  # fmt: skip
    uid = str(uuid.uuid4())
    write_run(store.raw, count_run(uid))
    arrays, units, metadata, tables = _xanes_result(uid)
    assert {"particles", "impedance_bins"} <= set(tables)
    TiledResultSink(store.results, runs=store.raw).publish(
        uid, arrays, units=units, metadata=metadata, tables=tables, chunks={"volume": (2, 1, 8, 8)}
    )
    yield uid
    store.close()


def test_files_give_exactly_what_http_gives_for_a_xanes_result(stored, tiled_server):
    uid = stored
    files = open_result_files(tiled_server.layout.root)
    try:
        assert files.resolve_uid(uid[:8]) == uid == files.resolve_uid(uid)
        direct = files.read_results(uid)
    finally:
        files.close()
    http = read_results_http(TiledHttp(tiled_server.url, tiled_server.api_key), uid)
    assert (direct.run_uid, direct.version, direct.metadata) == (uid, "v1", http.metadata)
    assert direct.metadata["units"]["edge_energy"] == "eV" and direct.metadata["source"] == "live"
    assert list(direct.arrays) == list(http.arrays) and {"soc", "mask", "volume"} < set(http.arrays)
    for key in http.arrays:
        ours, theirs = direct.arrays[key], http.arrays[key]
        assert (ours.dtype.str, ours.shape) == (theirs.dtype.str, theirs.shape), key
        assert ours.tobytes() == theirs.tobytes(), key  # NaN, -0.0 and all
        assert ours.flags.writeable and ours.flags.c_contiguous, key
    assert list(direct.coords) == list(http.coords) and {"x", "y", "energy"} <= set(http.coords)
    for key in http.coords:
        assert direct.coords[key].dtype == http.coords[key].dtype, key
        assert direct.coords[key].tobytes() == http.coords[key].tobytes(), key
    assert list(direct.tables) == list(http.tables)  # the server's order: as written
    assert set(http.tables) == {"particles", "impedance_bins"}
    for key in http.tables:
        ours, theirs = direct.tables[key], http.tables[key]
        assert type(ours.index) is type(theirs.index) and ours.index.dtype == theirs.index.dtype
        pd.testing.assert_frame_equal(ours, theirs, check_exact=True, check_index_type=True)


def test_uids_and_versions_are_refused_as_over_http(stored, tiled_server):
    files = open_result_files(tiled_server.layout.root)
    try:
        with pytest.raises(ReplayError, match="No stored run has a uid starting with 'zz0000'"):
            files.resolve_uid("zz0000")
        with pytest.raises(ReplayError, match="is not a run uid"):
            files.resolve_uid("../results")
        with pytest.raises(KeyError, match="not 'v7'"):
            files.read_results(stored, "v7")
        with pytest.raises(KeyError, match="No analysis results are stored"):
            files.read_results("zz0000-no-such-run")
    finally:
        files.close()


def test_an_unknown_schema_or_layout_is_left_to_the_server(tiled_server, tmp_path):
    zarr = pytest.importorskip("zarr")
    catalog = tiled_server.layout.catalog
    with sqlite3.connect(catalog) as source, sqlite3.connect(tmp_path / "catalog.db") as copy:
        source.backup(copy)
        copy.execute("UPDATE alembic_version SET version_num = 'future0000'")
    assert open_result_files(tmp_path) is None
    assert open_result_files(tmp_path / "no-data-dir") is None
    structure = {"data_type": {"endianness": "little", "kind": "f", "itemsize": 8},
                 "shape": [5, 4], "chunks": [[2, 2, 1], [4]]}  # fmt: skip
    values = np.arange(20.0).reshape(5, 4)
    plain = zarr.create_array(tmp_path / "plain", shape=(6, 4), chunks=(2, 4), dtype="f8")
    plain[:5] = values
    np.testing.assert_array_equal(read_zarr(open_zarr(tmp_path / "plain", structure)), values)
    sharded = zarr.create_array(tmp_path / "sharded", shape=(6, 4), chunks=(2, 4),
                                shards=(6, 4), dtype="f8")  # fmt: skip
    sharded[:5] = values
    with pytest.raises(ResultFilesError, match="codecs"):
        open_zarr(tmp_path / "sharded", structure)
    with pytest.raises(ResultFilesError, match="in the catalog"):  # dtype disagrees
        open_zarr(tmp_path / "plain", {**structure, "data_type": {**structure["data_type"],
                                                                  "itemsize": 4}})  # fmt: skip
    with pytest.raises(ResultFilesError, match="No such file"):
        open_zarr(tmp_path / "missing", structure)


def test_show_reads_over_http_when_the_files_are_not_as_expected(stored, tiled_server, tmp_path,
                                                                 monkeypatch):  # fmt: skip
    from ssb_beamline.cli import main
    from ssb_beamline.cli import stored as commands
    from ssb_beamline.storage import result_files

    def unexpected(directory, structure):
        raise ResultFilesError(f"{directory}: codecs ['bytes', 'gzip']")

    asked = []
    monkeypatch.setattr(result_files, "open_zarr", unexpected)
    monkeypatch.setattr(commands, "_figures_over_http", lambda args, draw: asked.append(args) or [])
    argv = ["show", stored[:8], "--data-dir", str(tiled_server.layout.root), "--out", str(tmp_path)]
    assert main(argv) == 0
    assert [args.uid for args in asked] == [stored[:8]] and not any(tmp_path.iterdir())


def test_the_latest_skips_a_version_still_being_written_as_over_http(tiled_server, tmp_path):
    store = open_store(tiled_server.url, api_key=tiled_server.api_key, data_dir=tmp_path)
    sink, uid = TiledResultSink(store.results), str(uuid.uuid4())
    arrays = {"soc": np.full((3, 4), 0.5, np.float32), "energies": ENERGIES[:2]}
    units = {"soc": "fraction", "energies": "eV"}
    start = {"uid": uid, "energies_ev": ENERGIES[:2].tolist()}
    sink.prepare(uid, {k: (v.shape, v.dtype) for k, v in arrays.items()}, units=units, start=start)
    sink._skeletons[uid].result(timeout=60)  # created, as while the scan runs
    files = open_result_files(tiled_server.layout.root)
    try:
        with pytest.raises(KeyError, match="No analysis results are stored"):
            files.read_results(uid)
        assert files.read_results(uid, "v1").version == "v1"  # asked for by name: as is
        sink.publish(uid, arrays, units=units, metadata={"source": "live"}, start=start)
        done = files.read_results(uid)
        assert done.version == "v1" and "(being written)" not in done.metadata["contents"]
        np.testing.assert_array_equal(done.arrays["soc"], arrays["soc"])
    finally:
        files.close()
        store.close()
