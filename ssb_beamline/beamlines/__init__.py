"""Beamline files shipped with the package (``sim-txm.yaml``: the simulated TXM)."""
