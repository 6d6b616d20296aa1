"""PV building blocks shared by the simulated camera driver and its HDF5 plugin.

areaDetector serves most parameters as a pair: ``Name`` (written) and
``Name_RBV`` (read back); ophyd-async's ``PvSuffix.rbv("Name")`` connects to
both. `rbv_pair` makes such a pair whose write is mirrored to the readback
after the group's ``on_put`` hook accepted (and possibly changed) it. Booleans
are two-state enums, as in the areaDetector databases. `NDArrayBase` holds the
``NDArrayBase.template`` PVs every driver and plugin has.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from caproto import ChannelType
from caproto.server import PVGroup, pvproperty
from caproto.server.server import PvpropertyChar, PvpropertyCharRO

__all__ = [
    "AD_STATES",
    "COMPRESSIONS",
    "DATA_TYPES",
    "NDArrayBase",
    "boolean",
    "char_string",
    "is_true",
    "rbv_pair",
]

#: ``DetectorState_RBV`` choices (ADDriver.h order).
AD_STATES = ("Idle", "Acquire", "Readout", "Correct", "Saving", "Aborting", "Error",
             "Waiting", "Initializing", "Disconnected", "Aborted")  # fmt: skip
DATA_TYPES = ("Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64",
              "Float32", "Float64")  # fmt: skip
COLOR_MODES = ("Mono", "Bayer", "RGB1", "RGB2", "RGB3", "YUV444", "YUV422", "YUV421")
COMPRESSIONS = ("None", "N-bit", "szip", "zlib", "Blosc", "BSLZ4", "LZ4", "JPEG")
#: Longest string of a char-waveform PV (paths, templates, NDAttribute XML).
LONG_STRING = 4096
_TRUE = {"yes", "enable", "acquire", "capture", "1", "true", "on"}


def is_true(value: Any) -> bool:
    """areaDetector boolean: a non-zero number or the second enum string."""
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return bool(value)


def _kind(value: Any, dtype: Any, kw: dict) -> dict:
    if dtype is None:
        dtype = {bool: ChannelType.ENUM, int: ChannelType.LONG, float: ChannelType.DOUBLE,
                 str: ChannelType.STRING}[type(value)]  # fmt: skip
    return {"dtype": dtype, **kw}


def boolean(name: str, value: bool = False, states: tuple[str, str] = ("No", "Yes"), **kw):
    """A two-state enum PV (``states[1]`` means True)."""
    return pvproperty(name=name, value=states[int(value)], enum_strings=states,
                      dtype=ChannelType.ENUM, **kw)  # fmt: skip


def char_string(name: str, value: str = "", **kw) -> pvproperty:
    """A long string served as a char waveform (ophyd-async reads it as ``str``)."""
    return pvproperty(name=name, value=value, dtype=ChannelType.CHAR, max_length=LONG_STRING,
                      string_encoding="latin-1", **kw)  # fmt: skip


async def _mirror_put(group: PVGroup, instance, value: Any) -> Any:
    """Putter of every ``Name`` of a pair: the group's hook, then ``Name_RBV``."""
    suffix = instance.pvspec.name
    value = await group.on_put(suffix, value)
    await group.pvdb[group.prefix + suffix + "_RBV"].write(value)
    return value


def rbv_pair(
    name: str, value: Any, *, dtype: Any = None, enum: tuple[str, ...] | None = None,
    long: bool = False, **kw: Any,
) -> tuple[pvproperty, pvproperty]:  # fmt: skip
    """``(Name, Name_RBV)``; writes go through ``group.on_put(name, value)`` to both.

    Parameters
    ----------
    name : str
        PV suffix without ``_RBV``.
    value : bool, int, float or str
        Initial value (a bool makes a ``No``/``Yes`` enum unless ``enum`` is given).
    enum : tuple of str, optional
        Enum strings (``value`` must be one of them, or a bool index into them).
    long : bool
        Serve a string as a char waveform (paths, templates).
    """
    if enum is not None or isinstance(value, bool):
        states = enum or ("No", "Yes")
        initial = states[int(value)] if isinstance(value, bool) else value
        spec = {"value": initial, "enum_strings": states, "dtype": ChannelType.ENUM}
    elif long:
        spec = {"value": value, "dtype": ChannelType.CHAR, "max_length": LONG_STRING,
                "string_encoding": "latin-1"}  # fmt: skip
    else:
        spec = {"value": value, **_kind(value, dtype, {})}
    setpoint = pvproperty(name=name, put=_mirror_put, **spec, **kw)
    readback = pvproperty(name=name + "_RBV", read_only=True, **spec, **kw)
    return setpoint, readback


