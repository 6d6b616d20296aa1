"""bluesky-queueserver startup module: the simulated beamline.

``start-re-manager --startup-module ssb_beamline.profiles.qserver.startup_sim``;
see `ssb_beamline.profiles.qserver` for the whole command and the environment.
"""

from ssb_beamline.profiles.qserver.sim import sim_namespace

globals().update(sim_namespace())
