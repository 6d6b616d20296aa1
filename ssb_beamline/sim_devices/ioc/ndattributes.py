"""NDAttributes of the simulated camera: parse the XML a client wrote, value them per frame.

ophyd-async declares one HDF5 dataset per ``<Attribute>`` of the XML it writes
to ``NDAttributesFile`` (`ophyd_async.epics.adcore.ndattributes_to_xml`), at
``/entry/instrument/NDAttributes/<name>``; the IOC must write exactly those.

- ``type="EPICS_PV"``: ``source`` is a PV. A motor readback of this IOC
  (``<record>.RBV``) is valued at the exact position of the axis at
  mid-exposure (what a fly scan needs to recover each frame's angle); any other
  PV of this IOC by its current value.
- ``type="PARAM"``: ``source`` is one of `PARAMS` (``TIMESTAMP``: UNIX time at
  mid-exposure; ``UNIQUE_ID``; ``ACQ_TIME``; ``I0_COUNTS``).

Every frame file also holds ``NDArrayUniqueId`` and ``NDArrayTimeStamp`` (UNIX
time at mid-exposure, as the in-process tomography camera writes it), whether
declared or not. An unknown source is logged and stored as zeros (the dataset
must exist: the client has already described it).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["BUILTIN", "PARAMS", "AttributeSpec", "parse_ndattributes", "value_attributes"]

logger = logging.getLogger(__name__)

#: numpy dtypes of ``dbrtype`` (EPICS_PV) and ``datatype`` (PARAM), as ophyd-async declares them.
DBR_DTYPES = {
    "DBR_SHORT": "<i2", "DBR_ENUM": "<i2", "DBR_INT": "<i4", "DBR_LONG": "<i4",
    "DBR_FLOAT": "<f4", "DBR_DOUBLE": "<f8", "DBR_STRING": "S40", "DBR_CHAR": "|i1",
}  # fmt: skip
PARAM_DTYPES = {"INT": "<i4", "INT64": "<i8", "DOUBLE": "<f8", "STRING": "S40"}
#: PARAM sources: the key of the per-frame info the camera passes.
PARAMS = {"TIMESTAMP": "timestamp", "UNIQUE_ID": "unique_id", "ACQ_TIME": "exposure",
          "I0_COUNTS": "i0"}  # fmt: skip


@dataclass(frozen=True)
class AttributeSpec:
    """One per-frame attribute dataset."""

    name: str
    kind: str  # "EPICS_PV", "PARAM" or "BUILTIN"
    source: str
    dtype: str


#: Attributes every frame file holds.
BUILTIN = (
    AttributeSpec("NDArrayUniqueId", "BUILTIN", "unique_id", "<i4"),
    AttributeSpec("NDArrayTimeStamp", "BUILTIN", "timestamp", "<f8"),
)


def parse_ndattributes(*xml_texts: str) -> list[AttributeSpec]:
    """Attribute specs of the XML strings (non-XML text, e.g. a file name, is ignored).

    Raises
    ------
    ValueError
        If an XML string cannot be parsed, naming the problem.
    """
    specs = {spec.name: spec for spec in BUILTIN}
    for text in xml_texts:
        if "<Attributes>" not in (text or ""):
            continue
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise ValueError(f"NDAttributesFile is not valid XML ({exc}); fix or clear it") from exc
        for child in root:
            name, kind = child.attrib.get("name", ""), child.attrib.get("type", "EPICS_PV")
            if not name or name in specs:
                continue
            if kind == "EPICS_PV":
                dtype = DBR_DTYPES.get(child.attrib.get("dbrtype", "DBR_DOUBLE"), "<f8")
            else:
                dtype = PARAM_DTYPES.get(child.attrib.get("datatype", "INT"), "<i4")
            specs[name] = AttributeSpec(name, kind, child.attrib.get("source", ""), dtype)
    return list(specs.values())


def value_attributes(
    specs: list[AttributeSpec],
    info: Mapping[str, Any],
    exact: Mapping[str, Callable[[], Any]],
    current: Callable[[str], Any],
) -> dict[str, Any]:
    """Values of ``specs`` for one frame.

    Parameters
    ----------
    info : mapping
        Per-frame values (``timestamp``, ``unique_id``, ``exposure``, ``i0``).
    exact : mapping
        PV name -> callable giving its exact value at mid-exposure (motor readbacks).
    current : callable
        ``current(pv)`` -> the PV's current value, or raises KeyError if not served here.
    """
    values: dict[str, Any] = {}
    for spec in specs:
        try:
            if spec.kind == "BUILTIN":
                value = info[spec.source]
            elif spec.kind == "PARAM":
                value = info[PARAMS[spec.source]]
            elif spec.source in exact:
                value = exact[spec.source]()
            else:
                value = current(spec.source)
            values[spec.name] = np.asarray(value).astype(spec.dtype)
        except (KeyError, ValueError, TypeError):
            logger.warning("NDAttribute %s: no %s value from source %r; stored as 0",
                           spec.name, spec.kind, spec.source)  # fmt: skip
            values[spec.name] = np.zeros((), spec.dtype)
    return values
