"""Rating flags on the server come from the one table (``ratepad.flags``): the API names every
flag a rating carries, ``appeal_upheld`` included once an appeal is upheld; the web shows
their translated labels; the rollups count the table's columns; no server module imports the
USB codec. And the API's figures are unrounded (the pages round on screen)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "web"))

from serverlib import Server, Site, call, server_env
from webclient import logged_in
from webdata import rating, upload

SERVER = Path(__file__).resolve().parents[2] / "server" / "ratepad_server"
MULTI_KEY, LATE = 0x4, 0x20


def test_api_names_every_flag_and_its_figures_are_unrounded(site: Site, server: Server) -> None:
    key, token = site.keys["BJ-001"], site.tokens["hq-admin"]
    # 21 fives and 11 ones: index 2100 / 32 = 65.625, CSAT 21 / 32 = 0.65625 (exact in binary)
    scores = [1] * 11 + [5] * 21
    rows = [rating("K1", i + 1, s) for i, s in enumerate(scores)]
    rows.append(rating("K2", 1, 5, flags=MULTI_KEY | LATE))  # kept, out of the KPIs
    upload(server.url, key, ratings=rows)
    status, s = call(server.url, "/api/v1/summary?node=BJ-001", token)
    assert status == 200, s
    assert (s["n"], s["n_all"]) == (32, 33)
    assert s["index"] == 65.625 and s["csat"] == 0.65625  # not 65.62 / 0.6562
    lo, hi = s["csat_ci"]
    assert lo < 0.65625 < hi and round(lo, 4) != lo  # the interval is unrounded too

    ratings = call(server.url, "/api/v1/ratings?node=BJ-001", token)[1]["ratings"]
    by_key = {(r["serial"], r["journal_seq"]): r for r in ratings}
    assert by_key[("K2", 1)]["flags"] == ["multi_key", "late"]
    assert by_key[("K1", 1)]["flags"] == []

    # S001 appeals their first rating (a 1); the branch's manager upholds it
    clerk = logged_in(server.url, "s001")
    appeal = {"serial": "K1", "journal_seq": "1", "reason": "pressed by a child"}
    assert clerk.post("/appeals/", appeal)[0] == 302
    manager = logged_in(server.url, "bj-manager")
    page = manager.get("/appeals/")[1].decode()
    (pk,) = re.findall(r'action="/appeals/(\d+)/decide"', page)
    assert manager.post(f"/appeals/{pk}/decide", {"decision": "upheld", "note": "video"})[0] == 302

    ratings = call(server.url, "/api/v1/ratings?node=BJ-001", token)[1]["ratings"]
    upheld = next(r for r in ratings if (r["serial"], r["journal_seq"]) == ("K1", 1))
    assert upheld["flags"] == ["appeal_upheld"]
    s = call(server.url, "/api/v1/summary?node=BJ-001", token)[1]
    assert (s["n"], s["n_all"]) == (31, 33) and s["index"] == 2100 / 31

    # the pages show the labels, in the reader's language
    manager.headers = {"Accept-Language": "en"}
    page = manager.get("/ratings/BJ-001/")[1].decode()
    assert "<td>appeal-upheld</td>" in page and "<td>multi-key late</td>" in page
    manager.headers = {"Accept-Language": "zh-hans"}
    page = manager.get("/ratings/BJ-001/")[1].decode()
    assert "<td>申诉成立</td>" in page and "<td>多键 超时</td>" in page

    # the API's document lists the flags from the same table
    doc = call(server.url, "/api/v1/openapi.json")[1]
    flags_doc = doc["components"]["schemas"]["RatingOut"]["properties"]["flags"]["description"]
    assert "appeal_upheld (" in flags_doc and "multi_key (" in flags_doc


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


def test_no_server_module_imports_the_usb_codec() -> None:
    importers = sorted(
        str(p.relative_to(SERVER))
        for p in SERVER.rglob("*.py")
        if any(m == "ratepad.wire" or m.startswith("ratepad.wire.") for m in _imports(p))
    )
    assert importers == []


_PROBE = """
import django
django.setup()
from django.utils import translation
from ratepad.flags import FLAGS, ROLLUP_FLAGS
from ratepad_server.rollups import models
from ratepad_server.rollups.service import FLAG_COLUMNS
from ratepad_server.web.flag_labels import LABELS

for model in (models.HourRollup, models.DayRollup, models.NodeDayRollup):
    fields = {f.name for f in model._meta.get_fields()}
    missing = [c for c in FLAG_COLUMNS if c not in fields]
    assert not missing, (model.__name__, missing)
assert list(FLAG_COLUMNS) == [f.name for f in ROLLUP_FLAGS]
with translation.override("zh-hans"):
    zh = {n: str(label) for n, label in LABELS.items()}
with translation.override("en"):
    en = {n: str(label) for n, label in LABELS.items()}
assert sorted(zh) == sorted(f.name for f in FLAGS), zh
untranslated = [n for n in zh if zh[n] == en[n]]
assert not untranslated, untranslated
assert all(" " not in label for label in en.values()), en  # the pages join them with spaces
print("ok")
"""


def test_rollup_columns_and_web_labels_cover_the_table(tmp_path: Path) -> None:
    env = {**server_env(), "DJANGO_SETTINGS_MODULE": "ratepad_server.settings",
           "RATEPAD_DB": f"sqlite:///{tmp_path / 'unused.sqlite3'}"}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=120)  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr
