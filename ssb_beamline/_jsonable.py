"""numpy values as plain JSON types: the one converter for metadata and journals.

Result metadata (tiled stores it as JSON), the document journal and the result
journal all hold values computed with numpy; :func:`jsonable` turns them into the
Python types :mod:`json` writes. It imports nothing of the package, so every layer
(callbacks, storage) may use it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["jsonable"]


def jsonable(value: Any, *, finite: bool = True) -> Any:
    """``value`` with numpy arrays/scalars, tuples and datetimes as plain JSON types.

    Mappings become dicts with string keys, sequences and arrays lists, numpy
    scalars Python numbers, dates ISO strings. With ``finite`` (for metadata that
    must be strict JSON) NaN and infinities become None; ``finite=False`` keeps
    them (journals, which must give back exactly what they were given). Other
    objects are returned as they are (:func:`json.dumps` then names their type).

    Parameters
    ----------
    value : object
        What to convert: mappings, sequences, numpy arrays and scalars, dates, at any
        depth.
    finite : bool, default True
        Replace NaN and infinities by None (strict JSON); False keeps them (keyword
        only).

    Returns
    -------
    object
        Plain dicts, lists, str, int, float, bool and None; other objects unchanged.

    Examples
    --------
    >>> jsonable({"a": np.float32(1.5), "b": np.arange(3), "c": (np.nan, np.int64(2))})
    {'a': 1.5, 'b': [0, 1, 2], 'c': [None, 2]}
    >>> jsonable([np.inf], finite=False)
    [inf]
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, finite=finite) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biu" or (value.dtype.kind == "f" and not finite):
            return value.tolist()  # nested lists of Python scalars, in C
        return jsonable(value.tolist(), finite=finite)
    if isinstance(value, list | tuple):
        return [jsonable(v, finite=finite) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    elif isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if finite and isinstance(value, float) and not math.isfinite(value):
        return None
    return value
