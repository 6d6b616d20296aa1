"""Device interfaces shared by the real (EPICS) beamline and its simulated twin.

The simulated devices (``ssb_beamline.sim_devices``) implement these; plans and
callbacks import from here, never from ``sim_devices``. The EPICS devices live in
their own modules (``axis``, ``energy``, ``zone_plate``, ``detector_stage``,
``sample_stage``, ``holo``, ``epics_shutter``, ``beam_monitors``, ``area_detector``,
``txm``) and the beamline file schema in ``beamline_file``; they are not imported
here, so that importing a plan does not load Channel Access.
"""

from .shutter import ShutterState, is_open

__all__ = ["ShutterState", "is_open"]
