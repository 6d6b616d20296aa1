"""What every queue-server startup of ssb_beamline puts in the worker's namespace.

bluesky-queueserver imports a startup module and takes its globals: the plans it
finds (`bluesky.utils.is_plan`), the devices, and ``RE``. This module gathers them
for any beamline (simulated or EPICS), so that a startup module is
``globals().update(queue_namespace(RE, devices))``.
"""

import logging
from collections.abc import Mapping
from typing import Any

from ssb_beamline.plans import holotomo_scan, tomo_scan, xanes_scan, xanes_tomo_scan
from ssb_beamline.plans.stxm import stxm_ratio_scan, stxm_stack_scan

__all__ = ["PLANS", "ZMQ_PUBLISH_ENV", "queue_namespace"]

logger = logging.getLogger(__name__)

#: ``host:port`` of a bluesky 0MQ proxy's input: the startup's RunEngine publishes its
#: documents there (`ssb_beamline.profiles.zmq_link.attach_publisher`) for
#: ``ssb-beamline analyze --zmq``.
ZMQ_PUBLISH_ENV = "SSB_ZMQ_PUBLISH"

#: The plans a queue item can name.
PLANS = {
    "xanes_scan": xanes_scan,
    "tomo_scan": tomo_scan,
    "xanes_tomo_scan": xanes_tomo_scan,
    "holotomo_scan": holotomo_scan,
    "stxm_ratio_scan": stxm_ratio_scan,
    "stxm_stack_scan": stxm_stack_scan,
}


def queue_namespace(RE: Any, devices: Mapping[str, Any]) -> dict[str, Any]:
    """The startup namespace: ``RE`` (None when only listing plans), the devices, the plans.

    Raises
    ------
    ValueError
        If a device name hides a plan or ``RE``, or is not an identifier.
    """
    clash = sorted(set(devices) & {*PLANS, "RE"})
    bad = sorted(name for name in devices if not name.isidentifier())
    if clash or bad:
        raise ValueError(
            f"Device names {clash or bad} cannot be used in the queue-server namespace: "
            "rename them (identifiers that are not plan names or 'RE')."
        )
    namespace: dict[str, Any] = {**PLANS, **devices}
    if RE is not None:
        namespace["RE"] = RE
    return namespace
