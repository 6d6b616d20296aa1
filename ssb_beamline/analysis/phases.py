"""Phase codes and phase segmentation of composite-cathode images.

The composite cathode of the source paper (Deng et al., Angew. Chem. 2025) has
three solid phases: NMC811 active particles, the Li6PS5Cl solid electrolyte (SSE,
the Li+ channels) and carbon / graphite (the e- channels), plus pores (void).
:class:`Phase` (defined in :mod:`ssb_beamline.physics`, re-exported here) holds
the integer codes used by every phase map in the package.

Segmentation uses absorption contrast: NMC (Ni, Co, Mn) absorbs most, the
sulphide electrolyte less and carbon least, so a multi-Otsu split of an
absorbance image orders the classes ``VOID < CARBON < SSE < NMC``.  Optionally
the carbon/SSE split is made from texture instead (graphite is wrinkled, SSE is
smooth; paper Figure 3b), using the local standard deviation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage as ndi
from skimage.filters import threshold_multiotsu, threshold_otsu

from ssb_beamline.physics import Phase

__all__ = ["Phase", "segment_phases"]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- #
# Shared input checks (private; also used by particles.py and diffusion.py).
# --------------------------------------------------------------------------- #
def _as_array(a: ArrayLike, name: str, ndims: tuple[int, ...] = (2,)) -> NDArray:
    """Return ``a`` as a non-empty numeric ndarray with an allowed ndim."""
    if a is None:
        raise ValueError(f"{name} is None; pass a numpy array of shape (ny, nx)")
    arr = np.asarray(a)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(
            f"{name} has non-numeric dtype {arr.dtype}; pass a numeric array "
            "(e.g. np.asarray(x, dtype=float))"
        )
    if arr.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(
            f"{name} must be {want}, got shape {arr.shape}; pass a single slice "
            "(e.g. volume[k]) or a projection"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); pass a non-empty image")
    return arr


def _check_same_shape(ref: NDArray, ref_name: str, other: NDArray, name: str) -> None:
    if other.shape != ref.shape:
        raise ValueError(
            f"{name} has shape {other.shape} but {ref_name} has shape {ref.shape}; "
            f"crop or resample {name} onto the same pixel grid as {ref_name}"
        )


def _check_pixel_size(pixel_size_um: float) -> float:
    try:
        px = float(pixel_size_um)
    except (TypeError, ValueError):
        raise ValueError(
            f"pixel_size_um={pixel_size_um!r} is not a number; pass the (square) "
            "pixel size in micrometres, e.g. pixel_size_um=0.03"
        ) from None
    if not np.isfinite(px) or px <= 0:
        raise ValueError(
            f"pixel_size_um={pixel_size_um!r} must be a finite positive number of "
            "micrometres, e.g. pixel_size_um=0.03"
        )
    return px


def _as_mask(mask: ArrayLike | None, ref: NDArray, ref_name: str) -> NDArray[np.bool_]:
    """Boolean mask of ``ref``'s shape (all True if None); empty -> ValueError."""
    if mask is None:
        return np.ones(ref.shape, dtype=bool)
    m = np.asarray(mask)
    _check_same_shape(ref, ref_name, m, "mask")
    m = m.astype(bool, copy=False)
    if not m.any():
        raise ValueError(
            "mask selects no pixels (all False); pass mask=None to use the whole "
            "image or a mask that is True over the region to analyse"
        )
    return m


# --------------------------------------------------------------------------- #
def _local_std(values: NDArray, weight: NDArray[np.bool_], size: int) -> NDArray:
    """Local standard deviation over ``weight`` pixels only (normalised convolution)."""
    w = weight.astype(np.float64)
    v = np.where(weight, values, 0.0)
    n = ndi.uniform_filter(w, size)
    n = np.where(n > 1e-12, n, np.inf)  # windows without pool pixels -> 0
    m1 = ndi.uniform_filter(v, size) / n
    m2 = ndi.uniform_filter(v * v, size) / n
    return np.sqrt(np.clip(m2 - m1 * m1, 0.0, None))


def _classes(values: NDArray, n_classes: int, what: str) -> NDArray:
    """Thresholds splitting ``values`` into ``n_classes`` (Otsu / multi-Otsu)."""
    if np.unique(values[: min(values.size, 200_000)]).size < n_classes and (
        np.unique(values).size < n_classes
    ):
        raise ValueError(
            f"{what} has fewer than {n_classes} distinct values inside the mask, so "
            f"it cannot be split into {n_classes} classes; pass explicit thresholds=, "
            "has_void=False, or check that the image is an absorbance image"
        )
    if n_classes == 2:
        return np.array([threshold_otsu(values)])
    return np.asarray(threshold_multiotsu(values, classes=n_classes))


