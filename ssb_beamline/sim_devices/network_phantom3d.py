"""3D conductive-network phantom: NMC, SSE, graphite *and* carbon fibres, truth SOC field.

The geometry (NMC spheres, a few touching; SSE in the pores; wrinkled graphite
flakes) comes from :func:`~ssb_beamline.sim_devices.phantom3d.make_phantom3d`;
straight carbon fibres are added through the free (pore) voxels.  The SOC field
then follows the paper's diffusion-distance model (Deng et al. 2025, Fig. 4):

``soc = particle_mean + strength * (combined - 0.5) + noise``

where ``combined`` is the truth combined impedance, computed here *independently
of* :mod:`ssb_beamline.analysis` (sim_devices never imports analysis code): the
Li+ / e- distances are brute-force Dijkstra shortest paths through the 26-connected
voxel graph of each particle (``scipy.sparse.csgraph.dijkstra``, steps of 1,
sqrt 2, sqrt 3 voxels) from its NMC-SSE / NMC-carbon contact voxels (NMC voxels
face-adjacent to the phase).  Per particle: ``li_norm = li / max``, ``e_norm = e /
max``, ``combined`` = ``li_norm + e_norm`` min-max rescaled to [0, 1]; the
core-shell model is the same path distance to the particle surface (voxels face
adjacent to anything else; the volume border is no surface) over its max.
Phase codes are the analysis' ``Phase`` values: VOID 0, NMC 1, SSE 2, CARBON 3.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from .phantom import Phantom
from .phantom3d import Phantom3D, Phantom3DConfig, make_phantom3d
from .phantom_config import SOC_CLIP, PhantomConfig
from .refraction import electron_density_per_nm3, nmc_electron_density
from .xray_physics import truth_edge_energy

__all__ = [
    "NetworkPhantom3D",
    "NetworkPhantomConfig",
    "geodesic_contact_distances",
    "make_network_phantom",
    "projected_phantom",
]

logger = logging.getLogger(__name__)

VOID, NMC, SSE, CARBON = 0, 1, 2, 3
_FACES = [(1, 0, 0), (0, 1, 0), (0, 0, 1)]
#: Half of the 26 neighbour offsets (the other half are their negatives).
_HALF26 = [
    (dz, dy, dx)
    for dz in (-1, 0, 1)
    for dy in (-1, 0, 1)
    for dx in (-1, 0, 1)
    if (dz, dy, dx) > (0, 0, 0)
]


@dataclass(frozen=True)
class NetworkPhantomConfig:
    """A 3D phantom with both e- channels (graphite flakes and carbon fibres).

    Parameters
    ----------
    base : Phantom3DConfig
        Geometry of NMC, SSE and graphite (``carbon_form`` must be "graphite").
    n_fibres : int
        Straight carbon fibres added through the pores.
    fibre_diameter_um : float
        Fibre diameter, um.
    polarisation_strength : float
        SOC change from combined impedance 0 to 1 (positive: high impedance stays
        charged, as measured in the paper).
    soc_noise_sigma : float
        Per-voxel SOC noise.
    """

    base: Phantom3DConfig = field(
        default_factory=lambda: Phantom3DConfig(
            shape=(48, 64, 64), radius_range_um=(0.6, 1.2), n_particles=10,
            touching_fraction=0.0, sse_fraction=0.25, carbon_fraction=0.04,
            carbon_thickness_um=0.4, seed=3,
        )
    )  # fmt: skip
    n_fibres: int = 3
    fibre_diameter_um: float = 0.4
    polarisation_strength: float = 0.3
    soc_noise_sigma: float = 0.01

    def __post_init__(self) -> None:
        if self.base.carbon_form != "graphite":
            raise ValueError("base.carbon_form must be 'graphite' (fibres are added here)")
        if self.n_fibres < 0 or self.fibre_diameter_um < self.base.voxel_size_um:
            raise ValueError("n_fibres must be >= 0 and fibre_diameter_um >= the voxel size")


@dataclass
class NetworkPhantom3D:
    """A :class:`Phantom3D` (truth SOC applied) plus the truth of the network model.

    ``li_distance_um``, ``e_distance_um``, ``core_shell_um`` are path distances
    (float32, NaN outside NMC and in particles without that contact);
    ``combined`` and ``core_shell`` the normalised models; ``fibres`` marks the
    carbon-fibre voxels (the other carbon voxels are graphite).
    """

    phantom: Phantom3D
    li_distance_um: np.ndarray
    e_distance_um: np.ndarray
    core_shell_um: np.ndarray
    combined: np.ndarray
    core_shell: np.ndarray
    fibres: np.ndarray


def _shift_pairs(mask: np.ndarray, off: tuple[int, int, int]) -> tuple[tuple, tuple]:
    """Slices ``a, b`` with ``a`` the voxels whose ``+off`` neighbour is ``b``."""
    a = tuple(slice(max(-o, 0), n - max(o, 0)) for o, n in zip(off, mask.shape, strict=True))
    b = tuple(slice(max(o, 0), n - max(-o, 0)) for o, n in zip(off, mask.shape, strict=True))
    return a, b


def _graph(labels: np.ndarray, vox: float) -> tuple[sparse.csr_matrix, np.ndarray]:
    """26-connected graph of the voxels with a label, edges only inside one label."""
    flat = np.flatnonzero(labels)
    node = np.full(labels.size, -1, np.int64)
    node[flat] = np.arange(flat.size)
    node = node.reshape(labels.shape)
    rows, cols, w = [], [], []
    for off in _HALF26:
        a, b = _shift_pairs(labels, off)
        same = (labels[a] > 0) & (labels[a] == labels[b])
        rows.append(node[a][same])
        cols.append(node[b][same])
        w.append(np.full(rows[-1].size, vox * np.sqrt(np.dot(off, off))))
    r, c, ww = (np.concatenate(x) for x in (rows, cols, w))
    g = sparse.coo_matrix((ww, (r, c)), shape=(flat.size, flat.size)).tocsr()
    return g, flat


def _face_adjacent(mask: np.ndarray) -> np.ndarray:
    """Voxels with a face neighbour in ``mask``."""
    out = np.zeros(mask.shape, bool)
    for off in _FACES:
        a, b = _shift_pairs(mask, off)
        out[a] |= mask[b]
        out[b] |= mask[a]
    return out


def _surface(labels: np.ndarray) -> np.ndarray:
    out = np.zeros(labels.shape, bool)
    for off in _FACES:
        a, b = _shift_pairs(labels, off)
        d = labels[a] != labels[b]
        out[a] |= d
        out[b] |= d
    return out & (labels > 0)


def geodesic_contact_distances(
    phases: np.ndarray, labels: np.ndarray, voxel_size_um: float
) -> dict[str, np.ndarray]:
    """Truth distances by Dijkstra inside each particle (see module docstring).

    Returns float32 volumes ``li``, ``e``, ``cs`` (um; NaN outside NMC or where a
    particle has no such contact) and the normalised ``combined`` and ``core_shell``.

    Examples
    --------
    >>> ph = np.full((3, 3, 6), NMC, np.uint8); ph[..., 0] = SSE; ph[..., -1] = CARBON
    >>> lab = (ph == NMC).astype(np.int32)
    >>> d = geodesic_contact_distances(ph, lab, 1.0)
    >>> d["li"][1, 1, 1:5].tolist(), d["e"][1, 1, 1:5].tolist()
    ([0.0, 1.0, 2.0, 3.0], [3.0, 2.0, 1.0, 0.0])
    """
    lab = np.where(phases == NMC, labels, 0).astype(np.int64)
    g, flat = _graph(lab, float(voxel_size_um))
    lab_n = lab.ravel()[flat]
    targets = {
        "li": _face_adjacent(phases == SSE),
        "e": _face_adjacent(phases == CARBON),
        "cs": _surface(lab),
    }
    out: dict[str, np.ndarray] = {}
    norm: dict[str, np.ndarray] = {}
    n_lab = int(lab.max()) + 1
    for key, t in targets.items():
        src = np.flatnonzero(t.ravel()[flat])
        d = np.full(flat.size, np.inf)
        if src.size:
            d = csgraph.dijkstra(g, directed=False, indices=src, min_only=True)
        d[~np.isfinite(d)] = np.nan
        vol = np.full(lab.size, np.nan, np.float32)
        vol[flat] = d
        out[key] = vol.reshape(lab.shape)
        dmax = np.full(n_lab, np.nan)
        ok = np.isfinite(d)
        np.fmax.at(dmax, lab_n[ok], d[ok])
        with np.errstate(invalid="ignore", divide="ignore"):
            norm[key] = np.where(dmax[lab_n] > 0, d / dmax[lab_n], 0.0)
        norm[key][~ok] = np.nan
    c = norm["li"] + norm["e"]
    lo, hi = np.full(n_lab, np.inf), np.full(n_lab, -np.inf)
    ok = np.isfinite(c)
    np.minimum.at(lo, lab_n[ok], c[ok])
    np.maximum.at(hi, lab_n[ok], c[ok])
    span = hi[lab_n] - lo[lab_n]
    with np.errstate(invalid="ignore", divide="ignore"):
        comb = np.where(span > 0, (c - lo[lab_n]) / span, 0.0)
    comb[~ok] = np.nan
    for key, v in (("combined", comb), ("core_shell", norm["cs"])):
        vol = np.full(lab.size, np.nan, np.float32)
        vol[flat] = v
        out[key] = vol.reshape(lab.shape)
    return out


def _fibres(cfg: NetworkPhantomConfig, free: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Straight cylinders through the volume, in free voxels only."""
    shape = np.array(free.shape, float)
    radius = cfg.fibre_diameter_um / cfg.base.voxel_size_um / 2
    zz, yy, xx = np.indices(free.shape, dtype=np.float32)
    out = np.zeros(free.shape, bool)
    for _ in range(cfg.n_fibres):
        p = rng.uniform(0.2, 0.8, 3) * shape
        d = rng.normal(size=3)
        d[0] *= 0.3  # mostly lying in the electrode plane
        d /= np.linalg.norm(d)
        rel = (zz - p[0], yy - p[1], xx - p[2])
        along = rel[0] * d[0] + rel[1] * d[1] + rel[2] * d[2]
        dist2 = rel[0] ** 2 + rel[1] ** 2 + rel[2] ** 2 - along**2
        out |= dist2 <= radius**2
    return out & free


