"""The committed message catalogs: every zh-Hans message is translated, and each .mo is what
``msgfmt`` makes of its .po (so an edited .po without a recompiled .mo fails here)."""

from __future__ import annotations

import gettext
import shutil
import subprocess
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parents[3] / "server" / "ratepad_server"
CATALOGS = sorted(SERVER.glob("**/locale/*/LC_MESSAGES/django.po"))  # the root one too


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


def test_every_message_of_the_code_is_translated(tmp_path: Path) -> None:
    """Django's ``makemessages`` over a copy of the server's code: every message it finds is
    translated in one of the zh-Hans catalogs (Django merges them), so no page, form error or
    API answer shows an English identifier to a Chinese reader."""
    import os
    import sys

    copy = tmp_path / "ratepad_server"
    shutil.copytree(SERVER, copy, ignore=shutil.ignore_patterns("*.po", "*.mo", "__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "DJANGO_SETTINGS_MODULE":
           "ratepad_server.settings"}  # fmt: skip
    django_admin = [sys.executable, "-m", "django", "makemessages", "-l", "zh_Hans",
                    "--no-location", "--no-obsolete"]  # fmt: skip
    (copy / "locale").mkdir(exist_ok=True)
    subprocess.run(django_admin, cwd=copy, env=env, check=True, capture_output=True)
    translated: dict[object, object] = {}
    for po in CATALOGS:
        if po.parts[-3] == "zh_Hans":
            translated.update({k: v for k, v in _catalog(po.with_suffix(".mo")).items() if v})
    found: set[object] = set()  # makemessages writes each app's messages into its own locale/
    for i, po in enumerate(sorted(copy.glob("**/locale/zh_Hans/LC_MESSAGES/django.po"))):
        mo = tmp_path / f"found{i}.mo"
        # msgen fills each msgstr with its msgid (msgfmt leaves untranslated ones out)
        english = subprocess.run(["msgen", str(po)], check=True, capture_output=True).stdout
        subprocess.run(["msgfmt", "-o", str(mo), "-"], input=english, check=True)
        found.update(k for k in _catalog(mo) if k)
    assert len(found) > 100  # the catalogs were found
    # a plural message is keyed (msgid, form): Chinese has one form, the code's English two
    done = {k[0] if isinstance(k, tuple) else k for k in translated}
    missing = sorted(str(k) for k in found if (k[0] if isinstance(k, tuple) else k) not in done)
    assert not missing, f"not translated in any zh_Hans catalog: {missing}"
