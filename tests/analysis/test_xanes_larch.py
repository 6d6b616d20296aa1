"""Agreement with xraylarch's ``pre_edge`` on single spectra (synthetic and real files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from xanes_synth import mu_stack, scan_energies

from ssb_beamline.analysis import find_e0, normalize_stack

larch_xafs = pytest.importorskip(
    "larch.xafs",
    reason="xraylarch is not importable; install the test extra: pip install -e '.[test]'",
)
larch = pytest.importorskip("larch")

DATA = Path(__file__).resolve().parents[1] / "data" / "ni-k-edge"


def _larch(energy, mu, **kws):
    g = larch.Group(energy=np.asarray(energy, float), mu=np.asarray(mu, float))
    larch_xafs.pre_edge(g, **kws)
    return g


def _nio_merged():
    d = np.loadtxt(DATA / "derived" / "NiO_merged_from_NiO_prj.dat")
    return d[:, 0], d[:, 1]


def _xdi(name):
    d = np.loadtxt(DATA / name)
    return d[:, 0], np.log(d[:, 1] / d[:, 2])


def _synthetic(kind):
    rng = np.random.default_rng(7)
    if kind == "sparse":
        e = np.concatenate(
            [
                np.arange(8300.0, 8330.0, 5.0),
                np.arange(8330.0, 8360.0, 1.0),
                np.arange(8360, 8451, 6.0),
            ]
        )
    else:
        e = scan_energies()
    mu = mu_stack(e, 0.4, 0.6)
    if kind == "noisy":
        mu = mu + rng.normal(0.0, 0.004, mu.shape)
    return e, mu


CASES = {
    "NiO merged (real, NIST X23A2)": _nio_merged,
    "Ni(OH)2 (real, SSRL xdi)": lambda: _xdi("NiOH2_rt_01.xdi"),
    "NiO merged cut to 8300-8450 eV": lambda: _cut(*_nio_merged()),
    "mixture noiseless": lambda: _synthetic("clean"),
    "mixture noisy": lambda: _synthetic("noisy"),
    "mixture sparse": lambda: _synthetic("sparse"),
}


def _cut(e, mu, lo=8300.0, hi=8450.0):
    sel = (e >= lo) & (e <= hi)
    return e[sel], mu[sel]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("case", list(CASES))
def test_e0_matches_larch(case):
    e, mu = CASES[case]()
    g = _larch(e, mu)
    assert find_e0(e, mu) == pytest.approx(g.e0, abs=0.5)


def _larch_bounds(e, e0, lo, hi):
    """larch (pre1, pre2) selecting exactly the samples lo <= E <= hi (E[-1] excluded).

    larch fits ``mu[index_of(E, e0 + pre1) : index_nearest(E, e0 + pre2)]``: the
    upper sample is exclusive, so it is given as the next sample's energy.
    """
    idx = np.flatnonzero((e >= lo) & (e <= hi) & (np.arange(e.size) < e.size - 1))
    return e[idx[0]] - e0, e[idx[-1] + 1] - e0, (e[idx[0]], e[idx[-1]])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("case", list(CASES))
def test_normalisation_matches_larch(case):
    e, mu = CASES[case]()
    e0 = _larch(e, mu).e0
    # our default ranges for the short TXM-like scans; larch's own for the long real scans
    if e[-1] - e[0] > 400:
        det = _larch(e, mu, e0=e0).pre_edge_details
        pre = (e0 + det.pre1, e0 + det.pre2)
        post = (e0 + det.norm1, e0 + det.norm2)
        nnorm = int(det.nnorm)
    else:
        res0 = normalize_stack(mu, e, e0=e0)
        pre, post, nnorm = res0.pre_range, res0.post_range, res0.nnorm
    pre1, pre2, pre = _larch_bounds(e, e0, *pre)
    norm1, norm2, post = _larch_bounds(e, e0, *post)
    ours = normalize_stack(mu, e, e0=e0, pre=pre, post=post, nnorm=nnorm)
    g = _larch(e, mu, e0=e0, pre1=pre1, pre2=pre2, norm1=norm1, norm2=norm2, nnorm=nnorm)
    # larch evaluates the step at the sample nearest e0, we at e0 itself
    assert float(ours.edge_step) == pytest.approx(g.edge_step, rel=0.02)
    assert np.max(np.abs(ours.norm - g.norm)) < 0.02
