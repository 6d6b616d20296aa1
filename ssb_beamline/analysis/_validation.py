"""Input checks shared by the analysis functions.

Every check raises :class:`ValueError` or :class:`TypeError` with a message that
names the problem *and* how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "as_float_array",
    "check_angles",
    "check_energies",
    "check_image",
    "check_mask",
    "check_saturation",
    "check_stack",
    "numeric_stack",
]


def as_float_array(values: object, name: str) -> np.ndarray:
    """Return ``values`` as a real, floating ndarray (float32 stays float32).

    Examples
    --------
    >>> as_float_array([1, 2], "x").dtype
    dtype('float64')
    """
    arr = np.asarray(values)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating)
        or np.issubdtype(arr.dtype, np.integer)
        or arr.dtype == bool
    ):
        raise TypeError(
            f"{name} must be a real numeric array; got dtype {arr.dtype}. "
            "Convert it with np.asarray(..., dtype=np.float32)."
        )
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def check_energies(
    energies: Sequence[float] | np.ndarray,
    n_expected: int | None = None,
    *,
    min_points: int = 2,
    name: str = "energies",
) -> np.ndarray:
    """Validate a 1-D, finite, strictly increasing energy axis (eV) -> float64.

    Parameters
    ----------
    energies : array_like
        Energies in eV.
    n_expected : int, optional
        Required length (the number of frames along axis 0 of the stack).
    min_points : int
        Minimum number of energies.
    name : str
        Name used in error messages.

    Examples
    --------
    >>> check_energies([8300.0, 8340.0, 8400.0]).tolist()
    [8300.0, 8340.0, 8400.0]
    >>> check_energies([8300.0, 8299.0])
    Traceback (most recent call last):
    ...
    ValueError: energies must be strictly increasing; got a decrease at index 1 \
(8300.0 -> 8299.0 eV). Sort the energies and the frames together.
    """
    e = as_float_array(energies, name).astype(np.float64)
    if e.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (one energy per frame); got shape {e.shape}. "
            "Pass a flat array of energies in eV."
        )
    if n_expected is not None and e.size != n_expected:
        raise ValueError(
            f"{name} has {e.size} values but the stack has {n_expected} frames along axis 0. "
            "Pass one energy per frame (stack shape (N, H, W) with N energies)."
        )
    if e.size < min_points:
        raise ValueError(
            f"too few points: {name} has {e.size} values, at least {min_points} are needed. "
            "Measure more energies across the edge."
        )
    if not np.all(np.isfinite(e)):
        bad = int(np.flatnonzero(~np.isfinite(e))[0])
        raise ValueError(
            f"{name} must be finite; got {e[bad]} at index {bad}. "
            "Remove or fix the frames with invalid energies."
        )
    step = np.diff(e)
    if np.any(step <= 0):
        i = int(np.flatnonzero(step <= 0)[0]) + 1
        kind = "a repeated value" if step[i - 1] == 0 else "a decrease"
        raise ValueError(
            f"{name} must be strictly increasing; got {kind} at index {i} "
            f"({e[i - 1]} -> {e[i]} eV). Sort the energies and the frames together."
        )
    return e


def check_stack(
    stack: object, energies: object, *, name: str = "stack", min_points: int = 2
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Validate a spectral stack (N, ...) and its energies.

    Returns
    -------
    stack2d : ndarray
        View (when possible) of shape (N, P) with P = prod(spatial shape).
    energies : ndarray
        float64 energies.
    spatial_shape : tuple of int
        Trailing shape of the stack (``()`` for a single spectrum).

    Examples
    --------
    >>> s2, e, shp = check_stack(np.zeros((3, 4, 5), np.float32), [1.0, 2.0, 3.0])
    >>> s2.shape, shp
    ((3, 20), (4, 5))
    """
    arr = as_float_array(stack, name)
    if arr.ndim == 0:
        raise ValueError(
            f"{name} must have the energy axis first, shape (N,) or (N, H, W); got a scalar. "
            "Pass the stack of frames, one per energy."
        )
    e = check_energies(energies, arr.shape[0], min_points=min_points)
    spatial = tuple(arr.shape[1:])
    arr2d = arr.reshape(arr.shape[0], -1)
    check_frames_finite(arr2d, e, name=name)
    return arr2d, e, spatial


#: Pixels per frame looked at first by :func:`check_frames_finite`.
_FINITE_PROBE = 64


def check_frames_finite(stack2d: np.ndarray, energies: np.ndarray, *, name: str = "stack") -> None:
    """Raise if a frame of a (N, P) stack has no finite value at all.

    Invalid pixels (NaN) are normal, but a frame that is entirely NaN or inf (a
    detector read-out failure, a frame divided by an empty flat) makes every
    spectrum unusable. Only frames whose first pixels are all non-finite are
    checked in full, so a good stack costs N x 64 look-ups.

    Examples
    --------
    >>> check_frames_finite(np.array([[1.0, np.nan], [np.nan, np.nan]]), np.array([1.0, 2.0]))
    Traceback (most recent call last):
    ...
    ValueError: frame 1 (2.0 eV) of stack has no finite value (all NaN or inf). \
Drop that frame and its energy, or retake it; check its dark and flat.
    """
    if stack2d.size == 0 or not np.issubdtype(stack2d.dtype, np.floating):
        return
    probe = ~np.isfinite(stack2d[:, :_FINITE_PROBE]).any(axis=1)
    for index in np.flatnonzero(probe):
        if not np.isfinite(stack2d[index]).any():
            raise ValueError(
                f"frame {index} ({energies[index]} eV) of {name} has no finite value "
                "(all NaN or inf). Drop that frame and its energy, or retake it; check "
                "its dark and flat."
            )


