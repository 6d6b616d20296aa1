"""End to end: a XANES energy scan with tracked focus recovers the truth edge map."""

from __future__ import annotations

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import h5py
import numpy as np
from ophyd_async.plan_stubs import ensure_connected
from scipy import ndimage

from ssb_beamline.sim_devices import DATA_PATH, PhantomConfig, make_sim_txm

ENERGIES = np.concatenate(
    [np.arange(8300.0, 8330.0, 10.0), np.arange(8330.0, 8361.0, 1.0), np.arange(8370, 8451, 20.0)]
)


def _edge_energy(norm: np.ndarray, energies: np.ndarray) -> np.ndarray:
    """First 0.5 crossing along axis 0, linearly interpolated."""
    idx = np.clip(np.argmax(norm >= 0.5, axis=0), 1, None)
    y0 = np.take_along_axis(norm, idx[None] - 1, 0)[0]
    y1 = np.take_along_axis(norm, idx[None], 0)[0]
    frac = (0.5 - y0) / np.where(y1 > y0, y1 - y0, np.nan)
    return energies[idx - 1] + frac * (energies[idx] - energies[idx - 1])


def test_xanes_scan_recovers_edge_energies(RE, tmp_path):
    config = PhantomConfig(
        shape=(128, 128),
        n_particles=6,
        radius_range_um=(1.5, 3.5),
        soc_size_slope_per_um=-0.2,
        seed=7,
    )
    txm = make_sim_txm(config, directory=tmp_path)
    RE(ensure_connected(*txm.devices))
    RE(bps.mv(txm.energy.velocity, 1000.0, txm.zp_z.velocity, 50.0))
    det = txm.detector

    @bpp.stage_decorator([det])
    @bpp.run_decorator()
    def scan():
        yield from bps.mv(txm.shutter, "Closed")
        yield from bps.trigger_and_read([det], name="dark")
        yield from bps.mv(txm.shutter, "Open")
        for e in ENERGIES:
            lo = yield from bps.rd(txm.energy.low_limit_travel)
            hi = yield from bps.rd(txm.energy.high_limit_travel)
            assert lo <= e <= hi
            fp = txm.focus_positions(e)
            yield from bps.mv(
                txm.energy, e, txm.zp_z, fp.zp_z_mm, txm.det_z, fp.det_z_mm,
                txm.sample.x, txm.sample_out_x_um,
            )  # fmt: skip
            yield from bps.trigger_and_read([det, txm.energy, txm.i0], name="flat")
            yield from bps.mv(txm.sample.x, 0.0)
            yield from bps.trigger_and_read([det, txm.energy, txm.i0], name="primary")

    RE(scan())
    (path,) = tmp_path.glob("*.h5")
    with h5py.File(path) as f:
        frames = f[DATA_PATH][()].astype(float)
    assert frames.shape == (1 + 2 * len(ENERGIES), 128, 128)
    dark = frames[0]
    flat, image = frames[1::2], frames[2::2]
    absorb = -np.log(np.clip(image - dark, 1, None) / np.clip(flat - dark, 1, None))
    pre = absorb[ENERGIES < 8325].mean(0)
    post = absorb[ENERGIES > 8365].mean(0)
    norm = (absorb - pre) / (post - pre)
    measured = _edge_energy(norm, ENERGIES)

    truth = txm.truth_edge_energy_map()
    labels = np.where(txm.phantom.thickness_nmc_um > 2.0, txm.phantom.labels, 0)
    ids = np.unique(labels[labels > 0])
    m_mean = np.array(ndimage.median(measured, labels, ids))
    t_mean = np.array(ndimage.mean(truth, labels, ids))
    assert np.all(np.abs(m_mean - t_mean) < 0.15)
    assert np.corrcoef(m_mean, t_mean)[0, 1] > 0.8
