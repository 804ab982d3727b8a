"""The documentation site: ``make docs`` builds it into ``build/docs`` (offline; warnings are
errors). Pages are MyST Markdown; the references under ``reference/`` are written from the code
at build time by ``_ext/ratepad_reference.py``."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

from ratepad import __version__  # noqa: E402

project = "ratepad"
author = "the ratepad authors"
copyright = "the ratepad authors"
version = release = __version__

extensions = ["myst_parser", "sphinxarg.ext", "ratepad_reference"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "monitoring/*.json", "monitoring/*.yml"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3  # links to a page's sections: page.md#a-section
nitpicky = False  # prose names Python objects without documenting them as API entries
html_theme = "furo"
html_title = f"ratepad {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
language = "en"
