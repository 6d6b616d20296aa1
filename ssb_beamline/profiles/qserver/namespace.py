"""What every queue-server startup of ssb_beamline puts in the worker's namespace.

bluesky-queueserver imports a startup module and takes its globals: the plans it
finds (`bluesky.utils.is_plan`), the devices, and ``RE``. This module gathers them
for any beamline (simulated or EPICS) and adds the optional 0MQ document
publisher, so that a startup module is ``globals().update(queue_namespace(RE,
devices))``.
"""

import logging
import os
from collections.abc import Mapping
from typing import Any

from ssb_beamline.plans import holotomo_scan, tomo_scan, xanes_scan, xanes_tomo_scan

__all__ = ["PLANS", "ZMQ_PUBLISH_ENV", "attach_zmq_publisher", "parse_address", "queue_namespace"]

logger = logging.getLogger(__name__)

#: ``host:port`` of a bluesky 0MQ proxy's input: the RunEngine publishes its documents there.
ZMQ_PUBLISH_ENV = "SSB_ZMQ_PUBLISH"

#: The plans a queue item can name.
PLANS = {
    "xanes_scan": xanes_scan,
    "tomo_scan": tomo_scan,
    "xanes_tomo_scan": xanes_tomo_scan,
    "holotomo_scan": holotomo_scan,
}


def parse_address(text: str, what: str = ZMQ_PUBLISH_ENV) -> tuple[str, int]:
    """``"host:port"`` as ``(host, port)``.

    Raises
    ------
    ValueError
        Naming ``what`` and the expected form, for anything else.

    Examples
    --------
    >>> parse_address("127.0.0.1:5567")
    ('127.0.0.1', 5567)
    """
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"{what}={text!r} is not host:port; set it to the 0MQ proxy's input, "
            "e.g. 127.0.0.1:5567."
        )
    return host, int(port)


def attach_zmq_publisher(RE: Any, address: str | None = None) -> Any:
    """Publish ``RE``'s documents to a 0MQ proxy at ``address`` (default ``$SSB_ZMQ_PUBLISH``).

    Returns the subscribed `bluesky.callbacks.zmq.Publisher`, or None when no
    address is given. 0MQ queues the documents: a slow or absent subscriber never
    blocks the RunEngine.
    """
    address = address if address is not None else os.environ.get(ZMQ_PUBLISH_ENV)
    if not address:
        return None
    from bluesky.callbacks.zmq import Publisher

    host, port = parse_address(address)
    publisher = Publisher(f"{host}:{port}")
    RE.subscribe(publisher)
    logger.info("Publishing documents over 0MQ to %s:%d", host, port)
    return publisher


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
