"""Write the intersphinx inventories this site ships (``docs/_intersphinx/*.inv``).

The documentation builds offline, so the ``objects.inv`` of Python, numpy, scipy,
bluesky, ophyd-async and tiled cannot be downloaded at build time, and none of the
installed wheels ships one. This script writes, for each, a Sphinx version-2
inventory of the public objects of the *installed* package (modules listed below,
names from ``__all__`` or, without it, every public attribute), each mapped to the
URL pattern of that project's published API pages. The links therefore point at
the right page for the objects of the installed version; an object the project's
site documents on another page than its pattern gives lands on a missing page.

Run it again after upgrading one of these packages::

    python docs/_intersphinx/make_inventories.py

Every file written is read back with ``sphinx.util.inventory.InventoryFile`` before
the script exits, so a malformed inventory fails here, not in the build.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import logging
import sys
import zlib
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

from sphinx.util.inventory import InventoryFile

logger = logging.getLogger("make_inventories")
HERE = Path(__file__).resolve().parent

#: Where one object of each project is documented: (module, full name) -> page#anchor
URLS: dict[str, Callable[[str, str], str]] = {
    # numpy/scipy: one generated page per object, anchored by its full name
    "numpy": lambda mod, full: f"reference/generated/{full}.html#{full}",
    "scipy": lambda mod, full: f"reference/generated/{full}.html#{full}",
    # bluesky: autosummary pages per object
    "bluesky": lambda mod, full: f"generated/{full}.html#{full}",
    # ophyd-async: one API page per module
    "ophyd_async": lambda mod, full: f"_api/ophyd_async/{mod}.html#{full}",
    # tiled: the Python client and service reference pages
    "tiled": lambda mod, full: (
        f"reference/python-client.html#{full}"
        if mod.startswith("tiled.client") or mod == "tiled.queries"
        else f"reference/service.html#{full}"
    ),
    # Python: the library page of each module
    "python": lambda mod, full: f"library/{mod}.html#{full}",
}

MODULES = {
    "numpy": ("numpy", "numpy.linalg", "numpy.fft", "numpy.random", "numpy.typing"),
    "scipy": (
        "scipy.ndimage",
        "scipy.optimize",
        "scipy.signal",
        "scipy.stats",
        "scipy.interpolate",
        "scipy.sparse",
        "scipy.sparse.linalg",
        "scipy.fft",
        "scipy.linalg",
        "scipy.spatial",
        "scipy.special",
    ),
    "bluesky": (
        "bluesky",
        "bluesky.plans",
        "bluesky.plan_stubs",
        "bluesky.preprocessors",
        "bluesky.protocols",
        "bluesky.run_engine",
        "bluesky.suspenders",
        "bluesky.utils",
        "bluesky.callbacks",
        "bluesky.callbacks.core",
        "bluesky.callbacks.zmq",
        "bluesky.callbacks.tiled_writer",
    ),
    "ophyd_async": (
        "ophyd_async.core",
        "ophyd_async.epics.core",
        "ophyd_async.epics.motor",
        "ophyd_async.epics.adcore",
        "ophyd_async.sim",
    ),
    "tiled": (
        "tiled.client",
        "tiled.client.container",
        "tiled.client.array",
        "tiled.client.dataframe",
        "tiled.queries",
        "tiled.server",
        "tiled.catalog",
    ),
    "python": (
        "argparse",
        "asyncio",
        "collections",
        "collections.abc",
        "concurrent.futures",
        "dataclasses",
        "datetime",
        "enum",
        "json",
        "logging",
        "os",
        "pathlib",
        "subprocess",
        "threading",
        "typing",
    ),
}
DISTRIBUTIONS = {"ophyd_async": "ophyd-async", "python": None}


def _role(obj: object) -> str | None:
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj) or callable(obj):
        return "function"
    return "data"


def _public(module) -> Iterable[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return sorted(set(names))


def entries(project: str) -> dict[tuple[str, str], str]:
    """``{(full name, role): uri}`` of the public objects of one project."""
    url = URLS[project]
    found: dict[tuple[str, str], str] = {}
    for modname in MODULES[project]:
        try:
            module = importlib.import_module(modname)
        except ImportError as exc:  # an optional part of a package
            logger.warning("skipped %s: %s", modname, exc)
            continue
        found[(modname, "module")] = url(modname, modname).split("#")[0] + f"#module-{modname}"
        for name in _public(module):
            obj = getattr(module, name, None)
            role = _role(obj)
            if obj is None or role == "module":
                continue
            full = f"{modname}.{name}"
            found[(full, role)] = url(modname, full)
            if role in ("class", "exception"):
                for attr, value in vars(obj).items():
                    if not attr.startswith("_") and callable(value):
                        found[(f"{full}.{attr}", "method")] = url(modname, f"{full}.{attr}")
    if project == "python":
        for name in dir(builtins):
            obj = getattr(builtins, name)
            if name.startswith("_") or not (inspect.isclass(obj) or callable(obj)):
                continue
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                found[(name, "exception")] = f"library/exceptions.html#{name}"
            elif inspect.isclass(obj) and name not in ("object", "type", "property"):
                found[(name, "class")] = f"library/stdtypes.html#{name}"
            else:
                found[(name, "function" if not inspect.isclass(obj) else "class")] = (
                    f"library/functions.html#{name}"
                )
    return found


def inventory_bytes(project: str, version: str, items: dict[tuple[str, str], str]) -> bytes:
    """A Sphinx version-2 inventory (header, then zlib-compressed lines)."""
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    ).encode()
    lines = "".join(f"{name} py:{role} 1 {uri} -\n" for (name, role), uri in sorted(items.items()))
    return header + zlib.compress(lines.encode())


def version_of(project: str) -> str:
    dist = DISTRIBUTIONS.get(project, project)
    return (
        f"{sys.version_info.major}.{sys.version_info.minor}"
        if dist is None
        else (metadata.version(dist))
    )


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logger.setLevel(logging.INFO)
    for project in URLS:
        items = entries(project)
        data = inventory_bytes(project, version_of(project), items)
        path = HERE / f"{project}.inv"
        path.write_bytes(data)
        loaded = InventoryFile.loads(data, uri="https://example.invalid")
        count = sum(len(v) for v in loaded.data.values()) if hasattr(loaded, "data") else len(items)
        logger.info("%s: %d objects -> %s", project, count, path.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
