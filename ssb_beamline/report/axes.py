"""Map panels as a scientist reads them: µm axes, robust colour ranges (stated), colour bars.

Examples
--------
>>> import numpy as np
>>> robust_range(np.arange(101.0))  # 1st and 99th percentiles
(1.0, 99.0)
>>> colour_note(1, 99)
'colours: 1st-99th percentile'
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["UM", "colour_note", "distinct_label_cmap", "map_panel", "robust_range"]

#: The micrometre, written properly.
UM = "µm"
#: Colour of pixels without a value (NaN) on maps.
NO_VALUE_COLOUR = "0.85"
#: Percentiles that bound the colour scales of maps.
LOW_PCT, HIGH_PCT = 1.0, 99.0


def _ordinal(n: float) -> str:
    n = int(n)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def colour_note(low: float = LOW_PCT, high: float = HIGH_PCT) -> str:
    """How the colour range was chosen, for a colour-bar label."""
    return f"colours: {_ordinal(low)}-{_ordinal(high)} percentile"


def robust_range(
    values: np.ndarray | Sequence[np.ndarray], low: float = LOW_PCT, high: float = HIGH_PCT
) -> tuple[float, float]:
    """``(vmin, vmax)`` at the ``low``/``high`` percentiles of the finite values of all arrays.

    A uniform (or empty) input gives a range of width 1 around its value.
    """
    arrays = values if isinstance(values, (list, tuple)) else [values]
    finite = np.concatenate([np.asarray(a, float)[np.isfinite(a)].ravel() for a in arrays])
    if finite.size == 0:
        return 0.0, 1.0
    vmin, vmax = (float(v) for v in np.percentile(finite, [low, high]))
    if vmax <= vmin:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    return vmin, vmax


def map_panel(ax, image, pixel_size_um: float | None, *, cmap: str = "viridis",  # noqa: PLR0913 -- keyword-only figure options
              label: str = "", vmin: float | None = None, vmax: float | None = None,
              title: str = "", note: str | None = None, colorbar: bool = True,
              axis_names: tuple[str, str] = ("x", "y")):  # fmt: skip
    """Draw a 2-D map with axes in µm (pixels if the size is unknown) and a colour bar.

    ``vmin``/``vmax`` default to :func:`robust_range`; the colour-bar label gets
    ``note`` (default: :func:`colour_note`). Returns the image.
    """
    import matplotlib.pyplot as plt

    image = np.asarray(image)
    if vmin is None or vmax is None:
        lo, hi = robust_range(image)
        vmin = lo if vmin is None else vmin
        vmax = hi if vmax is None else vmax
        note = colour_note() if note is None else note
    h, w = image.shape[:2]
    cmap = plt.get_cmap(cmap).with_extremes(bad=NO_VALUE_COLOUR)  # NaN: no value
    scale, unit = (pixel_size_um, UM) if pixel_size_um else (1.0, "px")
    im = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest",
                   origin="upper", extent=(0, w * scale, h * scale, 0))  # fmt: skip
    ax.set_xlabel(f"{axis_names[0]} ({unit})")
    ax.set_ylabel(f"{axis_names[1]} ({unit})")
    if title:
        ax.set_title(title, fontsize=10)
    if colorbar:
        text = f"{label}\n({note})" if note else label
        plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=text)
    return im


def distinct_label_cmap(n: int):
    """A colour map of ``n`` labels that all differ (golden-angle hues); 0 is black."""
    from matplotlib.colors import ListedColormap, hsv_to_rgb

    k = np.arange(max(n, 1))
    hsv = np.stack([(k * 0.618034) % 1.0, 0.55 + 0.45 * (k % 3) / 2, 0.75 + 0.25 * (k % 2)], 1)
    colours = np.column_stack([hsv_to_rgb(hsv), np.ones(len(k))])
    return ListedColormap(np.vstack([[0, 0, 0, 1], colours]))
