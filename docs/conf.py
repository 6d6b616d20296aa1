"""Sphinx configuration of the ssb_beamline documentation (``make docs``)."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "ssb_beamline"
author = "ssb_beamline developers"
copyright = "2026, ssb_beamline developers"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "ssb_docs",
]

root_doc = "index"
exclude_patterns = ["_build", "_intersphinx", "_ext"]
nitpicky = True  # every internal reference must resolve (see ssb_docs._warn_missing)

# --- API reference --------------------------------------------------------------------
autosummary_generate = False  # ssb_docs writes the pages; autosummary only draws tables
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_validation_checks: set[str] = set()  # tests/test_docs.py checks Parameters

# --- offline cross-references (generated: docs/_intersphinx/make_inventories.py) ------------------------
_INV = HERE / "_intersphinx"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", str(_INV / "python.inv")),
    "numpy": ("https://numpy.org/doc/stable", str(_INV / "numpy.inv")),
    "scipy": ("https://docs.scipy.org/doc/scipy", str(_INV / "scipy.inv")),
    "bluesky": ("https://blueskyproject.io/bluesky/main", str(_INV / "bluesky.inv")),
    "ophyd_async": ("https://blueskyproject.io/ophyd-async/main", str(_INV / "ophyd_async.inv")),
    "tiled": ("https://blueskyproject.io/tiled", str(_INV / "tiled.inv")),
}
intersphinx_timeout = 1

# --- HTML -------------------------------------------------------------------------------
html_theme = "alabaster"
html_title = "ssb_beamline"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Live X-ray spectro-microscopy of solid-state battery cathodes",
    "fixed_sidebar": True,
}