class EmptySafeChar(PvpropertyChar):
    """A char-waveform PV that accepts an empty string from the wire.

    caproto 1.3 fails to convert a put of ``""`` (a single NUL byte) to a CHAR
    PV; ophyd-async writes exactly that to clear ``XMLFileName`` or
    ``NDAttributesFile``.
    """

    async def write_from_dbr(self, data, data_type, metadata, *, flags=0):
        """Write ``""`` for an all-NUL CHAR put; otherwise caproto's conversion."""
        if data_type == ChannelType.CHAR and not np.asarray(data).tobytes().strip(b"\0"):
            return await self.write("", flags=flags)
        return await super().write_from_dbr(data, data_type, metadata, flags=flags)


class EmptySafeCharRO(EmptySafeChar, PvpropertyCharRO):
    """Read-only `EmptySafeChar`."""


def _ro(name: str, value: Any, **kw: Any) -> pvproperty:
    return pvproperty(name=name, value=value, read_only=True, **_kind(value, None, kw))


class NDArrayBase(PVGroup):
    """``NDArrayBase.template``: array shape and type, counters, attributes file.

    Subclasses override `on_put` to act on writes of their `rbv_pair` PVs.
    """

    type_map: ClassVar[dict] = {**PVGroup.type_map, ChannelType.CHAR: EmptySafeChar}
    type_map_read_only: ClassVar[dict] = {
        **PVGroup.type_map_read_only,
        ChannelType.CHAR: EmptySafeCharRO,
    }

    port_name = _ro("PortName_RBV", "SIM")
    unique_id = _ro("UniqueId_RBV", 0)
    nd_attributes_file = char_string("NDAttributesFile")
    array_size_x = _ro("ArraySizeX_RBV", 0)
    array_size_y = _ro("ArraySizeY_RBV", 0)
    array_size_z = _ro("ArraySizeZ_RBV", 0)
    array_size0_rbv = _ro("ArraySize0_RBV", 0)
    array_size1_rbv = _ro("ArraySize1_RBV", 0)
    array_size2_rbv = _ro("ArraySize2_RBV", 0)
    color_mode = pvproperty(name="ColorMode_RBV", value="Mono", enum_strings=COLOR_MODES,
                            dtype=ChannelType.ENUM, read_only=True)  # fmt: skip
    data_type = pvproperty(name="DataType_RBV", value="UInt16", enum_strings=DATA_TYPES,
                           dtype=ChannelType.ENUM, read_only=True)  # fmt: skip
    array_counter, array_counter_rbv = rbv_pair("ArrayCounter", 0)
    ad_core_version = _ro("ADCoreVersion_RBV", "3.12.1")
    driver_version = _ro("DriverVersion_RBV", "ssb_beamline-sim")

    async def on_put(self, suffix: str, value: Any) -> Any:
        """Accept (or change, or refuse by raising) a write to ``suffix``; default: accept."""
        return value

    def _shape_props(self, height: int, width: int) -> tuple:
        return ((self.array_size_x, width), (self.array_size_y, height),
                (self.array_size0_rbv, width), (self.array_size1_rbv, height))  # fmt: skip

    def init_array_shape(self, height: int, width: int) -> None:
        """Set the frame shape PVs before the server runs."""
        for prop, value in self._shape_props(height, width):
            prop._data["value"] = value

    async def set_array_shape(self, height: int, width: int) -> None:
        """Publish the frame shape (``ArraySizeX/Y_RBV`` and ``ArraySize0/1_RBV``)."""
        for prop, value in self._shape_props(height, width):
            if prop.value != value:
                await prop.write(value)
