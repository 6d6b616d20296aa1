"""The documentation site: it builds with warnings as errors (``-W -n``: every internal
reference resolves), its API reference lists exactly each subpackage's public names,
and the parameters of the public API are documented.

One Sphinx build per test module (a subprocess, as ``make docs`` runs it, into a
temporary folder); the reference checks read the built site's ``objects.inv``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from numpydoc.docscrape import NumpyDocString
from sphinx.util.inventory import InventoryFile

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))
import ssb_docs  # noqa: E402  (docs/_ext is not a package)

pytestmark = pytest.mark.slow

#: Undocumented parameters allowed per subpackage, in the package's ``__all__`` and
#: (below) among the names of its public modules that the package does not export.
#: Issue 19 documented every one: keep them at 0 (a new public name must come with
#: its parameters documented).
PACKAGE_GAPS_CEILING = {
    "analysis": 0,
    "plans": 0,
    "callbacks": 0,
    "storage": 0,
    "devices": 0,
    "profiles": 0,
}
#: Raised once, at the merge of issues 14-20 (2026-12-06), then brought to 0 by
#: issue 19: every public function and class of every submodule documents each of
#: its parameters. Keep them at 0.
SUBMODULE_GAPS_CEILING = {
    "analysis": 0,
    "plans": 0,
    "callbacks": 0,
    "storage": 0,
    "devices": 0,
    "profiles": 0,
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    html = out / "html"
    cmd = [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-n", "-q",
           "-b", "html", "-d", str(out / "doctrees"), str(DOCS), str(html)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT, check=False)
    assert done.returncode == 0, f"sphinx-build failed:\n{done.stderr[-6000:]}"
    assert done.stderr.strip() == "", done.stderr
    return html


def _inventory(html: Path) -> dict[str, str]:
    """``{name: objtype}`` of the Python objects the built site documents."""
    data = (html / "objects.inv").read_bytes()
    inventory = InventoryFile.loads(data, uri="")
    names = {}
    for key in ("py:class", "py:function", "py:exception", "py:data"):
        for name in (
            inventory.data.get(key, {}) if hasattr(inventory, "data") else (inventory.get(key, {}))
        ):
            names[name] = key
    return names


def _resolve(path: str) -> object:
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:  # a class attribute documented as data
        parent, _, attr = module.rpartition(".")
        return getattr(getattr(importlib.import_module(parent), attr), name)


def test_site_builds_with_index(site):
    assert (site / "index.html").is_file()
    for page in ("tutorials/first-xanes-scan", "reference/cli", "reference/api/analysis"):
        assert (site / f"{page}.html").is_file(), page


@pytest.mark.parametrize("short", ssb_docs.PACKAGES)
def test_reference_lists_each_package_all(site, short):
    package = importlib.import_module(f"ssb_beamline.{short}")
    documented = _inventory(site)
    missing = [
        n for n in getattr(package, "__all__", ()) if f"{package.__name__}.{n}" not in documented
    ]
    assert not missing, f"{package.__name__}.__all__ entries missing from the reference: {missing}"


@pytest.mark.parametrize("short", ssb_docs.PACKAGES)
def test_reference_has_every_public_name_and_no_other(site, short):
    """Each public module's names (``__all__``, or the public classes and functions
    it defines) are documented once; the reference shows nothing else."""
    package = importlib.import_module(f"ssb_beamline.{short}")
    prefix = package.__name__ + "."
    documented = {
        id(_resolve(name)): name
        for name in _inventory(site)
        if name.startswith(prefix) and name[len(prefix) :].count(".") <= 1  # pkg.x, pkg.mod.x
    }
    expected = {}
    for module in [package, *ssb_docs.public_submodules(package)]:
        for name in ssb_docs.public_names(module):
            expected.setdefault(id(getattr(module, name)), f"{module.__name__}.{name}")
    missing = sorted(path for key, path in expected.items() if key not in documented)
    extra = sorted(path for key, path in documented.items() if key not in expected)
    assert not missing, f"public names missing from the reference: {missing}"
    assert not extra, f"documented but not public (not in __all__): {extra}"


def _signature_parameters(obj: object) -> list[str]:
    if inspect.isclass(obj) and (issubclass(obj, BaseException) or _is_enum_or_protocol(obj)):
        return []
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    return [p.name for p in signature.parameters.values()
            if p.name not in ("self", "cls") and not p.name.startswith("_")]  # fmt: skip


def _is_enum_or_protocol(cls: type) -> bool:
    import enum

    return issubclass(cls, enum.Enum) or getattr(cls, "_is_protocol", False)


def undocumented_parameters(obj: object) -> list[str]:
    """Parameters of ``obj``'s signature that its numpydoc docstring does not
    describe (``Parameters``/``Other Parameters``; ``Attributes`` too for classes,
    whose fields are their parameters; ``a, b : float`` documents both)."""
    doc = NumpyDocString(inspect.getdoc(obj) or "")
    sections = ["Parameters", "Other Parameters"]
    if inspect.isclass(obj):
        sections.append("Attributes")
        init = vars(obj).get("__init__")
        if init is not None and init.__doc__:
            doc_init = NumpyDocString(inspect.getdoc(init))
            sections_init = doc_init["Parameters"] + doc_init["Other Parameters"]
        else:
            sections_init = []
    else:
        sections_init = []
    described = set()
    for item in [p for s in sections for p in doc[s]] + sections_init:
        described.update(n.strip().lstrip("*").replace("\\", "") for n in item.name.split(","))
    return [p for p in _signature_parameters(obj) if p not in described]


def _gaps(entries) -> dict[str, list[str]]:
    gaps = {}
    for entry in entries:
        if callable(entry.obj) and (missing := undocumented_parameters(entry.obj)):
            gaps[entry.path] = missing
    return gaps


def _check_ceiling(entries, ceiling: int) -> None:
    gaps = _gaps(entries)
    count = sum(len(v) for v in gaps.values())
    assert count <= ceiling, (
        f"{count} undocumented parameters (ceiling {ceiling}); document them in the "
        f"numpydoc Parameters section: {gaps}"
    )


@pytest.mark.parametrize("short", ssb_docs.PACKAGES)
def test_package_api_parameter_gaps_do_not_grow(short):
    sections = ssb_docs.reference_entries(short)
    _check_ceiling(sections[f"ssb_beamline.{short}"], PACKAGE_GAPS_CEILING[short])


@pytest.mark.parametrize("short", ssb_docs.PACKAGES)
def test_module_api_parameter_gaps_do_not_grow(short):
    sections = ssb_docs.reference_entries(short)
    entries = [
        e for module, es in sections.items() if module != f"ssb_beamline.{short}" for e in es
    ]
    _check_ceiling(entries, SUBMODULE_GAPS_CEILING[short])


def test_undocumented_parameters_are_found():
    def documented(a, b):
        """Add.

        Parameters
        ----------
        a, b : float
            The terms.
        """

    def half(a, b):
        """Add.

        Parameters
        ----------
        a : float
            A term.
        """

    assert undocumented_parameters(documented) == []
    assert undocumented_parameters(half) == ["b"]


@pytest.mark.parametrize(
    ("inventory", "name", "role"),
    [
        ("python", "pathlib.Path", "py:class"),
        ("numpy", "numpy.ndarray", "py:class"),
        ("scipy", "scipy.ndimage.shift", "py:function"),
        ("bluesky", "bluesky.plan_stubs.mv", "py:function"),
        ("bluesky", "bluesky.callbacks.zmq.Publisher", "py:class"),
        ("ophyd_async", "ophyd_async.core.StandardReadable", "py:class"),
        ("tiled", "tiled.client.from_uri", "py:function"),
    ],
)
def test_shipped_inventories_load_and_know_the_stack(inventory, name, role):
    """The offline inventories (docs/_intersphinx/make_inventories.py) are valid
    Sphinx v2 files that hold the objects the pages link to."""
    data = (DOCS / "_intersphinx" / f"{inventory}.inv").read_bytes()
    loaded = InventoryFile.loads(data, uri="https://example.invalid")
    entries = loaded.data.get(role, {}) if hasattr(loaded, "data") else loaded.get(role, {})
    assert name in entries


def test_cli_reference_has_every_command():
    from ssb_beamline.cli import build_parser

    page = ssb_docs.cli_page()
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in commands.items():
        assert f".. _cli-{name}:" in page, name
        for action in sub._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
                continue
            for option in action.option_strings:
                assert f"``{option}``" in page, (name, option)
