"""Checks of the demo's arguments that must fail before anything starts.

A demo with an output path that is a file, or a field of view that cannot fit in
memory, would otherwise fail only after tiled has started and the scan has run
(a traceback, and an aborted run in the catalog). These checks name the problem
and the fix up front.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

__all__ = [
    "DemoInputError",
    "available_memory_bytes",
    "check_demo_inputs",
    "check_output_folder",
    "check_stxm_inputs",
    "demo_memory_bytes",
    "nearest_existing",
]

logger = logging.getLogger(__name__)

#: Peak bytes per pixel of the field of view, per energy point (the frame stack,
#: its absorbance, normalised copy) and fixed (phantom, truth and result maps),
#: and the interpreter with its libraries. Measured from the peak RSS (ru_maxrss)
#: of ``ssb-beamline demo`` (2026-12-06): quick 128 px 590 MiB, quick 256 px
#: 633 MiB, standard 256 px 681 MiB, i.e. 39 B/px per energy + 91 B/px; rounded up.
BYTES_PER_PIXEL_PER_ENERGY = 40.0
BYTES_PER_PIXEL_FIXED = 120.0
BASE_BYTES = 600 * 2**20
#: Smallest field of view the analysis handles (the masks and fits need pixels).
MIN_SIZE_PX = 16
#: Largest detector of the simulated IOC (``SimConfig`` of ``sim_devices.ioc.frames``).
IOC_MAX_SIZE_PX = 4096
#: Raster sizes of the STXM demo (pixels a side).
STXM_SIZE_PX = (8, 512)


class DemoInputError(ValueError):
    """A demo argument that cannot work; the message says why and what to do."""


def check_output_folder(path: Path, option: str = "--out") -> Path:
    """``path`` as a folder figures can be written to, or a :class:`DemoInputError`.

    It may not exist yet; it must not be a file, and no part of it may be a file.

    Parameters
    ----------
    path : pathlib.Path
        The folder (``~`` is expanded); it may not exist yet.
    option : str, default "--out"
        The CLI option that gave it, for the message.

    Returns
    -------
    pathlib.Path
        ``path``, expanded.

    Raises
    ------
    DemoInputError
        If ``path`` or a parent is a file, or the nearest existing parent is not
        writable.
    """
    path = Path(path).expanduser()
    part = nearest_existing(path)
    if part is not None:
        if not part.is_dir():
            raise DemoInputError(
                f"{option} {path} cannot be a folder: {part} is a file. Give a folder "
                f"(new or existing), e.g. {option} {path.with_suffix('')}-figures."
            )
        if not os.access(part, os.W_OK | os.X_OK):
            raise DemoInputError(
                f"{option} {path}: {part} is not writable. Give a folder you can write to."
            )
        _try_to_write(part, path, option)
    return path


def _try_to_write(folder: Path, path: Path, option: str) -> None:
    """Make, and remove, a file in ``path`` or its first missing folder in ``folder``.

    ``os.access`` says yes to root where the file system refuses (``/proc``, a
    read-only mount): the figures would fail only once the scan is done.
    """
    try:
        if folder == path:
            with tempfile.TemporaryFile(dir=folder):
                pass
        else:
            probe = folder / path.relative_to(folder).parts[0]
            probe.mkdir()
            probe.rmdir()
    except FileExistsError:  # made meanwhile: it is a folder, or the figures say so
        pass
    except OSError as exc:
        raise DemoInputError(
            f"{option} {path}: cannot write in {folder} ({exc.strerror or exc}). "
            "Give a folder you can write to."
        ) from exc


def nearest_existing(path: Path) -> Path | None:
    """``path`` if it exists, else its nearest existing parent (None if none exists).

    Parameters
    ----------
    path : pathlib.Path
        A file or folder that may not exist yet.

    Examples
    --------
    >>> nearest_existing(Path("/") / "no-such-folder" / "below")
    PosixPath('/')
    """
    return next((part for part in (path, *path.parents) if part.exists()), None)


def demo_memory_bytes(size: int, preset: str) -> int:
    """Estimated peak memory (bytes) of a demo of ``size`` x ``size`` px and ``preset``.

    Parameters
    ----------
    size : int
        Phantom width and height, pixels.
    preset : str
        Energy-grid preset; an unknown name is counted as ``"full"``.
    """
    # imported here: `show`/`report` check their --out folder without importing the plans
    from ssb_beamline.plans.energy_grids import NI_K_EDGE_PRESETS

    n_energies = sum(NI_K_EDGE_PRESETS.get(preset, NI_K_EDGE_PRESETS["full"]))
    per_pixel = BYTES_PER_PIXEL_FIXED + BYTES_PER_PIXEL_PER_ENERGY * n_energies
    return BASE_BYTES + int(size) * int(size) * int(per_pixel)


def available_memory_bytes() -> int | None:
    """Memory this process may still use: MemAvailable, capped by a cgroup limit (or None)."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit != "max":
            headroom = int(limit) - used
            available = headroom if available is None else min(available, headroom)
    except (OSError, ValueError):
        pass
    return available


