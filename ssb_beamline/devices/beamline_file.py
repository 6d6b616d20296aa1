"""The beamline file: every PV prefix, the focus calibration, limits and file paths.

A beamline file is YAML (``ssb_beamline/beamlines/sim-txm.yaml`` is the example
for the simulated TXM served by ``ssb-beamline ioc``). The schema is checked on
load by pydantic (unknown keys are refused); every error names the file, the key,
its line and the fix. Schema (``?`` = optional)::

    version: 1
    name: sim-txm                    # free text, recorded with every run
    prefix: "SSBSIM:"                # prepended to every PV below ("" = none)
    devices:
      energy:         {pv: "Mono:Energy"}         # motor record, eV
      zone_plate:     {prefix: "ZP:"}             # motor records ZP:X, ZP:Y, ZP:Z (mm)
      detector_stage: {prefix: "Det:"}            # motor record Det:Z (mm)
      sample_stage:   {prefix: "Smpl:"}           # Smpl:X/Y/Z (um), Smpl:Rot (deg)
      holo_distance?: {pv: "Holo:Dist"}           # motor record, mm
      shutter:        {prefix: "Shtr:Ph:", timeout_s?: 10}   # Cmd / Sts PVs
      fe_shutter?:    {prefix: "Shtr:FE:"}
      i0:             {pv: "I0:Counts"}
      ring_current?:  {pv: "Ring:Current"}
      detector:       {prefix: "", driver_suffix?: "cam1:", hdf_suffix?: "HDF1:"}
    focus:                           # zone-plate focus model (energy -> zp z, det z)
      name: sim-txm-zp               # the name the model is registered under
      zone_plate_diameter_um: 244
      outermost_zone_nm: 30
      magnification: 50
      zp_z_offset_mm?: 0             # motor position = thin-lens distance + offset
      det_z_offset_mm?: 0
      pixel_size_um: 0.02            # at the sample
    limits:                          # the plans stay inside these (and the EPICS ones)
      energy_ev: [5000, 11000]
      zp_z_mm?: [20, 80]
      det_z_mm?: [1000, 4000]
    sample_out_x: 15000              # sample_stage.x with the sample out of the beam
    detector_files:
      ioc_directory: /data/ssb       # where the IOC writes, as the IOC sees it
      analysis_directory?: /data/ssb # the same folder as this machine sees it
                                     # ({uid} = this user's id: per-user folders)
    holo?:                           # holotomography (cone beam)
      focus_to_detector_mm?: 1200    # none: parallel beam (distance = holo_distance)
      pixel_size_um?: 0.1            # at the sample, if not focus.pixel_size_um
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator

__all__ = [
    "BeamlineFile",
    "BeamlineFileError",
    "default_beamline_file",
    "load_beamline_file",
]

#: PV names: EPICS record-name characters only (no spaces, quotes or commas).
PV_PATTERN = r"^[A-Za-z0-9_:.\-\[\]<>;$(){}]*$"
PVText = Annotated[StrictStr, Field(pattern=PV_PATTERN, max_length=60)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MotorPV(_Strict):
    """One motor record (without a field: ``Mono:Energy``, not ``Mono:Energy.VAL``)."""

    pv: Annotated[PVText, Field(min_length=1)]

    @field_validator("pv")
    @classmethod
    def _no_field(cls, pv: str) -> str:
        if re.search(r"\.[A-Z]{2,4}$", pv):
            raise ValueError(
                f"{pv!r} names a record field. Fix: give the motor record without the "
                f"field, e.g. {pv.rsplit('.', 1)[0]!r}"
            )
        return pv


class SignalPV(_Strict):
    """One scalar PV (I0, ring current)."""

    pv: Annotated[PVText, Field(min_length=1)]


class StagePV(_Strict):
    """A group of motor records sharing a prefix."""

    prefix: PVText


class ShutterPV(_Strict):
    """A shutter's ``{prefix}Cmd`` / ``{prefix}Sts`` pair."""

    prefix: PVText
    timeout_s: Positive = 10.0


class DetectorPV(_Strict):
    """An areaDetector: driver ``{prefix}{driver_suffix}``, HDF5 plugin ``{prefix}{hdf_suffix}``."""

    prefix: PVText
    driver_suffix: Annotated[PVText, Field(min_length=1)] = "cam1:"
    hdf_suffix: Annotated[PVText, Field(min_length=1)] = "HDF1:"


class Devices(_Strict):
    """PVs of every device (relative to the file's ``prefix``)."""

    energy: MotorPV
    zone_plate: StagePV
    detector_stage: StagePV
    sample_stage: StagePV
    shutter: ShutterPV
    i0: SignalPV
    detector: DetectorPV
    holo_distance: MotorPV | None = None
    fe_shutter: ShutterPV | None = None
    ring_current: SignalPV | None = None


