"""Sphinx configuration of dynlearn's documentation site.

Build: ``pip install -e '.[docs]'`` then ``sphinx-build -W -n --keep-going -b html docs docs/_build/html``
(warnings are errors, references nitpicky; README.md gives the command, ``.ci/run`` runs it).

- Theme: furo (light and dark, readable equations and wide tables, search, no JavaScript framework).
- Pages in Markdown through MyST (README.md and docs/architecture.md are Markdown already), with ``$...$`` maths.
- The API reference is generated from the package's ``__all__`` lists (``_ext/dynlearn_api.py``).
- The examples are a sphinx-gallery: each script in ``examples/`` runs at build time on a small budget (the
  arguments in ``EXAMPLE_ARGUMENTS``) and its figures are the gallery's.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import version as installed_version
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))

project = "dynlearn"
author = "The dynlearn developers"
copyright = "2026, the dynlearn developers"
release = installed_version("dynlearn")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax served with the site: equations render without a network
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "dynlearn_api",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5"]
root_doc = "index"

# ``name`` in a docstring is code (the package's docstrings use it so), not a reference to resolve
default_role = "code"
nitpicky = True
# No intersphinx: the build must work without a network, so names of other packages stay unlinked, and
# nitpicky mode is told so here (and only for them).
nitpick_ignore_regex = [
    ("py:.*", r"(torch|numpy|np|scipy|sympy|h5py|matplotlib|tqdm|ray|xarray|pysindy|torchdiffeq|hypothesis|collections"
              r"|typing|fractions|pathlib|os|datetime|argparse|concurrent|enum|dataclasses|abc|types)(\..*)?"),
    ("py:.*", r"(Tensor|Module|Parameter|Path|Fraction|Figure|Axes|ndarray|DTypeLike|ArrayLike|Generator|dtype|device"
              r"|Callable|Iterable|Iterator|Sequence|Mapping|Any|Literal|Self|T|nn\..*|optional)"),
    ("py:.*", r"(int|float|str|bool|complex|bytes|object|dict|list|tuple|set|frozenset|type|None|slice|callable)"),
    ("py:class", r"dynlearn\.progress\.Item"),  # a TypeVar: the element type of what progress() wraps
]

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = False
autodoc_class_signature = "separated"
add_module_names = False
python_maximum_signature_line_length = 100

html_theme = "furo"
html_title = f"dynlearn {release}"
html_static_path = ["_static"]
html_css_files = ["dynlearn.css"]
html_theme_options = {"navigation_with_keys": True}

# The gallery: every script of examples/ runs at build time, on the budget below (a few seconds to a minute each
# on 2 CPU cores); its matplotlib figures become the page's images.
sphinx_gallery_conf = {
    "examples_dirs": [str(HERE.parent / "examples")],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r".*\.py$",
    "reset_argv": "dynlearn_gallery.example_arguments",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "show_memory": False,
    "plot_gallery": os.environ.get("DYNLEARN_DOCS_GALLERY", "True"),
}
# the examples run in a scratch folder, not in the source tree
os.environ.setdefault("MPLBACKEND", "Agg")

