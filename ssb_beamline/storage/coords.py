"""Axes of stored result arrays, in the form tiled's stock client reads as xarray.

tiled's stock client turns a container with the ``xarray_dataset`` spec into an
``xarray.Dataset``: each child array is a variable (spec ``xarray_data_var``) or a
coordinate (spec ``xarray_coord``), its dimension names are the array's ``dims``
and its attributes ``metadata["attrs"]`` (:func:`tiled.client.xarray.write_xarray_dataset`
writes the same layout). A result version is stored that way, so a stock client
plots a map with its axes::

    ds = client["results"][uid]["v1"].read(variables=["soc", "x", "y"])
    ds.soc.plot()          # x and y in um

(``variables`` is needed when the version also holds tables, such as the particle
statistics: xarray has no place for them.) Dimension names: ``y``, ``x`` (image
rows and columns, um from the pixel size), ``z`` (volume slices, um), ``energy``
(eV), ``reference`` (end members of the fit).

Examples
--------
>>> import numpy as np
>>> arrays = {"soc": np.zeros((2, 3)), "energies": np.array([8330.0, 8340.0])}
>>> dims, coords = result_axes(arrays, pixel_size_um=0.5)
>>> dims["soc"], coords["x"][0].tolist()
(('y', 'x'), [0.0, 0.5, 1.0])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["axes_of", "pixel_size_of", "result_axes"]

_ENERGY_KEYS = ("energies", "energy_ev", "energies_ev")


def pixel_size_of(start: Mapping[str, Any]) -> float | None:
    """The pixel size (um) a run's start document gives (``optics`` or top level).

    Parameters
    ----------
    start : mapping
        A run's start document; ``optics.pixel_size_um`` wins over a top-level
        ``pixel_size_um``.

    Returns
    -------
    float or None
        The pixel size, um; None when neither is a positive number.
    """
    optics = start.get("optics")
    for value in (optics.get("pixel_size_um") if isinstance(optics, Mapping) else None,
                  start.get("pixel_size_um")):  # fmt: skip
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return None


def axes_of(start: Mapping[str, Any]) -> dict[str, Any]:
    """What the axes of a run's results come from: its pixel size and energies.

    Parameters
    ----------
    start : mapping
        The run's start document.

    Returns
    -------
    dict
        ``pixel_size_um`` (float or None, see :func:`pixel_size_of`) and
        ``energies_ev`` (list of float or None), JSON-ready.

    Examples
    --------
    >>> axes_of({"optics": {"pixel_size_um": 0.13}, "energies_ev": [8330, 8340]})
    {'pixel_size_um': 0.13, 'energies_ev': [8330.0, 8340.0]}
    """
    energies = start.get("energies_ev")
    try:
        listed = None if energies is None else [float(e) for e in np.ravel(energies)]
    except (TypeError, ValueError):
        listed = None
    return {"pixel_size_um": pixel_size_of(start), "energies_ev": listed}


def _dims(key: str, shape: tuple[int, ...], n_energy: int | None) -> tuple[str, ...]:
    if key in _ENERGY_KEYS and len(shape) == 1:
        return ("energy",)
    spatial = {2: ("y", "x"), 3: ("z", "y", "x")}
    if len(shape) == 2:
        return spatial[2]
    if len(shape) == 3:
        if key == "fractions":
            return ("reference", "y", "x")
        if n_energy is not None and shape[0] == n_energy and key in ("normalized", "od"):
            return ("energy", "y", "x")
        return spatial[3]
    if len(shape) == 4 and n_energy is not None and shape[0] == n_energy:
        return ("energy", "z", "y", "x")
    return tuple(f"{key}_dim{i}" for i in range(len(shape)))


def result_axes(
    arrays: Mapping[str, np.ndarray],
    *,
    pixel_size_um: float | None = None,
    energies: Any = None,
) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[np.ndarray, dict[str, str]]]]:
    """Dimension names of each array, and the coordinate arrays with their units.

    A dimension whose length differs between arrays (a volume and a map of
    another size) gets its length appended (``x_128``) so every name has one length.

    Parameters
    ----------
    arrays : mapping of str to numpy.ndarray
        The result arrays by key; the key decides the dimension names (``energy``,
        ``z``, ``y``, ``x``).
    pixel_size_um : float, optional
        Pixel (voxel) size, um (keyword only); None or 0: coordinates in pixels.
    energies : array_like, optional
        Energies of the energy axis, eV (keyword only); None: taken from an
        ``energies`` array of ``arrays`` if there is one.

    Returns
    -------
    dims : dict
        ``key -> dimension names``.
    coords : dict
        ``name -> (values, attrs)``: ``x`` / ``y`` / ``z`` in um (pixels when the
        pixel size is unknown), ``energy`` in eV.
    """
    if energies is None:
        energies = next((arrays[k] for k in _ENERGY_KEYS if k in arrays), None)
    energy = None if energies is None else np.asarray(energies, dtype=float).ravel()
    n_energy = None if energy is None else energy.size
    lengths: dict[str, int] = {}
    dims: dict[str, tuple[str, ...]] = {}
    for key, array in arrays.items():
        shape = tuple(np.shape(array))
        names = []
        for base, length in zip(_dims(key, shape, n_energy), shape, strict=True):
            name = base if lengths.setdefault(base, length) == length else f"{base}_{length}"
            lengths.setdefault(name, length)
            names.append(name)
        dims[key] = tuple(names)
    step, unit = (pixel_size_um, "um") if pixel_size_um else (1.0, "px")
    coords: dict[str, tuple[np.ndarray, dict[str, str]]] = {}
    for name, length in lengths.items():
        axis = name.split("_")[0]
        if axis in ("x", "y", "z"):
            values = np.arange(length, dtype=np.float64) * step
            coords[name] = (values, {"units": unit, "long_name": f"{axis} ({unit})"})
        elif axis == "energy" and energy is not None and energy.size == length:
            coords[name] = (energy, {"units": "eV", "long_name": "energy (eV)"})
    return dims, coords