class FocusCalibration(_Strict):
    """Zone-plate optics of the focus model (thin lens at a fixed magnification)."""

    name: Annotated[StrictStr, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")]
    zone_plate_diameter_um: Positive
    outermost_zone_nm: Positive
    magnification: Positive
    zp_z_offset_mm: float = 0.0
    det_z_offset_mm: float = 0.0
    pixel_size_um: Positive


Range = tuple[float, float]


class Limits(_Strict):
    """Travel the plans must respect (on top of the EPICS HLM/LLM)."""

    energy_ev: Range
    zp_z_mm: Range | None = None
    det_z_mm: Range | None = None

    @field_validator("energy_ev", "zp_z_mm", "det_z_mm")
    @classmethod
    def _ordered(cls, value: Range | None) -> Range | None:
        if value is not None and not value[0] < value[1]:
            raise ValueError(
                f"[{value[0]:g}, {value[1]:g}] is not a [low, high] range. Fix: put the low "
                f"limit first, below the high one, e.g. [{min(value):g}, {max(value):g}]"
            )
        return value


class DetectorFiles(_Strict):
    """The detector's file folder as the IOC sees it, and as the analysis sees it."""

    ioc_directory: Annotated[StrictStr, Field(min_length=1)]
    analysis_directory: Annotated[StrictStr, Field(min_length=1)] | None = None

    @field_validator("ioc_directory", "analysis_directory")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None:  # a shared machine: each user's own folder, e.g. in /tmp
            value = value.replace("{uid}", str(os.getuid()) if hasattr(os, "getuid") else "")
        if value is not None and not (value.startswith("/") or re.match(r"^[A-Za-z]:", value)):
            raise ValueError(
                f"{value!r} is a relative path. Fix: give an absolute path (the IOC and "
                "this machine resolve relative paths differently)"
            )
        return value

    @property
    def local_directory(self) -> Path:
        """The folder as this machine sees it."""
        return Path(self.analysis_directory or self.ioc_directory)


class HoloSettings(_Strict):
    """Cone-beam geometry of holotomography (effective propagation distances)."""

    focus_to_detector_mm: Positive | None = None
    pixel_size_um: Positive | None = None


class BeamlineFile(_Strict):
    """A validated beamline file (see the module docstring for the schema).

    Attributes
    ----------
    version : int
        Schema version; must be 1.
    name : str
        Free text naming the beamline, recorded with every run (not empty).
    prefix : str, default ""
        Common PV prefix prepended to every PV of ``devices`` (EPICS record-name
        characters only, at most 60).
    devices : Devices
        The PV (or PV prefix) of each device; ``holo_distance``, ``fe_shutter`` and
        ``ring_current`` are optional.
    focus : FocusCalibration
        The zone-plate focus model: diameter (um), outermost zone (nm),
        magnification, motor offsets (mm) and pixel size at the sample (um).
    limits : Limits
        Ranges the plans stay in: ``energy_ev`` (eV) and optional ``zp_z_mm``,
        ``det_z_mm`` (mm), each ``[low, high]`` with low < high.
    sample_out_x : float
        ``sample_stage.x`` with the sample out of the beam (for flats), in the
        motor's units (um on the simulated TXM).
    detector_files : DetectorFiles
        ``ioc_directory`` (where the IOC writes, as the IOC sees it) and, if it
        differs, ``analysis_directory`` (the same folder as this machine sees it).
    holo : HoloSettings, optional
        Holotomography cone-beam geometry: ``focus_to_detector_mm`` and
        ``pixel_size_um``; empty for parallel beam.
    """

    version: Literal[1]
    name: Annotated[StrictStr, Field(min_length=1)]
    prefix: PVText = ""
    devices: Devices
    focus: FocusCalibration
    limits: Limits
    sample_out_x: float
    detector_files: DetectorFiles
    holo: HoloSettings = HoloSettings()

    def with_prefix(self, prefix: str | None) -> BeamlineFile:
        """The same file with the common PV prefix replaced (``None``: unchanged)."""
        if prefix is None:
            return self
        return self.model_copy(update={"prefix": prefix})

    def device_pvs(self) -> Iterator[tuple[str, str]]:
        """``(key path, full PV or PV prefix)`` of every configured device."""
        for key in Devices.model_fields:
            entry = getattr(self.devices, key)
            if entry is None:
                continue
            field = "pv" if hasattr(entry, "pv") else "prefix"
            yield f"devices.{key}.{field}", self.prefix + getattr(entry, field)


class BeamlineFileError(ValueError):
    """A beamline file that cannot be used; the message names file, key, line and fix."""


@dataclass(frozen=True)
class LoadedBeamline:
    """A beamline file and where each of its keys is (for messages that point at lines)."""

    config: BeamlineFile
    path: Path
    lines: dict[str, int]

    def where(self, key: str) -> str:
        """``"FILE, line N (key)"`` for a dotted key (its nearest parent's line if absent)."""
        parts = key.split(".")
        while parts and ".".join(parts) not in self.lines:
            parts.pop()
        line = self.lines.get(".".join(parts)) if parts else None
        return f"{self.path}, line {line} ({key})" if line else f"{self.path} ({key})"


def _key_lines(node: yaml.Node, prefix: str = "") -> Iterator[tuple[str, int]]:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            yield key, key_node.start_mark.line + 1
            yield from _key_lines(value_node, key + ".")


_FIXES = {
    "missing": "add it (see the schema in ssb_beamline/devices/beamline_file.py or sim-txm.yaml)",
    "extra_forbidden": "remove it or correct its spelling",
    "string_type": 'write it as a quoted string, e.g. "BL:"',
    "string_pattern_mismatch": "use PV characters only (letters, digits, _ : . -), no spaces",
    "literal_error": "set it to 1 (the only schema version)",
    "greater_than": "use a positive number",
    "float_parsing": "write a number",
    "float_type": "write a number",
    "tuple_type": "write a [low, high] list",
    "too_short": "write a [low, high] list of two numbers",
    "too_long": "write a [low, high] list",
    "model_type": "write a mapping of keys (see the schema)",
    "dict_type": "write a mapping of keys (see the schema)",
}


def _allowed_keys(loc: tuple[Any, ...]) -> str:
    model: Any = BeamlineFile
    for part in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return ""
        annotation = field.annotation
        candidates = getattr(annotation, "__args__", (annotation,))
        model = next((c for c in candidates if hasattr(c, "model_fields")), None)
        if model is None:
            return ""
    return ", ".join(getattr(model, "model_fields", {}))


def _describe(error: dict[str, Any], loaded: LoadedBeamline) -> str:
    loc = tuple(p for p in error["loc"] if not isinstance(p, int))
    key = ".".join(str(p) for p in loc) or "(top level)"
    kind = error["type"]
    if kind == "missing" and error["loc"] and isinstance(error["loc"][-1], int):
        kind = "too_short"  # an item of a [low, high] pair is missing
    fix = _FIXES.get(kind, "")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc)
        fix += f"; allowed here: {allowed}" if allowed else ""
    message = error["msg"].removeprefix("Value error, ")
    where = loaded.where(key) if loc else str(loaded.path)
    text = f"{where}: {message}"
    if kind == "extra_forbidden":
        text = f"{where}: unknown key {str(loc[-1])!r}"
    return f"{text}. Fix: {fix}." if fix else f"{text}."


