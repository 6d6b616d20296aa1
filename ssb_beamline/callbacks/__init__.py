"""Streaming callbacks: thin DocumentRouters that call analysis/ and publish results."""

from .frames import FrameResolverError, HDF5FrameResolver
from .xanes_live import LiveOutcome, LiveUpdate, ResultSink, XanesLiveAnalysis, xanes_live_factory

__all__ = [
    "FrameResolverError",
    "HDF5FrameResolver",
    "LiveOutcome",
    "LiveUpdate",
    "ResultSink",
    "XanesLiveAnalysis",
    "xanes_live_factory",
]
