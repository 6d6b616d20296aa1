"""Stored results carry their axes: dims on every array, x/y/z (um) and energy (eV) coords."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
from tiled.client import from_uri

from ssb_beamline.storage import TiledResultSink, read_results
from ssb_beamline.storage.coords import pixel_size_of, result_axes
from ssb_beamline.storage.results import complete_versions, drop_incomplete_versions


def test_axes_of_maps_stacks_and_volumes():
    arrays = {
        "soc": np.zeros((4, 5)),
        "normalized": np.zeros((3, 4, 5)),
        "fractions": np.zeros((2, 4, 5)),
        "density": np.zeros((6, 5, 5)),  # a volume whose y differs from the maps'
        "edge_energy_3d": np.zeros((3, 6, 5, 5)),
        "energies": np.array([8330.0, 8340.0, 8350.0]),
    }
    dims, coords = result_axes(arrays, pixel_size_um=0.5)
    assert dims["soc"] == ("y", "x") and dims["normalized"] == ("energy", "y", "x")
    assert dims["fractions"] == ("reference", "y", "x")
    assert dims["density"] == ("z", "y_5", "x") and dims["edge_energy_3d"][0] == "energy"
    assert coords["y_5"][0].size == 5 and coords["z"][1]["units"] == "um"
    assert coords["energy"][0].tolist() == [8330.0, 8340.0, 8350.0]
    assert result_axes({"soc": np.zeros((2, 2))})[1]["x"][1]["units"] == "px"  # no pixel size
    assert pixel_size_of({"pixel_size_um": 0.1}) == 0.1
    assert pixel_size_of({"optics": {"pixel_size_um": 0.2}}) == 0.2


def test_a_stored_version_reads_as_an_xarray_dataset_and_links_its_run(tiled_server):
    client = from_uri(tiled_server.url, api_key=tiled_server.api_key)
    tag = uuid.uuid4().hex[:8]
    raw = client.create_container(f"raw-{tag}")
    results = client.create_container(f"results-{tag}")
    uid = str(uuid.uuid4())
    raw.create_container(uid, metadata={"start": {"uid": uid, "pixel_size_um": 0.25,
                                                  "energies_ev": [8330.0, 8350.0]}})  # fmt: skip
    sink = TiledResultSink(results, runs=raw)
    volume = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    path = sink.publish(
        uid, {"soc": np.ones((4, 4), np.float32), "edge_energy": volume},
        units={"soc": "fraction", "edge_energy": "eV"}, metadata={"source": "live"},
        tables={"particles": pd.DataFrame({"radius": [1.0, 2.0]})},
        chunks={"edge_energy": (2, 1, 4, 4)},
    )  # fmt: skip
    assert path == f"results/{uid}/v1"
    assert raw[uid].metadata["results"] == {"latest": path, "versions": ["v1"]}
    ds = results[uid]["v1"].read(variables=["soc", "edge_energy", "x", "y", "z", "energy"])
    assert ds["edge_energy"].dims == ("energy", "z", "y", "x")
    assert ds["x"].values.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert ds["energy"].values.tolist() == [8330.0, 8350.0]
    np.testing.assert_array_equal(ds["edge_energy"].values, volume)
    stored = read_results(results, uid)
    assert set(stored.arrays) == {"soc", "edge_energy"} and set(stored.tables) == {"particles"}
    assert set(stored.coords) == {"x", "y", "z", "energy"}
    assert complete_versions(results, uid) == ["v1"]
    # a version cut short (its process died during the upload) is recognised and dropped
    results[uid]["v1"]["soc"].delete(external_only=False)
    assert complete_versions(results, uid) == []
    assert drop_incomplete_versions(results, uid, lambda md: md["source"] == "live") == ["v1"]
    assert "v1" not in results[uid]


def test_results_of_a_run_not_yet_in_tiled_keep_their_axes_also_through_the_journal(
    tiled_server, tmp_path
):
    """The raw run may reach tiled after its results (its writer journaled it): the
    start document given to ``publish`` sets the axes, also when the results
    themselves wait in the journal."""
    client = from_uri(tiled_server.url, api_key=tiled_server.api_key)
    tag = uuid.uuid4().hex[:8]
    raw = client.create_container(f"raw-{tag}")
    results = client.create_container(f"results-{tag}")
    uid = str(uuid.uuid4())  # no such run in raw
    start = {"uid": uid, "optics": {"pixel_size_um": 0.13}, "energies_ev": [8330.0, 8350.0]}
    sink = TiledResultSink(results, runs=raw, journal_dir=tmp_path)
    arrays = {"soc": np.ones((3, 3), np.float32), "energies": np.array([8330.0, 8350.0])}
    path = sink.publish(uid, arrays, units={"soc": "fraction"}, metadata={}, start=start)
    np.testing.assert_allclose(results[uid]["v1"]["x"].read(), [0.0, 0.13, 0.26])
    assert path.endswith("/v1")
    assert results[uid]["v1"].metadata["axes"]["pixel_size_um"] == 0.13
    # the same results journaled (as when tiled refused them), then uploaded
    entry = sink.journal.write(uid, arrays, units={"soc": "fraction"},
                               metadata={"axes": {"pixel_size_um": 0.13}})  # fmt: skip
    assert entry.exists()
    (stored,) = sink.upload_journaled(sink.journal)
    again = results[uid][stored.rsplit("/", 1)[1]]["x"].read()
    np.testing.assert_allclose(again, [0.0, 0.13, 0.26])
    # without a start document and without the run, the axes are in pixels (and say so)
    bare = sink.publish(uid, arrays, units={"soc": "fraction"}, metadata={})
    x = results[uid][bare.rsplit("/", 1)[1]]["x"]
    assert x.read().tolist() == [0.0, 1.0, 2.0] and x.metadata["attrs"]["units"] == "px"