def load_beamline_file(path: str | Path, *, prefix: str | None = None) -> LoadedBeamline:
    """Read and check a beamline file; ``prefix`` replaces its common PV prefix.

    Parameters
    ----------
    path : str or pathlib.Path
        The YAML file (``ssb_beamline/beamlines/sim-txm.yaml`` is an example).
    prefix : str, optional
        Replaces the file's common PV prefix (keyword only), e.g. to point the same
        file at a test IOC; None keeps the file's.

    Returns
    -------
    LoadedBeamline
        The validated file (``.config``), its path and the line of each key.

    Raises
    ------
    BeamlineFileError
        For a missing or unreadable file, invalid YAML, or any schema error (each
        named with its key, line and fix).

    Examples
    --------
    >>> loaded = load_beamline_file(default_beamline_file(), prefix="TEST:")
    >>> loaded.config.prefix + loaded.config.devices.energy.pv
    'TEST:Mono:Energy'
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise BeamlineFileError(
            f"Cannot read the beamline file {path}: {exc.strerror or exc}. Fix: give the path "
            f"of an existing YAML file (example: {default_beamline_file()})."
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise BeamlineFileError(
            f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)}). Fix: check "
            "indentation, colons and quotes there."
        ) from None
    if not isinstance(data, dict):
        raise BeamlineFileError(
            f"{path}: a beamline file is a YAML mapping (version:, name:, devices:, ...), "
            f"not {type(data).__name__}. Fix: start from {default_beamline_file()}."
        )
    loaded = LoadedBeamline(None, path, dict(_key_lines(node)))  # type: ignore[arg-type]
    try:
        config = BeamlineFile.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(e, loaded) for e in exc.errors()]
        raise BeamlineFileError(
            f"The beamline file {path} has {len(problems)} problem(s):\n  " + "\n  ".join(problems)
        ) from None
    return LoadedBeamline(config.with_prefix(prefix), path, loaded.lines)


def default_beamline_file() -> Path:
    """The packaged beamline file of the simulated TXM (``sim-txm.yaml``)."""
    return Path(str(resources.files("ssb_beamline.beamlines").joinpath("sim-txm.yaml")))
