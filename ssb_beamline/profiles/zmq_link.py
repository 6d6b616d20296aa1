"""Documents over 0MQ: bluesky's ``Publisher`` -> ``Proxy`` -> ``RemoteDispatcher``.

The RunEngine side subscribes bluesky's :class:`~bluesky.callbacks.zmq.Publisher`
(a PUB socket: ``send`` queues the message and returns, and when a subscriber
falls so far behind that 0MQ's high-water mark is reached the message is dropped
for that subscriber; the publisher never waits). The analysis worker listens with
bluesky's :class:`~bluesky.callbacks.zmq.RemoteDispatcher`. Between them runs the
stock proxy, ``bluesky-0MQ-proxy IN_PORT OUT_PORT``.

What bluesky does not provide, and is written here:

- a SUB socket connects silently to an address where nothing listens and waits
  forever, so :func:`check_zmq_address` watches the socket's connection events
  (0MQ's socket monitor) and says within seconds that no proxy answers;
- a PUB socket drops every message sent before the proxy's subscription reached it
  (0MQ filters on the publishing side). A document published right after the
  ``Publisher`` connects is lost: measured, the first message sent at once was lost
  20 times in 20, and one run's start document was lost on a loaded machine, so the
  worker analysed that run from tiled instead of live. :func:`attach_publisher`
  gives bluesky's ``Publisher`` an XPUB socket (it publishes exactly like PUB, and
  also hands over the subscriptions it receives) and waits, bounded, until the
  proxy's subscription has arrived before the RunEngine may publish.

Examples
--------
>>> normalize_address("127.0.0.1:5568")
'tcp://127.0.0.1:5568'
"""

from __future__ import annotations

import logging
import time

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "SUBSCRIPTION_TIMEOUT_S",
    "ZmqUnavailableError",
    "attach_publisher",
    "check_zmq_address",
    "normalize_address",
]

logger = logging.getLogger(__name__)

#: How long :func:`check_zmq_address` waits for the proxy to accept the connection.
DEFAULT_CONNECT_TIMEOUT_S = 3.0
#: How long :func:`attach_publisher` waits for the proxy's subscription, s.
SUBSCRIPTION_TIMEOUT_S = 5.0


class ZmqUnavailableError(ConnectionError, ValueError):
    """No 0MQ proxy answers at the address (the message says how to start one)."""


def normalize_address(address: str) -> str:
    """``HOST:PORT`` (or a full ``tcp://`` / ``ipc://`` address) as a 0MQ endpoint.

    Parameters
    ----------
    address : str
        ``HOST:PORT`` (port digits only), or an address with a scheme, returned as is.

    Returns
    -------
    str
        ``tcp://HOST:PORT``, or ``address`` when it has a scheme.

    Raises
    ------
    ZmqUnavailableError
        If ``address`` is not of that form.
    """
    text = str(address).strip()
    if "://" in text:
        return text
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ZmqUnavailableError(
            f"{address!r} is not a 0MQ address; give HOST:PORT of the proxy's output "
            "port, e.g. 127.0.0.1:5568 (start a proxy with `bluesky-0MQ-proxy 5567 5568`)."
        )
    return f"tcp://{host}:{port}"


def check_zmq_address(address: str, *, timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S) -> str:
    """Return the endpoint once a peer accepts a connection there; raise otherwise.

    A 0MQ ``connect`` never fails on a dead address: it retries in the
    background. This opens a SUB socket with a monitor and waits up to
    ``timeout_s`` for the ``CONNECTED`` event.

    Parameters
    ----------
    address : str
        ``HOST:PORT`` or a full ``tcp://`` / ``ipc://`` address.
    timeout_s : float, default 3.0
        How long to wait for the connection, s (keyword only).

    Returns
    -------
    str
        The 0MQ endpoint (``tcp://HOST:PORT``).

    Raises
    ------
    ZmqUnavailableError
        If nothing accepted the connection within ``timeout_s`` seconds.
    """
    import zmq
    from zmq.utils.monitor import recv_monitor_message

    endpoint = normalize_address(address)
    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    monitor = socket.get_monitor_socket()
    seen: list[str] = []
    try:
        try:
            socket.connect(endpoint)
        except zmq.ZMQError as exc:
            raise ZmqUnavailableError(
                f"Cannot connect to the 0MQ address {endpoint} ({exc}). Give HOST:PORT of a "
                "running proxy's output port (`bluesky-0MQ-proxy IN OUT`)."
            ) from exc
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if not monitor.poll(int(left * 1000) + 1):
                break
            event = recv_monitor_message(monitor)["event"]
            if event == zmq.EVENT_CONNECTED:
                return endpoint
            seen.append(getattr(event, "name", str(event)))
        raise ZmqUnavailableError(
            f"No 0MQ proxy answered at {endpoint} within {timeout_s:g} s (connection "
            f"events: {', '.join(dict.fromkeys(seen)) or 'none'}). Start the proxy first "
            "(`bluesky-0MQ-proxy 5567 5568`: the RunEngine publishes to 5567, the worker "
            "listens on 5568) and check HOST:PORT."
        )
    finally:
        socket.disable_monitor()
        monitor.close(linger=0)
        socket.close(linger=0)
        context.term()


def attach_publisher(RE, address: str):
    """Subscribe bluesky's 0MQ ``Publisher`` to ``RE``, publishing to a proxy's input.

    A proxy that does not answer is logged (the documents are then lost for the
    worker; it analyses those runs from tiled when it starts), never an error: the
    acquisition does not depend on the analysis.

    Returns the publisher (``close()`` it with the session).

    Parameters
    ----------
    RE : bluesky.RunEngine
        The RunEngine whose documents are published.
    address : str
        ``HOST:PORT`` of the proxy's input (``bluesky-0MQ-proxy IN OUT``: IN), or a
        full ``tcp://`` address.

    Returns
    -------
    bluesky.callbacks.zmq.Publisher
        The subscribed publisher.
    """
    from bluesky.callbacks.zmq import Publisher

    endpoint = normalize_address(address)
    try:
        check_zmq_address(endpoint, timeout_s=1.0)
    except ZmqUnavailableError as exc:
        logger.warning("publishing documents to %s anyway: %s", endpoint, exc)
        publisher = Publisher(endpoint)
    else:
        publisher = Publisher(endpoint)
        _wait_for_subscription(publisher, SUBSCRIPTION_TIMEOUT_S)
    RE.subscribe(publisher)
    logger.info("documents are published over 0MQ to %s", endpoint)
    return publisher


def _wait_for_subscription(publisher, timeout_s: float) -> bool:
    """Swap the publisher's PUB socket for an XPUB one and wait for a subscription.

    Returns whether the subscription arrived within ``timeout_s`` (logged if not:
    documents published before it are lost for the worker, which then analyses
    those runs from tiled).
    """
    import zmq

    socket = getattr(publisher, "_socket", None)
    context = getattr(publisher, "_context", None)
    if socket is None or context is None:  # pragma: no cover - another bluesky layout
        logger.warning("cannot confirm the 0MQ subscription with this bluesky Publisher")
        return False
    xpub = context.socket(zmq.XPUB)
    xpub.connect(publisher.address)
    socket.close(linger=0)
    publisher._socket = xpub
    if xpub.poll(int(timeout_s * 1000)):
        xpub.recv()  # b"\x01" + topic: the proxy subscribed
        return True
    logger.warning(
        "the 0MQ proxy at %s did not subscribe within %.0f s; documents published "
        "before it does are lost for the worker (it analyses such runs from tiled)",
        publisher.address, timeout_s,
    )  # fmt: skip
    return False
