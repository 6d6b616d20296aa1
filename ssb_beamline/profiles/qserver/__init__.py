r"""bluesky-queueserver startup for the ssb_beamline plans (simulated beamline; EPICS hook).

Run the queue server on the simulated beamline (Redis on loopback)::

    redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no &
    start-re-manager --startup-module ssb_beamline.profiles.qserver.startup_sim \
        --existing-plans-devices "$(python -m ssb_beamline.profiles.qserver existing)" \
        --user-group-permissions "$(python -m ssb_beamline.profiles.qserver permissions)" \
        --redis-addr 127.0.0.1:6379

and submit a scan with bluesky-queueserver-api::

    from bluesky_queueserver_api import BPlan
    from bluesky_queueserver_api.zmq import REManagerAPI
    RM = REManagerAPI()
    RM.environment_open(); RM.wait_for_idle()
    RM.item_add(BPlan("xanes_scan", "detector", "energy", "zp_z", "det_z", "sample_x",
                      "shutter", "i0", [8300.0, 8350.0, 8400.0], sample_out=60.0,
                      focus="sim"))
    RM.queue_start()

The startup reads its configuration from the environment (see
`ssb_beamline.profiles.qserver.sim`): ``SSB_TILED_URI`` / ``SSB_TILED_API_KEY`` or
``SSB_DATA_DIR`` for storage, ``SSB_DETECTOR_DIR`` for the detector files,
``SSB_ZMQ_PUBLISH=host:port`` to publish documents over 0MQ, ``SSB_LIVE_ANALYSIS=0``
to leave the live analysis to a separate worker.

A beamline file (EPICS) startup is a module of two lines, like ``startup_sim``::

    from ssb_beamline.profiles.qserver.namespace import queue_namespace
    globals().update(queue_namespace(RE, devices))   # devices: {name: device}

after the beamline profile has built ``RE`` (with its tiled writer and live
analysis subscribed), connected its devices and registered its focus model with
`ssb_beamline.plans.focus_models.register_focus_model`.
"""

from pathlib import Path

__all__ = ["EXISTING_PLANS_AND_DEVICES", "USER_GROUP_PERMISSIONS", "startup_dir"]


def startup_dir() -> Path:
    """The directory holding the shipped queue-server yaml files."""
    return Path(__file__).parent


#: Plans and devices of the simulated startup, as ``qserver-list-plans-devices`` writes them.
EXISTING_PLANS_AND_DEVICES = startup_dir() / "existing_plans_and_devices.yaml"
#: Who may run what: the default groups of bluesky-queueserver, for the package's plans.
USER_GROUP_PERMISSIONS = startup_dir() / "user_group_permissions.yaml"
