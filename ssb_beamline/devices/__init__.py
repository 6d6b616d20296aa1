"""Device interfaces shared by the real (EPICS) beamline and its simulated twin.

The simulated devices (``ssb_beamline.sim_devices``) implement these; plans and
callbacks import from here, never from ``sim_devices``.
"""

from .shutter import ShutterState, is_open

__all__ = ["ShutterState", "is_open"]
