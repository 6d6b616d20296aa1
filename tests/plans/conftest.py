"""Fixtures shared by the tomography plan tests (tomo, xanes_tomo, holotomo)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlparse

import h5py
import numpy as np
import pytest


@pytest.fixture
def stream_data(docs) -> Callable[[str, str], np.ndarray]:
    """``stream_data(stream, key)``: data of ``key`` (frames or time stamps) of one stream.

    Read from the HDF5 files the collected documents point to.
    """

    def read(stream: str, key: str) -> np.ndarray:
        descriptors = {d["uid"] for d in docs.of("descriptor") if d["name"] == stream}
        resources = {d["uid"]: d for d in docs.of("stream_resource")}
        out = []
        for datum in docs.of("stream_datum"):
            resource = resources[datum["stream_resource"]]
            if datum["descriptor"] in descriptors and resource["data_key"] == key:
                with h5py.File(urlparse(resource["uri"]).path, "r", swmr=True) as f:
                    dataset = f[resource["parameters"]["dataset"]]
                    out.append(dataset[datum["indices"]["start"] : datum["indices"]["stop"]])
        return np.concatenate(out).astype(np.float64)

    return read


def _assert_follows_commanded(recovered, commanded, travel) -> None:
    """Check fly-scan frame angles against the commanded grid.

    The camera runs on its own clock, so under CPU load the frames may start a little
    late: check direction, spacing (median) and travel rather than each angle.
    """
    commanded = np.asarray(commanded)
    step = commanded[1] - commanded[0]
    steps = np.diff(recovered)
    assert np.all(steps * np.sign(step) >= -1e-6)
    assert np.median(steps) == pytest.approx(step, rel=0.15)
    low, high = sorted(travel)
    assert np.all((recovered >= low - 1e-6) & (recovered <= high + 1e-6))


@pytest.fixture
def assert_follows_commanded() -> Callable[..., None]:
    """``assert_follows_commanded(recovered, commanded, travel)`` for fly-scan angles."""
    return _assert_follows_commanded