def make_network_phantom(config: NetworkPhantomConfig | None = None) -> NetworkPhantom3D:
    """Generate the network phantom (deterministic for a given config).

    Examples
    --------
    >>> cfg = NetworkPhantomConfig(base=Phantom3DConfig(shape=(24, 32, 32),
    ...     radius_range_um=(0.5, 0.7), n_particles=3, seed=1))
    >>> net = make_network_phantom(cfg)
    >>> net.phantom.phases.shape, bool(np.isfinite(net.combined).any())
    ((24, 32, 32), True)
    """
    cfg = config or NetworkPhantomConfig()
    base = make_phantom3d(cfg.base)
    rng = np.random.default_rng(cfg.base.seed + 1)
    phases = base.phases.copy()
    fibres = _fibres(cfg, phases == VOID, rng)
    phases[fibres] = CARBON
    truth = geodesic_contact_distances(phases, base.labels, cfg.base.voxel_size_um)
    nmc = phases == NMC
    lab = base.labels[nmc]
    mean = base.particles["soc_target"].to_numpy()[lab - 1]
    term = np.nan_to_num(truth["combined"][nmc] - 0.5)  # particles w/o a contact: flat
    noise = rng.normal(0, cfg.soc_noise_sigma, lab.size)
    soc = np.full(phases.shape, np.nan, np.float32)
    soc[nmc] = np.clip(mean + cfg.polarisation_strength * term + noise, *SOC_CLIP)
    density = base.electron_density.copy()
    density[nmc] = nmc_electron_density(soc[nmc])
    density[fibres] = electron_density_per_nm3("C", cfg.base.carbon_density_g_cm3)  # as projected
    phantom = dataclasses.replace(
        base, phases=phases, soc=soc, electron_density=density,
        oxidation_state=(2.0 + soc).astype(np.float32),
        edge_energy=truth_edge_energy(soc).astype(np.float32),
    )  # fmt: skip
    logger.debug("network phantom %s: %d fibre voxels", phases.shape, int(fibres.sum()))
    return NetworkPhantom3D(
        phantom, truth["li"], truth["e"], truth["cs"], truth["combined"],
        truth["core_shell"], fibres,
    )  # fmt: skip


