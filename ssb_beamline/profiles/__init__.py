"""Ready-made sessions: the simulated beamline (a real-hardware profile comes with devices/)."""