def segment_phases(  # noqa: PLR0912 -- the branches are the input checks, each with its own error message
    image: ArrayLike,
    *,
    below_edge: ArrayLike | None = None,
    thresholds: Sequence[float] | None = None,
    has_void: bool = True,
    texture: bool = False,
    texture_size: int = 5,
    median_size: int = 0,
    mask: ArrayLike | None = None,
) -> NDArray[np.uint8]:
    """Segment an absorbance image into VOID / NMC / SSE / CARBON phases.

    Parameters
    ----------
    image : array_like, shape (ny, nx) or (nz, ny, nx)
        Absorbance (above the Ni K-edge, or any energy where NMC absorbs most).
    below_edge : array_like, optional
        Absorbance at an energy below the Ni K-edge.  When given, NMC is the
        class with a large edge jump ``image - below_edge`` (Otsu on the jump;
        only NMC contains Ni) and VOID / CARBON / SSE are split by multi-Otsu of
        ``below_edge`` over the remaining pixels.
    thresholds : sequence of float, optional
        Explicit increasing absorbance thresholds instead of Otsu (single-image
        mode only): 3 values (void|carbon, carbon|SSE, SSE|NMC) when
        ``has_void`` else 2 values (carbon|SSE, SSE|NMC).
    has_void : bool, default True
        Whether pores/background are present (4 classes instead of 3).
    texture : bool, default False
        Split CARBON from SSE by texture instead of absorbance: among pixels of
        either class, those with a local standard deviation above its Otsu
        threshold are CARBON (wrinkled graphite), the rest SSE (smooth).
    texture_size : int, default 5
        Window (pixels) for the local standard deviation.
    median_size : int, default 0
        Median pre-filter window (pixels; 0 or 1 = off), e.g. 3 for noisy data.
        A median is used rather than a Gaussian because blurring a step between
        two phases creates intermediate values that multi-Otsu assigns to a
        third phase along every boundary.
    mask : array_like of bool, optional
        Region to segment; pixels outside are VOID.  Non-finite pixels are VOID.

    Returns
    -------
    numpy.ndarray of uint8
        Phase map with :class:`Phase` codes.

    Raises
    ------
    ValueError
        Wrong dimensionality / shapes, empty mask, non-increasing or wrongly
        sized ``thresholds``, or too few distinct values for the class count.

    Notes
    -----
    Multi-Otsu maximises the between-class variance and can split a dominant
    phase in two when the class fractions are very unbalanced (e.g. < 5 % void)
    and the noise is high; check the result and pass ``thresholds=`` (e.g. from
    a histogram of a reference region) in that case.

    Examples
    --------
    >>> img = np.repeat([0.0, 0.5, 1.0, 2.0], 25).reshape(10, 10)  # void..NMC
    >>> segment_phases(img)[::3, 0].tolist()
    [0, 3, 2, 1]
    """
    img = _as_array(image, "image", (2, 3)).astype(np.float64)
    m = _as_mask(mask, img, "image")
    if texture_size < 2:
        raise ValueError(f"texture_size={texture_size} must be >= 2 pixels; e.g. 5")
    if median_size < 0:
        raise ValueError(f"median_size={median_size} must be >= 0; use 0 to disable")
    finite = np.isfinite(img)
    if below_edge is not None:
        be = _as_array(below_edge, "below_edge", (2, 3)).astype(np.float64)
        _check_same_shape(img, "image", be, "below_edge")
        finite &= np.isfinite(be)
    valid = m & finite
    if not valid.any():
        raise ValueError(
            "no finite pixels inside the mask; check the image for NaN/inf "
            "(e.g. a division by a zero flat field) or widen the mask"
        )

    def _smooth(a: NDArray) -> NDArray:
        if median_size <= 1:
            return a
        return ndi.median_filter(np.where(finite, a, np.median(a[valid])), size=median_size)

    img = _smooth(img)
    out = np.full(img.shape, Phase.VOID, dtype=np.uint8)
    low_codes = [Phase.VOID, Phase.CARBON, Phase.SSE] if has_void else [Phase.CARBON, Phase.SSE]

    if below_edge is not None:
        if thresholds is not None:
            raise ValueError(
                "thresholds= is only supported in single-image mode; drop "
                "below_edge= or drop thresholds= (Otsu is used with below_edge)"
            )
        be = _smooth(be)
        jump = img - be
        t_jump = _classes(jump[valid], 2, "edge jump (image - below_edge)")[0]
        nmc = valid & (jump > t_jump)
        rest = valid & ~nmc
        out[nmc] = Phase.NMC
        if rest.any():
            t = _classes(be[rest], len(low_codes), "below_edge absorbance")
            out[rest] = np.asarray(low_codes, np.uint8)[np.digitize(be[rest], t)]
    else:
        codes = [*low_codes, Phase.NMC]
        if thresholds is not None:
            t = np.asarray(thresholds, dtype=np.float64).ravel()
            if t.size != len(codes) - 1 or np.any(np.diff(t) <= 0):
                raise ValueError(
                    f"thresholds={list(thresholds)} must be {len(codes) - 1} strictly "
                    f"increasing values for has_void={has_void}; e.g. "
                    + ("[0.2, 0.6, 1.5]" if has_void else "[0.6, 1.5]")
                )
        else:
            t = _classes(img[valid], len(codes), "image")
        logger.debug("segment_phases thresholds: %s", t)
        out[valid] = np.asarray(codes, np.uint8)[np.digitize(img[valid], t)]

    if texture:
        pool = (out == Phase.CARBON) | (out == Phase.SSE)
        if pool.sum() >= 2:
            sd = _local_std(img, pool, texture_size)
            t_sd = _classes(sd[pool], 2, "local standard deviation (texture)")[0]
            out[pool] = np.where(sd[pool] > t_sd, Phase.CARBON, Phase.SSE)
    return out
