"""The committed message catalogs: every zh-Hans message is translated, and each .mo is what
``msgfmt`` makes of its .po (so an edited .po without a recompiled .mo fails here)."""

from __future__ import annotations

import gettext
import shutil
import subprocess
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parents[3] / "server" / "ratepad_server"
CATALOGS = sorted(SERVER.glob("*/locale/*/LC_MESSAGES/django.po"))


def _catalog(mo: Path) -> dict[object, object]:
    with mo.open("rb") as f:
        return dict(gettext.GNUTranslations(f)._catalog)  # type: ignore[attr-defined]


def test_there_are_catalogs_for_both_languages() -> None:
    langs = {p.parts[-3] for p in CATALOGS}
    assert {"zh_Hans", "en"} <= langs and len(CATALOGS) >= 4


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: "/".join(p.parts[-5:-2]))
def test_mo_is_compiled_from_po(po: Path, tmp_path: Path) -> None:
    msgfmt = shutil.which("msgfmt")
    assert msgfmt, "gettext's msgfmt is missing (apt-get install gettext)"
    fresh = tmp_path / "django.mo"
    subprocess.run([msgfmt, "--check-format", "-o", str(fresh), str(po)], check=True)
    assert _catalog(fresh) == _catalog(po.with_suffix(".mo")), f"recompile {po}"
    if po.parts[-3] == "zh_Hans":
        untranslated = [k for k, v in _catalog(fresh).items() if k and not v]
        assert not untranslated
        text = po.read_text(encoding="utf-8")
        assert text.count('msgstr ""\n') == 1  # only the header's
