"""Sphinx helpers of this site: the API reference from ``__all__``, the CLI reference
from the argparse parsers, and short internal cross-references.

Nothing here lists a name by hand. :func:`reference_entries` reads, at build time,
the ``__all__`` of each documented subpackage and of each of its public submodules;
:func:`write_api_pages` turns them into one page per subpackage (an autosummary
table plus one autodoc directive per entry). :func:`write_cli_page` walks
``ssb_beamline.cli.build_parser()``. Both write under ``docs/reference/`` before
Sphinx reads the sources (generated files are not committed).

sphinx-argparse is not used: it is not installed here, and the parser tree is small
enough that a 40-line walk renders it with the help texts the CLI prints.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from sphinx.util.nodes import make_refnode

#: The subpackages whose public API the reference documents (and the tests check).
PACKAGES = ("analysis", "plans", "callbacks", "storage", "devices", "profiles")
#: Documented too, for the tutorials' links: the figures and the reference spectra.
EXTRA_PACKAGES = ("report", "reference_data")
#: Not documented (simulation internals): a reference into them is shown unlinked.
# sim_devices: the simulators (not a user API); physics: the constants floor, shown
# through its re-exports in analysis; InstrumentT: a TypeVar autodoc names in a base.
UNDOCUMENTED = (
    "ssb_beamline.sim_devices",
    "ssb_beamline.physics",
    "ssb_beamline.profiles.sim_session.InstrumentT",
)


@dataclass(frozen=True)
class Entry:
    """One documented object: ``module.name`` is where the reference shows it."""

    module: str
    name: str
    obj: object

    @property
    def path(self) -> str:
        return f"{self.module}.{self.name}"


def public_submodules(package: ModuleType) -> Iterator[ModuleType]:
    """The package's modules whose name does not start with ``_`` (imported)."""
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{package.__name__}.{info.name}")


def public_names(module: ModuleType) -> list[str]:
    """The names a module offers: its ``__all__`` or, without one, the public
    classes and functions it defines (what autodoc's ``:members:`` would show)."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(inspect.unwrap(obj)))
        and getattr(obj, "__module__", None) == module.__name__
    ]


def reference_entries(short: str) -> dict[str, list[Entry]]:
    """Entries per module for ``ssb_beamline.<short>``: the package's ``__all__``
    first, then, per public submodule, the names of :func:`public_names` that the
    package does not already export (each object once)."""
    package = importlib.import_module(f"ssb_beamline.{short}")
    if not hasattr(package, "__path__"):  # a plain module: its own names
        return {package.__name__: [Entry(package.__name__, n, getattr(package, n))
                                   for n in public_names(package)]}  # fmt: skip
    seen: set[int] = set()
    sections: dict[str, list[Entry]] = {}
    for module in [package, *public_submodules(package)]:
        entries = []
        for name in public_names(module):
            obj = getattr(module, name)
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            entries.append(Entry(module.__name__, name, obj))
        sections[module.__name__] = entries
    return sections


def canonical_paths() -> dict[str, str]:
    """``{module.qualname where an object is defined: where the reference shows it}``,
    so that a docstring may name an object by the module that defines it."""
    paths = {}
    for short in PACKAGES + EXTRA_PACKAGES:
        for entries in reference_entries(short).values():
            for entry in entries:
                module = getattr(entry.obj, "__module__", None)
                qualname = getattr(entry.obj, "__qualname__", None)
                if module and qualname:
                    paths.setdefault(f"{module}.{qualname}", entry.path)
    return paths


def _directive(obj: object) -> tuple[str, list[str]]:
    if inspect.isclass(obj):
        if issubclass(obj, BaseException):
            return "autoexception", []
        return "autoclass", [":members:"]
    if callable(obj):
        return "autofunction", []
    return "autodata", [":annotation:"]


def _section(module: str, entries: list[Entry], level: str, no_index: bool) -> list[str]:
    lines = [module, level * len(module), ""]
    # a module named like a function its package exports (analysis.absorbance) is
    # shown without a second index entry for that name
    lines += [f".. automodule:: {module}", *(["   :no-index:"] if no_index else []), ""]
    lines += [f".. currentmodule:: {module}", ""]
    if not entries:
        return [*lines, "No names of its own: what it offers is listed above.", ""]
    lines += [".. autosummary::", "", *(f"   {e.name}" for e in entries), ""]
    for entry in entries:
        directive, options = _directive(entry.obj)
        lines += [f".. {directive}:: {entry.name}", *(f"   {o}" for o in options), ""]
    return lines


def api_page(short: str) -> str:
    """The reST of one subpackage's reference page."""
    sections = reference_entries(short)
    lines = [
        ".. This file is generated at build time by docs/_ext/ssb_docs.py from __all__.",
        "",
    ]
    exported = {e.path for entries in sections.values() for e in entries}
    for i, (module, entries) in enumerate(sections.items()):
        lines += _section(module, entries, "=" if i == 0 else "-", module in exported)
    return "\n".join(lines)