def projected_phantom(phantom3d: Phantom3D, *, axis: int = 1) -> Phantom:
    """The 2D TXM sample of a 3D phantom's field of view: its projection along the beam.

    What a 2D XANES scan of the same sample at rotation angle 0 sees: per pixel
    the thickness of each phase along the beam (``axis``, the volume's Y), and
    the NMC-thickness-weighted mean SOC of the ray (absorbance is linear in it).
    The labels are the first particle on the ray; the per-particle truth (SOC,
    radius, centre) comes from the 3D table.  The grid is the volume's ``(Z, X)``
    at its voxel size, i.e. the 2D image is registered to the 3D volume.

    Parameters
    ----------
    phantom3d : Phantom3D
        The 3D sample as the tomography detector sees it (e.g. ``session.phantom``).
    axis : int
        The beam axis of the volume at rotation angle 0.

    Returns
    -------
    Phantom
        The 2D sample for :func:`~ssb_beamline.sim_devices.factory.make_sim_txm`.

    Examples
    --------
    >>> cfg = NetworkPhantomConfig(base=Phantom3DConfig(shape=(24, 32, 32),
    ...     radius_range_um=(0.5, 0.7), n_particles=3, seed=1))
    >>> ph2 = projected_phantom(make_network_phantom(cfg).phantom)
    >>> ph2.shape, bool(ph2.thickness_nmc_um.max() > 0.5)
    ((24, 32), True)
    """
    vox = phantom3d.config.voxel_size_um
    ph, lab3 = phantom3d.phases, phantom3d.labels
    thick = {k: (ph == k).sum(axis=axis).astype(np.float32) * np.float32(vox)
             for k in (NMC, SSE, CARBON)}  # fmt: skip
    nmc = ph == NMC
    soc_sum = np.where(nmc, np.nan_to_num(phantom3d.soc), 0).sum(axis=axis)
    n_nmc = nmc.sum(axis=axis)
    soc = np.where(n_nmc > 0, soc_sum / np.maximum(n_nmc, 1), 0).astype(np.float32)
    first = np.argmax(nmc, axis=axis)
    labels = np.take_along_axis(np.where(nmc, lab3, 0), np.expand_dims(first, axis), axis)
    labels = np.squeeze(labels, axis).astype(np.int32)
    phase = np.full(labels.shape, VOID, np.uint8)
    phase[thick[SSE] > 0] = SSE
    phase[thick[CARBON] > thick[SSE]] = CARBON
    phase[n_nmc > 0] = NMC
    table = phantom3d.particles
    n = len(table)

    def per_particle(values, fill=np.nan) -> np.ndarray:
        out = np.full(n + 1, fill, np.float64)
        out[table.index.to_numpy()] = np.asarray(values, np.float64)
        return out

    keep = [i for i in range(3) if i != axis]
    centre = np.full((n + 1, 2), np.nan)
    centre[table.index.to_numpy()] = table[["z", "y", "x"]].to_numpy()[:, keep]
    cfg3 = phantom3d.config
    config = PhantomConfig(shape=labels.shape, pixel_size_um=vox,
                           radius_range_um=cfg3.radius_range_um, n_particles=n,
                           seed=cfg3.seed)  # fmt: skip
    no_contact = np.zeros(labels.shape, bool)
    return Phantom(
        config=config, phase=phase, labels=labels, thickness_nmc_um=thick[NMC],
        thickness_sse_um=thick[SSE], thickness_carbon_um=thick[CARBON], soc=soc,
        contact_sse=no_contact, contact_carbon=no_contact.copy(),
        particle_center_px=centre, particle_radius_um=per_particle(table["radius_um"]),
        particle_soc_target=per_particle(table["soc_target"]),
        particle_soc_mean=per_particle(table["soc_mean"]),
        particle_soc_std=per_particle(table["soc_std"]),
        polarisation_direction=np.full((n + 1, 2), np.nan),
        polarisation_offset_um=np.full(n + 1, np.nan),
    )  # fmt: skip
