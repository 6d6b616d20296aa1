"""Focus models by name: what a plan sent through a queue uses to track the focus.

A focus model maps an energy (eV) to the in-focus (zone-plate z, detector z) in mm.
From Python a plan can take the callable itself; a queue item cannot carry a
callable (it travels as JSON), so it names a model registered here by the profile
that built the beamline (the simulated profiles register ``"sim"``; a beamline file
registers its own). Plans accept either and resolve names with `resolve_focus`.

Examples
--------
>>> register_focus_model("flat", lambda e: (50.0, 2500.0))
>>> get_focus_model("flat")(8333.0)
(50.0, 2500.0)
>>> resolve_focus(None) is None
True
>>> unregister_focus_model("flat")
"""

import logging
import threading
from collections.abc import Callable, Sequence

__all__ = [
    "QUEUE_FOCUS_ANNOTATION",
    "FocusModel",
    "UnknownFocusModelError",
    "focus_model_names",
    "focus_positions_of",
    "get_focus_model",
    "register_focus_model",
    "resolve_focus",
    "unregister_focus_model",
]

logger = logging.getLogger(__name__)

#: Energy (eV) -> (zone-plate z, detector z) that keeps the image in focus at a
#: fixed magnification.
FocusModel = Callable[[float], tuple[float, float]]

#: What the queue server is told about ``focus`` (`bluesky_queueserver.parameter_annotation_
#: decorator`): a name or None. Without it the queue would see a callable type and try
#: to evaluate the name as an expression in the worker's namespace.
QUEUE_FOCUS_ANNOTATION = {"parameters": {"focus": {"annotation": "typing.Optional[str]"}}}

_MODELS: dict[str, FocusModel] = {}
_LOCK = threading.Lock()


class UnknownFocusModelError(KeyError, ValueError):
    """A focus model was asked for by a name nobody registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def register_focus_model(name: str, model: FocusModel) -> None:
    """Make ``model`` available to plans as ``focus=name``.

    Registering a name again replaces the model (a profile rebuilt in the same
    process registers its own optics).

    Parameters
    ----------
    name : str
        The name plans and queue items use (``focus="name"``).
    model : callable
        ``energy_ev -> (zone-plate z, detector z)`` in mm.

    Raises
    ------
    TypeError
        If ``name`` is not a non-empty string or ``model`` is not callable.
    """
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"A focus model needs a non-empty string name, got {name!r}.")
    if not callable(model):
        raise TypeError(
            f"Focus model {name!r} must be callable (energy eV -> (zone-plate z, "
            f"detector z) mm), got {type(model).__name__}."
        )
    with _LOCK:
        if name in _MODELS and _MODELS[name] is not model:
            logger.debug("focus model %r replaced", name)
        _MODELS[name] = model


def unregister_focus_model(name: str) -> None:
    """Forget the model registered as ``name`` (no error if there is none).

    Parameters
    ----------
    name : str
        The registered name.
    """
    with _LOCK:
        _MODELS.pop(name, None)


def focus_model_names() -> list[str]:
    """The registered names, sorted."""
    with _LOCK:
        return sorted(_MODELS)


def get_focus_model(name: str) -> FocusModel:
    """The model registered as ``name``.

    Parameters
    ----------
    name : str
        A registered name.

    Raises
    ------
    UnknownFocusModelError
        If no model has that name; the message lists the known names.
    """
    with _LOCK:
        model = _MODELS.get(name)
    if model is None:
        known = ", ".join(repr(n) for n in focus_model_names()) or "none registered yet"
        raise UnknownFocusModelError(
            f"Unknown focus model {name!r}. Known focus models: {known}. Use one of these "
            "names, None to leave the focus alone, or register one with "
            "ssb_beamline.plans.focus_models.register_focus_model(name, fn)."
        )
    return model


def resolve_focus(focus: "str | FocusModel | None") -> FocusModel | None:
    """A plan's ``focus`` argument as a callable: names are looked up, None stays None.

    Parameters
    ----------
    focus : str, callable or None
        A registered name, a focus model, or None (leave the focus alone).

    Raises
    ------
    UnknownFocusModelError
        For a name that is not registered.
    TypeError
        For anything that is neither a name, a callable nor None.
    """
    if focus is None or callable(focus):
        return focus
    if isinstance(focus, str):
        return get_focus_model(focus)
    raise TypeError(
        f"focus must be a focus-model name (one of {focus_model_names()}), a callable "
        f"energy -> (zone-plate z, detector z), or None; got {type(focus).__name__}."
    )


def focus_positions_of(
    focus: "str | FocusModel | None", energies: Sequence[float]
) -> list[tuple[float, float]] | None:
    """The (zone-plate z, detector z) of each energy, or None without focus tracking.

    Parameters
    ----------
    focus : str, callable or None
        A plan's ``focus`` argument (see :func:`resolve_focus`).
    energies : sequence of float
        Energies, eV.

    Examples
    --------
    >>> focus_positions_of(lambda e: (e / 1000, 2 * e), [8000.0])
    [(8.0, 16000.0)]
    >>> focus_positions_of(None, [8000.0]) is None
    True
    """
    model = resolve_focus(focus)
    return [model(e) for e in energies] if model is not None else None