def _write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_api_pages(srcdir: Path) -> None:
    for short in PACKAGES + EXTRA_PACKAGES:
        _write_if_changed(srcdir / "reference" / "api" / f"{short}.rst", api_page(short))


# --- CLI reference ------------------------------------------------------------------


def _usage(parser: argparse.ArgumentParser) -> str:
    return " ".join(parser.format_usage().split())


def _actions(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        names = ", ".join(f"``{o}``" for o in action.option_strings) or f"``{action.dest}``"
        if action.metavar and action.option_strings:
            names += f" *{action.metavar}*"
        help_text = (action.help or "").replace("%(default)s", str(action.default))
        if action.choices and not isinstance(action.choices, dict):
            help_text += " (one of: " + ", ".join(f"``{c}``" for c in action.choices) + ")"
        shown = action.default not in (None, False, argparse.SUPPRESS) and action.option_strings
        if shown and "default" not in help_text:
            help_text += f" (default ``{action.default}``)"
        rows += [f"{names}", f"   {help_text.strip() or '(no help text)'}", ""]
    return rows


def cli_page() -> str:
    """The reST of the CLI reference (``ssb-beamline`` and every sub-command)."""
    from ssb_beamline.cli import build_parser

    parser = build_parser()
    lines = [
        ".. This file is generated at build time by docs/_ext/ssb_docs.py from the parser.",
        "",
        ".. _cli-reference:",
        "",
        "Command-line reference",
        "======================",
        "",
        "Generated from ``ssb_beamline.cli.build_parser()``; ``ssb-beamline COMMAND -h``",
        "prints the same text.",
        "",
        ".. code-block:: text",
        "",
        f"   {_usage(parser)}",
        "",
        *_actions(parser),
    ]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    for name, child in sub.choices.items():
        title = f"ssb-beamline {name}"
        lines += [f".. _cli-{name}:", "", title, "-" * len(title), ""]
        summary = (helps.get(name) or child.description or "").strip()
        lines += [summary[:1].upper() + summary[1:] + ".", ""]
        lines += [".. code-block:: text", "", f"   {_usage(child)}", "", *_actions(child)]
    return "\n".join(lines)


def write_cli_page(srcdir: Path) -> None:
    _write_if_changed(srcdir / "reference" / "cli.rst", cli_page())


# --- cross-references -------------------------------------------------------------


_PATHS: dict[str, str] = {}


def _resolve_short(app, env, node, contnode):
    """Resolve ``:class:`LiveOutcome``` and similar short names written in docstrings
    to the one documented ``ssb_beamline`` object whose dotted path ends with them."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    domain = env.get_domain("py")
    if not _PATHS:
        _PATHS.update(canonical_paths())
    target = _PATHS.get(target, target)
    matches = [
        (name, entry)
        for name, entry in domain.objects.items()
        if name.startswith("ssb_beamline.") and (name == target or name.endswith("." + target))
    ]
    if len(matches) != 1:
        return None
    name, entry = matches[0]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)


def _warn_missing(app, domain, node):
    """Nitpicky for this project's public objects only. Not an error of this site: a
    Python target outside ``ssb_beamline`` that no shipped inventory knows, a private
    one (``_kernels.half_step_block``), or one in :data:`UNDOCUMENTED`."""
    if domain is None or domain.name != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    if not target.startswith("ssb_beamline") or target.startswith(UNDOCUMENTED):
        return True
    return any(part.startswith("_") for part in target.split("."))


def _generate(app) -> None:
    srcdir = Path(app.srcdir)
    write_api_pages(srcdir)
    write_cli_page(srcdir)


def setup(app):
    # priority < 500: before autosummary reads the sources on the same event
    app.connect("builder-inited", _generate, priority=100)
    app.connect("missing-reference", _resolve_short)
    app.connect("warn-missing-reference", _warn_missing)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


__all__ = [
    "PACKAGES",
    "Entry",
    "api_page",
    "canonical_paths",
    "cli_page",
    "public_names",
    "reference_entries",
    "setup",
]
