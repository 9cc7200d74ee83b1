"""Sphinx configuration of the sk_template documentation.

Build it from the repository root with the ``doc`` extra installed::

    python -m sphinx -W --keep-going -b html doc doc/_build/html

The build runs the example gallery (``examples/``) and reaches nothing on the
network: links to other projects' documentation (intersphinx) are made only
when ``SK_TEMPLATE_DOCS_INTERSPHINX=1`` is set, for a build that will be
published.
"""

# SPDX-License-Identifier: BSD-3-Clause

import os
import re
import warnings
from pathlib import Path

import sk_template

ROOT = Path(__file__).resolve().parents[1]

project = "sk_template"
author = "sk_template developers"
copyright = "sk_template developers"  # noqa: A001 (Sphinx's name)
release = sk_template.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

# Offline pages: no math (MathJax would come from a CDN); formulas are code.
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
default_role = "literal"

# -- API pages: autosummary + numpydoc ----------------------------------------
autosummary_generate = True
autodoc_default_options = {"inherited-members": True}
# numpydoc renders the docstrings; the class template lists the members.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# "predict", not "NearestMeanImageClassifier.predict", in each page's contents.
toc_object_entries_show_parents = "hide"

# -- Links to other projects' docs: only for a published build -----------------
INTERSPHINX = os.environ.get("SK_TEMPLATE_DOCS_INTERSPHINX") == "1"
if INTERSPHINX:
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "sklearn": ("https://scikit-learn.org/stable/", None),
        "torch": ("https://docs.pytorch.org/docs/stable/", None),
        "matplotlib": ("https://matplotlib.org/stable/", None),
    }

# -- The example gallery --------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",  # every plot_*.py runs at build time
    "doc_module": ("sk_template",),
    "backreferences_dir": "generated",  # beside the API pages that include them
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "show_memory": False,
    "within_subsection_order": "FileNameSortKey",  # plot_01_ ... plot_04_
    "capture_repr": (),  # show what the examples print, not the reprs of values
}

# Examples run headless.
os.environ.setdefault("MPLBACKEND", "Agg")
# Quiet a known, harmless message of matplotlib's non-GUI backend in examples.
warnings.filterwarnings(
    "ignore", message="FigureCanvasAgg is non-interactive", category=UserWarning
)

# -- HTML -----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sk_template {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
    # Nothing fetched from the network when a page is built or opened offline.
    "check_switcher": False,
}
html_show_sourcelink = False
# Pages without sub-pages need no left-hand navigation.
html_sidebars = {"index": [], "getting_started": []}


# Without intersphinx, scikit-learn's glossary terms and user-guide labels in
# the docstrings we inherit (get_params, score, set_output...) and in ours
# (:term:`fit`) have no target here: show their text instead of a broken link.
_TERM = re.compile(r":term:`([^`<]*?)(?:\s*<[^`>]*>)?`")
_REF = re.compile(r":ref:`([^`<]*?)(?:\s*<[^`>]*>)?`")


def _unlink_sklearn_roles(app, what, name, obj, options, lines):
    from_sklearn = (getattr(obj, "__module__", None) or "").startswith("sklearn")
    for i, line in enumerate(lines):
        line = _TERM.sub(r"``\1``", line)
        if from_sklearn:
            line = _REF.sub(r"\1", line)
        lines[i] = line


def setup(app):
    if not INTERSPHINX:
        app.connect("autodoc-process-docstring", _unlink_sklearn_roles)


# -- The command line page shows each command's --help, as the code has it ------
def _write_cli_help(folder):
    """Write ``commands.inc``: the help of ``sk-template`` and each command."""
    import textwrap

    from sk_template.cli._main import COMMANDS, build_parser

    os.environ["COLUMNS"] = "80"  # argparse wraps to the terminal's width
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    parts = [("sk-template", parser)]
    parts += [(f"sk-template {c.NAME}", subparsers[c.NAME]) for c in COMMANDS]
    text = ""
    for title, command_parser in parts:
        title = f"``{title}``"
        body = textwrap.indent(command_parser.format_help(), "    ")
        text += f"{title}\n{'~' * len(title)}\n\n.. code-block:: none\n\n{body}\n"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "commands.inc").write_text(text)


_write_cli_help(Path(__file__).parent / "generated" / "cli")
