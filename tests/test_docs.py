"""The documentation's promises the site build (``make docs``) cannot check: every environment
variable the code reads is described where it is read, and the README's links lead somewhere."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

import ratepad_reference  # noqa: E402


def test_every_environment_variable_is_described_where_it_is_read() -> None:
    assert ratepad_reference.undocumented() == []


def test_the_reference_finds_the_variables_and_their_descriptions() -> None:
    server = ratepad_reference.variables_read(ratepad_reference.PACKAGES["server"])
    assert {"RATEPAD_DB", "RATEPAD_TIME_ZONE", "RATEPAD_EXPORT_MAX_ROWS"} <= set(server)
    page = ratepad_reference.settings_reference()
    assert "### `RATEPAD_EXPORT_MAX_ROWS`" in page and "the most ratings one export holds" in page


def test_a_variable_read_without_a_description_is_found(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    source = [
        '"""* ``RATEPAD_KNOWN``: described."""',
        "import os",
        'os.environ.get("RATEPAD_KNOWN")',
        'os.environ["RATEPAD_SECRET_ONE"]',
    ]
    (pkg / "a.py").write_text("\n".join(source) + "\n")
    assert set(ratepad_reference.variables_read(pkg)) == {"RATEPAD_KNOWN", "RATEPAD_SECRET_ONE"}
    assert set(ratepad_reference.descriptions(pkg)) == {"RATEPAD_KNOWN"}


def test_the_readme_links_lead_to_files() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    assert len(targets) >= 5
    missing = [t for t in targets if "://" not in t and not (ROOT / t).exists()]
    assert missing == []
