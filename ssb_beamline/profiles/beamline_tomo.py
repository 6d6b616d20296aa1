"""Tomography and holotomography plans on a beamline-file session.

The same plans as :class:`~ssb_beamline.profiles.simulated_tomo.SimulatedTomography`
builds on the simulator (``tomo_scan``, ``xanes_tomo_scan``, ``holotomo_scan``), with
the sample-out position, pixel size, focus model and cone-beam geometry taken from
the beamline file; the live tomography analysis is subscribed by
``beamline_session(..., analysis="tomo")``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ssb_beamline.plans.holotomo import holotomo_scan
from ssb_beamline.plans.tomo import tomo_scan
from ssb_beamline.plans.xanes_tomo import xanes_tomo_scan
from ssb_beamline.sim_devices.projection_model import HoloGeometry

if TYPE_CHECKING:
    from ssb_beamline.profiles.beamline import EpicsBeamline

__all__ = ["holotomo_plan", "tomo_plan", "xanes_tomo_plan"]

#: Default fly-scan exposure, s.
FLY_EXPOSURE_S = 0.04


def _common(session: EpicsBeamline, sample: Mapping[str, Any] | None, holo: bool = False):
    config = session.beamline.config  # type: ignore[union-attr]
    pixel = (config.holo.pixel_size_um if holo else None) or config.focus.pixel_size_um
    return {
        "sample_out": config.sample_out_x,
        "pixel_size_um": pixel,
        "sample": dict(sample or {"name": f"sample on {config.name}"}),
    }


def tomo_plan(session: EpicsBeamline, angles: Any = (0.0, 180.0, 61), *, mode: str = "fly",
              exposure_time: float = FLY_EXPOSURE_S, n_dark: int = 5, n_flat: int = 5,
              sample: Mapping[str, Any] | None = None, **kwargs: Any):  # fmt: skip
    """A ``tomo_scan`` plan at the current energy.

    Parameters
    ----------
    session : EpicsBeamline
        A connected beamline-file session (:func:`beamline_session`); its file gives
        the sample-out position, the pixel size and (holo) the cone-beam geometry.
    angles : list of float or (start, stop, num), default (0.0, 180.0, 61)
        Rotation angles, degrees; must cover 180 degrees (fly mode: evenly spaced).
        Checked when the plan is built: bad angles raise ``ValueError`` before anything
        moves.
    mode : {"fly", "step"}, default "fly"
        ``"fly"``: the rotation sweeps at constant speed while the camera runs;
        ``"step"``: move, settle, expose at each angle (keyword only).
    exposure_time : float, default 0.04
        Exposure per frame, s (> 0).
    n_dark, n_flat : int, default 5
        Number of dark frames (shutter closed) and flat frames (sample out), >= 1.
    sample : mapping, optional
        Description of the sample for the start document (``name``, ...); None:
        ``{"name": "sample on <beamline name>"}``.
    **kwargs
        Passed to the plan (``deadtime``, ``lead_time``, ``baseline``, ``md``, ...;
        see :func:`~ssb_beamline.plans.tomo_scan`).

    Returns
    -------
    generator
        The ``tomo_scan`` plan at the current energy, for ``session.RE``.
    """
    t = session.txm
    return tomo_scan(t.detector, t.sample.rotation, t.sample.x, t.shutter, t.i0, angles,
                     mode=mode, exposure_time=exposure_time, n_dark=n_dark, n_flat=n_flat,
                     energy=t.energy, **_common(session, sample), **kwargs)  # fmt: skip


def xanes_tomo_plan(session: EpicsBeamline, energies: Sequence[float],
                    angles: Any = (0.0, 180.0, 61), *, mode: str = "fly",
                    exposure_time: float = FLY_EXPOSURE_S, n_dark: int = 5, n_flat: int = 5,
                    sample: Mapping[str, Any] | None = None, **kwargs: Any):  # fmt: skip
    """A ``xanes_tomo_scan`` plan with the file's focus model.

    Parameters
    ----------
    session : EpicsBeamline
        A connected beamline-file session (:func:`beamline_session`); its file gives
        the sample-out position, the pixel size and (holo) the cone-beam geometry.
    energies : sequence of float
        Energies of the tomograms, eV; each must lie in the file's
        ``limits.energy_ev`` and its focus positions in ``zp_z_mm`` / ``det_z_mm``
        (``ValueError`` naming the file line otherwise, nothing moved).
    angles : list of float or (start, stop, num), default (0.0, 180.0, 61)
        Rotation angles, degrees; must cover 180 degrees (fly mode: evenly spaced).
        Checked when the plan is built: bad angles raise ``ValueError`` before anything
        moves.
    mode : {"fly", "step"}, default "fly"
        ``"fly"``: the rotation sweeps at constant speed while the camera runs;
        ``"step"``: move, settle, expose at each angle (keyword only).
    exposure_time : float, default 0.04
        Exposure per frame, s (> 0).
    n_dark, n_flat : int, default 5
        Number of dark frames (shutter closed) and flat frames (sample out), >= 1.
    sample : mapping, optional
        Description of the sample for the start document (``name``, ...); None:
        ``{"name": "sample on <beamline name>"}``.
    **kwargs
        Passed to the plan (``deadtime``, ``lead_time``, ``baseline``, ``md``, ...;
        see :func:`~ssb_beamline.plans.tomo_scan`).

    Returns
    -------
    generator
        The ``xanes_tomo_scan`` plan, zone plate and detector following the file's
        focus model.
    """
    t = session.txm
    session.check_limits([float(e) for e in energies])
    return xanes_tomo_scan(t.detector, t.energy, t.zp_z, t.det_z, t.sample.rotation,
                           t.sample.x, t.shutter, t.i0, energies, angles, focus=session.focus,
                           mode=mode, exposure_time=exposure_time, n_dark=n_dark,
                           n_flat=n_flat, **_common(session, sample), **kwargs)  # fmt: skip


def holotomo_plan(session: EpicsBeamline, angles: Any = (0.0, 180.0, 91),
                  distances_mm: Sequence[float] = (0.15,), *, mode: str = "fly",
                  exposure_time: float = FLY_EXPOSURE_S, n_dark: int = 5, n_flat: int = 5,
                  sample: Mapping[str, Any] | None = None,
                  md: Mapping[str, Any] | None = None, **kwargs: Any):  # fmt: skip
    """A ``holotomo_scan`` plan; effective distances from the file's cone-beam geometry.

    ``md`` may carry ``delta_beta`` (Paganin) and ``separator_index`` as on the simulator.

    Parameters
    ----------
    session : EpicsBeamline
        A connected beamline-file session (:func:`beamline_session`); its file gives
        the sample-out position, the pixel size and (holo) the cone-beam geometry.
    angles : list of float or (start, stop, num), default (0.0, 180.0, 91)
        Rotation angles, degrees; must cover 180 degrees (fly mode: evenly spaced).
        Checked when the plan is built: bad angles raise ``ValueError`` before anything
        moves.
    distances_mm : sequence of float, default (0.15,)
        1 to 4 distinct focus-to-sample distances of the ``holo_distance`` axis, mm;
        the effective propagation distances (m) follow from the file's
        ``holo.focus_to_detector_mm`` (parallel beam when it is absent).
    mode : {"fly", "step"}, default "fly"
        ``"fly"``: the rotation sweeps at constant speed while the camera runs;
        ``"step"``: move, settle, expose at each angle (keyword only).
    exposure_time : float, default 0.04
        Exposure per frame, s (> 0).
    n_dark, n_flat : int, default 5
        Number of dark frames (shutter closed) and flat frames (sample out), >= 1.
    sample : mapping, optional
        Description of the sample for the start document (``name``, ...); None:
        ``{"name": "sample on <beamline name>"}``.
    md : mapping, optional
        Extra start-document metadata; ``delta_beta`` (needed by Paganin retrieval)
        and ``separator_index`` are read by the live analysis.
    **kwargs
        Passed to the plan (``deadtime``, ``lead_time``, ``baseline``, ``md``, ...;
        see :func:`~ssb_beamline.plans.tomo_scan`).

    Returns
    -------
    generator
        The ``holotomo_scan`` plan.

    Raises
    ------
    ValueError
        If the beamline file has no ``devices.holo_distance`` (add it to the file).
    """
    t = session.txm
    if t.holo_z is None:
        raise ValueError(
            f"{session.beamline.path} has no devices.holo_distance: holotomography "  # type: ignore[union-attr]
            "needs the propagation-distance axis. Add it to the beamline file."
        )
    focus_to_detector = session.beamline.config.holo.focus_to_detector_mm  # type: ignore[union-attr]
    geometry = HoloGeometry(None if focus_to_detector is None else focus_to_detector * 1e-3)
    effective = [geometry.effective_distance_m(z) for z in distances_mm]
    return holotomo_scan(t.detector, t.sample.rotation, t.holo_z, t.sample.x, t.shutter, t.i0,
                         angles, list(distances_mm), mode=mode, exposure_time=exposure_time,
                         n_dark=n_dark, n_flat=n_flat, energy=t.energy,
                         propagation_distances_m=effective, md=dict(md or {}),
                         **_common(session, sample, holo=True), **kwargs)  # fmt: skip
