"""Streaming callbacks: thin DocumentRouters that call analysis/ and publish results."""

from .background import BackgroundCallback, CallbackFailedError
from .frames import FrameResolverError, HDF5FrameResolver
from .guard import guarded
from .holo_live import HoloLiveAnalysis, tomo_live_factory
from .tomo_live import TomoLiveAnalysis, TomoOutcome
from .xanes_factory import xanes_live_factory
from .xanes_live import LiveOutcome, LiveUpdate, ResultSink, XanesLiveAnalysis

__all__ = [
    "BackgroundCallback",
    "CallbackFailedError",
    "FrameResolverError",
    "HDF5FrameResolver",
    "HoloLiveAnalysis",
    "LiveOutcome",
    "LiveUpdate",
    "ResultSink",
    "TomoLiveAnalysis",
    "TomoOutcome",
    "XanesLiveAnalysis",
    "guarded",
    "tomo_live_factory",
    "xanes_live_factory",
]
