"""Sphinx configuration of the gbloss documentation.

Build: ``python -m pip install -e ".[docs]"`` then
``sphinx-build -W --keep-going -b html docs docs/_build/html`` (what ``.ci/run`` does).
The example gallery runs the scripts on their small data and shows their output and figures
(``-D plot_gallery=0``: code only).
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

import gbloss  # noqa: E402

project = "gbloss"
author = "the gbloss authors"
copyright = "the gbloss authors"
version = release = gbloss.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
html_theme = "alabaster"
html_theme_options = {"description": gbloss.__doc__.split(":")[0], "fixed_sidebar": True}

# -- API reference ------------------------------------------------------------------------------
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
numpydoc_show_class_members = False  # autodoc lists the members; no second table

# -- Markdown (README, derivations) -------------------------------------------------------------
myst_heading_anchors = 3

# -- Examples -----------------------------------------------------------------------------------
# The gallery runs the examples (all but the GPU and Dask ones) on their small data, so that the
# site shows their output and figures and a broken example fails the build in seconds.
os.environ.setdefault("GBLOSS_EXAMPLE_SMALL", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/(?!gpu_|dask_)[^/]+\.py$",  # runs all but GPU, Dask
    "plot_gallery": "True",
    "download_all_examples": False,
    "remove_config_comments": True,
}


def _skip_metadata_routing(app, what, name, obj, skip, options):
    """scikit-learn generates ``set_fit_request`` & co. on every estimator; their docstrings
    cite scikit-learn's own pages."""
    return True if name.startswith("set_") and name.endswith("_request") else None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_routing)
