"""bluesky's ``@plan`` for plans that check their arguments when they are built.

bluesky's :func:`bluesky.utils.plan` wraps a call in ``Plan(f, *args)``, whose
``__init__`` calls ``f`` before it sets its own attributes. The project's plans
are functions that check their arguments, then return a generator: a bad
argument raises the plan's clear ``ValueError`` there, and the half-built
``Plan`` is then garbage collected, its ``__del__`` printing an ``AttributeError``
traceback ("Exception ignored in: <function Plan.__del__>", bluesky 1.15.1) to the
user's terminal or the queue server's log after the error. :func:`plan` builds the
generator first, then wraps it in bluesky's ``Plan``, so that a plan that was
never iterated still gets bluesky's warning and a bad argument gets only its own.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec

from bluesky.utils import Plan

__all__ = ["plan"]

P = ParamSpec("P")


def plan(build: Callable[P, Any]) -> Callable[P, Plan]:
    """Decorate a plan function as :func:`bluesky.utils.plan` does, arguments checked first.

    Parameters
    ----------
    build : callable
        Returns the plan's generator after checking its arguments (raising
        ``ValueError`` for a bad one).

    Returns
    -------
    callable
        The plan, marked as one for the queue server (``_is_plan_``), with
        ``build``'s signature, docstring and annotations.

    Examples
    --------
    >>> @plan
    ... def count_to(n: int):
    ...     if n < 1:
    ...         raise ValueError(f"n must be >= 1, got {n}")
    ...     return (i for i in range(n))
    >>> list(count_to(3))
    [0, 1, 2]
    >>> count_to(0)
    Traceback (most recent call last):
    ...
    ValueError: n must be >= 1, got 0
    """

    @wraps(build)
    def checked(*args: P.args, **kwargs: P.kwargs) -> Plan:
        generator = build(*args, **kwargs)  # a bad argument raises here, before any Plan
        return Plan(wraps(build)(lambda: generator))

    checked._is_plan_ = True  # type: ignore[attr-defined]  # as bluesky's decorator marks it
    return checked