def check_mask(mask: object | None, spatial_shape: tuple[int, ...], name: str = "mask"):
    """Validate an optional boolean mask of the spatial shape -> flat bool array or None.

    Examples
    --------
    >>> check_mask(np.ones((2, 2), bool), (2, 2)).shape
    (4,)
    """
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != bool:
        if not np.issubdtype(m.dtype, np.integer):
            raise TypeError(
                f"{name} must be boolean (True = analyse); got dtype {m.dtype}. "
                "Build it with a comparison, e.g. edge_step > threshold."
            )
        m = m != 0
    if m.shape != tuple(spatial_shape):
        raise ValueError(
            f"{name} has shape {m.shape} but the image shape is {tuple(spatial_shape)}. "
            "Pass a mask with one value per pixel."
        )
    return m.reshape(-1)


def output_array(out: np.ndarray | None, shape: tuple[int, ...], name: str = "out") -> np.ndarray:
    """``out`` checked to be float32 of ``shape``, or a new such array when None.

    Examples
    --------
    >>> output_array(None, (2, 3)).shape
    (2, 3)
    """
    if out is None:
        return np.empty(shape, np.float32)
    if out.shape != tuple(shape) or out.dtype != np.float32:
        raise ValueError(
            f"{name} must be float32 with shape {tuple(shape)}; got {out.dtype} {out.shape}. "
            f"Allocate it with np.empty({tuple(shape)}, np.float32)."
        )
    return out


def numeric_stack(a: ArrayLike, name: str, ndims: tuple[int, ...]) -> NDArray:
    """Non-empty numeric array with an allowed ndim (dtype kept)."""
    arr = np.asarray(a)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} has non-numeric dtype {arr.dtype}; pass a numeric array")
    if arr.ndim not in ndims or arr.size == 0:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be a non-empty {want} array, got shape {arr.shape}")
    return arr


def check_angles(angles_deg: ArrayLike, n_projections: int | None = None) -> NDArray[np.float64]:
    """Validate angles (degrees): finite, distinct, span >= 180 - one step; -> float64.

    Parameters
    ----------
    angles_deg : array_like
        Rotation angles, deg.
    n_projections : int, optional
        Number of projections the angles must match.

    Examples
    --------
    >>> check_angles(np.arange(0, 180, 1.0)).size
    180
    >>> check_angles([0, 45, 90])
    Traceback (most recent call last):
    ...
    ValueError: angles cover only 90 degrees (step 45); tomography needs >= 180: acquire \
e.g. np.linspace(0, 180, n, endpoint=False) or a 360-degree scan
    """
    a = np.asarray(angles_deg, dtype=np.float64)
    if a.ndim != 1 or a.size < 2:
        raise ValueError(f"angles must be 1-D with >= 2 angles in degrees, got shape {a.shape}")
    if n_projections is not None and a.size != n_projections:
        raise ValueError(
            f"{a.size} angles for {n_projections} projections; pass one per projection"
        )
    if not np.isfinite(a).all():
        n_bad = int((~np.isfinite(a)).sum())
        raise ValueError(f"angles contain {n_bad} NaN/inf; drop them or fix the stage readback")
    s = np.sort(a)
    step = float(np.median(np.diff(s)))
    dup = np.flatnonzero(np.diff(s) <= 1e-6 * max(step, 1e-9))
    if dup.size:
        raise ValueError(
            f"duplicate angle(s) {s[dup][:5].tolist()} deg; average or drop the repeated "
            "projections (e.g. np.unique(angles, return_index=True))"
        )
    span = float(s[-1] - s[0])
    if span < 180.0 - step - 1e-9:
        hint = " (radians? pass np.degrees(angles))" if span <= 2 * np.pi else ""
        raise ValueError(
            f"angles cover only {span:.4g} degrees (step {step:.4g}){hint}; tomography needs "
            ">= 180: acquire e.g. np.linspace(0, 180, n, endpoint=False) or a 360-degree scan"
        )
    return a


def check_image(arr: object, name: str) -> np.ndarray:
    """``arr`` as an integer or float ndarray, or a TypeError naming ``name``.

    Examples
    --------
    >>> check_image([[1, 2]], "flat").dtype.kind
    'i'
    """
    a = np.asarray(arr)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise TypeError(
            f"{name} must be an integer or float image; got dtype {a.dtype}. "
            "Pass the detector counts as a numpy array."
        )
    return a


def check_saturation(saturation: object) -> float:
    """``saturation`` as a float, or a ValueError: NaN would mark every pixel valid or none."""
    try:
        value = float(saturation)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0:  # also NaN
        raise ValueError(
            f"saturation must be a positive number of counts (or inf for none); got "
            f"{saturation!r}. Use the camera's full scale, e.g. 65535 for 16 bits."
        )
    return value
