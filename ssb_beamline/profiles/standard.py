"""The analyses every XANES run gets, live and on replay (one list, so both agree)."""

from __future__ import annotations

from ssb_beamline.callbacks.particles_live import ParticleStatistics
from ssb_beamline.callbacks.xanes_live import MapPostProcessor

__all__ = ["standard_post_processors"]


def standard_post_processors() -> list[MapPostProcessor]:
    """Post-processors run on the final XANES maps: per-particle statistics."""
    return [ParticleStatistics()]