def check_demo_inputs(
    *, out_dir: Path, size: int, preset: str, max_size: int | None = None, what: str = "demo"
) -> None:
    """Raise :class:`DemoInputError` for arguments that cannot work, before any set-up.

    Parameters
    ----------
    out_dir : pathlib.Path
        Folder for the figures (``--out``); see :func:`check_output_folder`.
    size : int
        Phantom width and height, pixels; a whole number >= 16 (default of the CLI:
        512).
    preset : str
        Energy-grid preset (``"full"``, ``"quick"``, ...); with ``size`` it sets the
        memory estimate, which must fit the available memory.
    max_size : int, optional
        Largest ``size`` (the simulated IOC's detector: :data:`IOC_MAX_SIZE_PX`).
    what : str, default "demo"
        The demo named in the messages (``"EPICS demo"``).

    Raises
    ------
    DemoInputError
        If the folder cannot be written, ``size`` is not a whole number >= 16, or the
        demo would not fit in memory (the message gives a ``--size`` that fits).
    """
    check_output_folder(out_dir)
    if not isinstance(size, int) or size < MIN_SIZE_PX:
        raise DemoInputError(
            f"--size must be a whole number of pixels >= {MIN_SIZE_PX}; got {size!r}. "
            "The default is 512."
        )
    if max_size is not None and size > max_size:
        raise DemoInputError(
            f"--size must be {MIN_SIZE_PX}..{max_size} pixels for the {what} (the simulated "
            f"IOC's detector); got {size}. The default is 512."
        )
    needed = demo_memory_bytes(size, preset)
    available = available_memory_bytes()
    if available is not None and needed > available:
        per_pixel = (needed - BASE_BYTES) / size**2
        fits = int((max(available - BASE_BYTES, 0) / per_pixel) ** 0.5)
        raise DemoInputError(
            f"A {size} x {size} px {what} with the {preset!r} preset needs about "
            f"{needed / 2**30:.1f} GiB of memory; only {available / 2**30:.1f} GiB is "
            f"available. Use --size {max(MIN_SIZE_PX, fits // 16 * 16)} or less (or a "
            "shorter --preset)."
        )
    logger.debug("demo memory estimate %.2f GiB (available %s)", needed / 2**30, available)


def check_stxm_inputs(*, out_dir: Path, size: int) -> None:
    """Raise :class:`DemoInputError` for STXM demo arguments that cannot work.

    Parameters
    ----------
    out_dir : pathlib.Path
        Folder for the figures (``--out``); see :func:`check_output_folder`.
    size : int
        Raster pixels a side, within :data:`STXM_SIZE_PX` (a few MB: no memory check).
    """
    check_output_folder(out_dir)
    low, high = STXM_SIZE_PX
    if not isinstance(size, int) or not low <= size <= high:
        raise DemoInputError(
            f"--size must be {low}..{high} raster pixels for the STXM demo, got {size!r}."
        )
