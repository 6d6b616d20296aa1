"""Correlations of particle SOC with size and depth, and the small / large groups.

Works on the table of :func:`~ssb_beamline.analysis.particles.particle_table`
(2-D or 3-D): Pearson correlations of Deng et al. (Angew. Chem. 2025), Figure 5d-g.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

__all__ = ["size_statistics"]

_REQUIRED = ("radius_um", "soc_mean", "soc_std", "size_class")


def _pearson(a: pd.Series, b: pd.Series, min_n: int) -> dict[str, Any]:
    ok = np.isfinite(a.to_numpy(float)) & np.isfinite(b.to_numpy(float))
    av, bv = a.to_numpy(float)[ok], b.to_numpy(float)[ok]
    res: dict[str, Any] = {"r": None, "p": None, "n": int(ok.sum()), "reason": None}
    if res["n"] < min_n:
        res["reason"] = f"only {res['n']} particle(s) with finite values; need >= {min_n}"
    elif np.ptp(av) == 0 or np.ptp(bv) == 0:
        res["reason"] = "one of the variables is constant; correlation undefined"
    else:
        r, p = stats.pearsonr(av, bv)
        res["r"], res["p"] = float(r), float(p)
    return res


def _summary(v: NDArray) -> dict[str, Any]:
    v = v[np.isfinite(v)]
    out: dict[str, Any] = {"n": int(v.size), "mean": None, "std": None, "median": None}
    if v.size:
        out["mean"], out["median"] = float(v.mean()), float(np.median(v))
    if v.size >= 2:
        out["std"] = float(v.std(ddof=1))
    out["reason"] = None if v.size >= 2 else f"only {v.size} particle(s) in this group"
    return out


def size_statistics(table: pd.DataFrame, *, min_particles: int = 3) -> dict[str, Any]:
    """Correlations of particle SOC with size and depth; small vs large groups.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`particle_table`.
    min_particles : int, default 3
        Minimum number of particles for a correlation (fewer -> ``None``).

    Returns
    -------
    dict
        ``n_particles``; ``correlations`` with keys ``soc_mean_vs_radius``,
        ``soc_std_vs_radius``, ``soc_mean_vs_depth``, each a dict ``{"r", "p",
        "n", "reason"}`` (Pearson; ``r``/``p`` are None with a ``reason`` when
        unavailable); ``groups`` with ``small`` / ``large`` summaries of
        ``soc_mean`` ``{"n", "mean", "std" (ddof=1), "median", "reason"}``.

    Examples
    --------
    >>> t = pd.DataFrame({"radius_um": [0.5, 1.0, 2.0, 3.0],
    ...                   "soc_mean": [0.1, 0.2, 0.4, 0.6],
    ...                   "soc_std": [0.01, 0.02, 0.02, 0.03],
    ...                   "size_class": ["small", "large", "large", "large"]})
    >>> s = size_statistics(t)
    >>> round(s["correlations"]["soc_mean_vs_radius"]["r"], 3), s["groups"]["large"]["n"]
    (1.0, 3)
    """
    if not isinstance(table, pd.DataFrame):
        raise ValueError(
            f"table must be a pandas.DataFrame, got {type(table).__name__}; "
            "pass the output of particle_table"
        )
    missing = [c for c in _REQUIRED if c not in table.columns]
    if missing:
        raise ValueError(f"table is missing column(s) {missing}; pass the output of particle_table")
    corr = {
        "soc_mean_vs_radius": _pearson(table["soc_mean"], table["radius_um"], min_particles),
        "soc_std_vs_radius": _pearson(table["soc_std"], table["radius_um"], min_particles),
    }
    no_depth = "no depth_um column; pass separator_y_um= to particle_table"
    corr["soc_mean_vs_depth"] = (
        _pearson(table["soc_mean"], table["depth_um"], min_particles)
        if "depth_um" in table.columns
        else {"r": None, "p": None, "n": 0, "reason": no_depth}
    )
    groups = {
        g: _summary(table.loc[table["size_class"] == g, "soc_mean"].to_numpy(float))
        for g in ("small", "large")
    }
    return {"n_particles": len(table), "correlations": corr, "groups": groups}
