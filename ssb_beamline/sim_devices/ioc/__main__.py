"""``python -m ssb_beamline.sim_devices.ioc --prefix P [--data-dir D] [--port N] ...``.

Serves the simulated TXM over Channel Access on loopback until interrupted.
Logs to stderr; prints nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .frames import MODELS, SimConfig
from .server import PARENT_ENV, serve_sim_txm_ioc, validate_prefix

logger = logging.getLogger("ssb_beamline.sim_devices.ioc")


def build_parser() -> argparse.ArgumentParser:
    """The command-line options of the simulated IOC."""
    parser = argparse.ArgumentParser(
        prog="python -m ssb_beamline.sim_devices.ioc",
        description="Simulated TXM IOC (caproto) serving the ssb_beamline physics over CA.",
    )
    parser.add_argument("--prefix", default="SSBSIM:", help="PV prefix ending with ':'")
    parser.add_argument("--port", type=int, default=5064, help="CA server port (default 5064)")
    parser.add_argument("--data-dir", default=None, help="directory the HDF5 plugin may write to")
    parser.add_argument("--phantom-seed", type=int, default=0, help="phantom and noise seed")
    parser.add_argument("--size", type=int, default=512, help="phantom size, pixels (N x N)")
    parser.add_argument(
        "--model",
        default="TXM",
        choices=MODELS,
        help="camera frame model at start (TXM: 2-D XANES phantom; Tomo/Holo: "
        "projections of the 3-D phantom); switch later with {P}Sim:Model",
    )
    parser.add_argument(
        "--tomo-shape",
        default="64,128,128",
        help="3-D phantom voxels Z,Y,X for Tomo/Holo (default 64,128,128)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser


def _tomo_shape(text: str) -> tuple[int, int, int]:
    """``"64,128,128"`` -> ``(64, 128, 128)``; ValueError naming the option otherwise."""
    try:
        z, y, x = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--tomo-shape must be three integers Z,Y,X, got {text!r}") from None
    return z, y, x


#: Environment variable: write a cProfile of the IOC to this file when it stops.
PROFILE_ENV = "SSB_SIM_IOC_PROFILE"


def die_with_parent() -> None:
    """Linux: get SIGTERM when the launching process (``$SSB_SIM_IOC_PARENT_PID``) dies.

    A test session or CLI killed hard would otherwise leave its IOC running.
    """
    parent = os.environ.get(PARENT_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != int(parent):  # the parent died before prctl took effect
        raise KeyboardInterrupt


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM stops the server like Ctrl-C, so open HDF5 files are closed."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options and serve; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    try:
        validate_prefix(args.prefix)
        if not 0 < args.port < 65536:
            raise ValueError(f"--port must be in 1..65535, got {args.port}")
        config = SimConfig(size=args.size, seed=args.phantom_seed, model=args.model,
                           tomo_shape=_tomo_shape(args.tomo_shape))  # fmt: skip
        if args.data_dir is not None and not Path(args.data_dir).is_dir():
            raise ValueError(f"--data-dir {args.data_dir} is not a directory; create it first")
    except ValueError as exc:
        logger.error("%s", exc)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        die_with_parent()
        with _profiled(os.environ.get(PROFILE_ENV)):
            serve_sim_txm_ioc(args.prefix, port=args.port, config=config, data_dir=args.data_dir)
    except KeyboardInterrupt:
        logger.info("Simulated IOC %s stopped", args.prefix)
    return 0


@contextlib.contextmanager
def _profiled(path: str | None):
    """cProfile the IOC into ``path`` (``$SSB_SIM_IOC_PROFILE``), written when it stops."""
    if not path:
        yield
        return
    import cProfile

    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(path)
        logger.info("IOC profile written to %s", path)


if __name__ == "__main__":
    sys.exit(main())
