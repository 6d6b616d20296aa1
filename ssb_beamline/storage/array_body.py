"""An array PUT whose body does not fit the array is answered 400, not 500.

tiled 0.2.20 turns the body of an ``application/octet-stream`` array write
(``PUT /array/full``, ``/array/block``) into the array with
``numpy.frombuffer(body, dtype).reshape(shape)``; a body of the wrong size (a
client that declared a shorter ``Content-Length``, or sent another dtype or shape)
raises ``ValueError`` there, which tiled answers ``500 Internal server error``, and
tiled's client retries a 500 as if the server were busy. :func:`install` registers,
through tiled's own ``register`` of its deserialisation registry, the same
deserialiser with a size check first: a wrong size is a ``400`` naming both sizes
and the fix, and nothing is written (the check runs before the adapter writes).
A body of the right size is deserialised exactly as by tiled.

Risk: a tiled upgrade that changes its octet-stream deserialiser (e.g. another
byte order) must re-check this one (``tests/storage/test_array_put.py``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["MEDIA_TYPE", "from_octets", "install", "installed"]

#: The media type of raw array bytes (C order, the array's dtype).
MEDIA_TYPE = "application/octet-stream"


def from_octets(buffer: Any, dtype: Any, shape: tuple[int, ...]) -> Any:
    """The array of ``shape`` and ``dtype`` in ``buffer``; 400 when the size differs.

    Parameters
    ----------
    buffer : bytes-like
        The request body.
    dtype : numpy dtype
        The array's dtype.
    shape : tuple of int
        The array's (or block's) shape.

    Raises
    ------
    fastapi.HTTPException
        400 when ``buffer`` does not hold exactly ``shape`` x ``dtype``.

    Examples
    --------
    >>> import numpy as np
    >>> from_octets(np.arange(4, dtype="<i2").tobytes(), np.dtype("<i2"), (2, 2)).tolist()
    [[0, 1], [2, 3]]
    """
    import numpy as np

    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    received = memoryview(buffer).nbytes
    if received != expected:
        from fastapi import HTTPException

        raise HTTPException(
            status_code=400,
            detail=(
                f"array body of {received} bytes, but shape {tuple(shape)} of {np.dtype(dtype)} "
                f"needs {expected}; send the array's bytes in C order"
            ),
        )
    return np.frombuffer(buffer, dtype=dtype).reshape(shape)


def installed() -> bool:
    """Whether tiled's server deserialises octet-stream arrays with :func:`from_octets`."""
    from tiled.media_type_registration import default_deserialization_registry as registry

    return registry.dispatch("array", MEDIA_TYPE) is from_octets


def install() -> bool:
    """Register :func:`from_octets` for octet-stream array bodies (idempotent).

    Returns
    -------
    bool
        True (the registration is in place).

    Examples
    --------
    >>> install(), installed()
    (True, True)
    """
    from tiled.media_type_registration import default_deserialization_registry as registry

    registry.register("array", MEDIA_TYPE, from_octets)
    return installed()
