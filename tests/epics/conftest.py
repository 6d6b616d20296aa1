"""Fixtures for tests against the real simulated TXM IOC (a caproto subprocess).

Each test session (each xdist worker) points its Channel Access client at its own
pool of loopback ports *before* any CA context exists (here, at collection), and
starts its IOCs with unique prefixes on ports of that pool: parallel workers never
see each other's PVs, and nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import dataclasses

import pytest

from ssb_beamline.devices.beamline_file import default_beamline_file
from ssb_beamline.profiles.beamline import beamline_session
from ssb_beamline.sim_devices.ioc import configure_ca_client, running_sim_ioc
from ssb_beamline.storage import open_store

# Importing creates no CA context; the first connection does, after this line.
configure_ca_client()  # EPICS_CA_ADDR_LIST=127.0.0.1:<pool>, EPICS_CA_AUTO_ADDR_LIST=NO

#: Phantom size of the IOC in these tests (px): small, so a 41-energy scan takes about a
#: minute over CA (the default 512 px is for the demo and the benchmark).
IOC_SIZE = 64
IOC_SEED = 0


@pytest.fixture(scope="module")
def epics_store(tmp_path_factory):
    """An embedded tiled server (its detector folder is where the IOC writes)."""
    store = open_store(None, data_dir=tmp_path_factory.mktemp("epics-tiled"))
    yield store
    store.close()


@pytest.fixture(scope="module")
def sim_ioc(epics_store):
    """The simulated TXM IOC, unique prefix, own port, writing into the store's folder."""
    args = ["--size", str(IOC_SIZE), "--phantom-seed", str(IOC_SEED)]
    with running_sim_ioc(data_dir=epics_store.detector_dir, args=args) as ioc:
        yield ioc


def open_session(ioc, store, **kwargs):
    """A beamline session on ``ioc`` (the packaged beamline file, the IOC's prefix).

    The session gets a view of ``store`` that its ``close`` does not shut down, so
    several sessions of a module share one tiled server.
    """
    return beamline_session(
        default_beamline_file(), prefix=ioc.prefix, store=dataclasses.replace(store, server=None),
        detector_dir=store.detector_dir, **kwargs,
    )  # fmt: skip
