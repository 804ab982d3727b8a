"""The monthly PDF of a seeded branch, in Chinese (the default) and in English: one language per
document, the Chinese font embedded as a subset, more than one page, its sections present,
its figures those of the report's export, the dates on the trend's axis, the significantly low
window and staff member badged, the month's alerts and appeals counted; page 1 rendered to a
PNG (tests/artifacts/) that is not blank. Without its font the PDF is refused with the reason."""

from __future__ import annotations

import calendar
import csv
import io
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parent / "web"))

from serverlib import Server, Site
from webclient import logged_in
from webdata import rating, upload

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
NAMES = ("朝阳支行", "1号窗口", "2号窗口", "王小明", "李华")  # the test organisation's own names
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")

# words each document must show, and words of the other language it must not
SECTIONS = {
    "zh-hans": ["服务评价月报", "概览", "环比", "同比", "趋势", "每日满意度指数", "参评率",
                "员工", "显著偏低", "本月告警", "本月申诉", "闭环月报"],
    "en": ["Monthly service report", "Summary", "Against the previous period",
           "Against the same period last year", "Trend", "Daily index", "Response rate",
           "Staff", "significantly low", "Alerts of the month", "Appeals of the month",
           "Monthly loop report"],
}  # fmt: skip
FOREIGN = {"zh-hans": ["响应率", "Summary", "Response rate", "significantly", "Alerts", "Page "],
           "en": ["响应率"]}  # fmt: skip


def _seed(site: Site, server: Server) -> str:
    """BJ-001 this month: window 1 (S001) nearly all 5s, window 2 (S002) mostly 1s — worse
    than the branch beyond the funnel's limits; a low-rating rule raising alerts; an appeal."""
    admin = logged_in(server.url, "hq-admin")
    status, _ = admin.post("/rules/", {"name": "bad", "node": "BJ", "kind": "low_rating",
                                       "level": "1", "deadline_days": "3"})  # fmt: skip
    assert status == 302
    rows = [rating("K1", i, 5, ago_s=30) for i in range(1, 41)]
    rows.append(rating("K1", 41, 2, ago_s=30))
    rows += [rating("K2", i, 1 if i <= 30 else 5, staff="S002", ago_s=30) for i in range(1, 41)]
    # the month before: all 5s (this month is significantly worse than it)
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    before = (now.replace(day=1, hour=12) - timedelta(days=10)).timestamp()
    rows += [rating("K1", 100 + i, 5, ago_s=now.timestamp() - before) for i in range(40)]
    upload(server.url, site.keys["BJ-001"], ratings=rows)
    clerk = logged_in(server.url, "s001")
    status, _ = clerk.post("/appeals/", {"serial": "K1", "journal_seq": "41",
                                         "reason": "the customer pressed twice"})  # fmt: skip
    assert status == 302
    return now.strftime("%Y-%m")


def _pct(x: str) -> str:
    """A raw export's fraction as the PDF prints it (the web's format)."""
    return f"{float(x) * 100:.1f}%" if x else "–"


def _fonts(reader: PdfReader) -> list[dict[str, Any]]:
    out = []
    for page in reader.pages:
        for ref in page["/Resources"]["/Font"].values():
            out.append(ref.get_object())
    return out


def _embedded_subset(font: dict[str, Any]) -> bool:
    """A TrueType font whose program is in the file, cut to the glyphs used (ABCDEF+Name)."""
    descendants = font.get("/DescendantFonts")
    inner = descendants[0].get_object() if descendants else font
    descriptor = inner.get("/FontDescriptor")
    if descriptor is None:
        return False
    descriptor = descriptor.get_object()
    return "/FontFile2" in descriptor and re.match(r"/?[A-Z]{6}\+", str(inner["/BaseFont"]))


def _figures_after(lines: list[str], heading: str) -> list[int]:
    """The numbers of the first table row under ``heading`` (its header's words skipped)."""
    at = lines.index(heading) + 1
    while not lines[at].isdigit():
        at += 1
    out = []
    while lines[at].isdigit():
        out.append(int(lines[at]))
        at += 1
    return out


def _png(pdf: bytes, path: Path) -> float:
    """Page 1 as a PNG at ``path``; the share of its pixels that are not (nearly) white."""
    pdfium = pytest.importorskip("pypdfium2", reason="pypdfium2 renders the PDF (make setup)")
    document = pdfium.PdfDocument(pdf)
    try:
        image = document[0].render(scale=1.5).to_pil()
    finally:
        document.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    histogram = image.convert("L").histogram()
    return 1 - sum(histogram[245:]) / sum(histogram)


def test_the_monthly_pdf_in_each_language(site: Site, server: Server) -> None:
    month = _seed(site, server)
    manager = logged_in(server.url, "bj-manager")
    first = f"{month}-01"
    status, body = manager.get(f"/report/BJ-001/export.csv?raw=1&since={first}&until="
                               f"{_last_day(month)}")  # fmt: skip
    assert status == 200
    report = {(r["level"], r["code"]): r for r in csv.DictReader(io.StringIO(body.decode(
        "utf-8-sig")))}  # fmt: skip
    total, w1, w2 = report[("total", "BJ-001")], report[("window", "BJ-001-W1")], report[
        ("window", "BJ-001-W2")]  # fmt: skip
    assert w2["significance"] == "low" and report[("staff", "S002")]["significance"] == "low"
    for lang in ("zh-hans", "en"):
        manager.headers = {"Accept-Language": lang}
        status, pdf = manager.get(f"/report/BJ-001/monthly.pdf?month={month}")
        assert status == 200 and pdf.startswith(b"%PDF"), pdf[:300]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"monthly-{lang}-{site.backend}.pdf").write_bytes(pdf)
        reader = PdfReader(io.BytesIO(pdf))
        assert len(reader.pages) >= 2
        fonts = _fonts(reader)
        assert fonts and all(_embedded_subset(f) for f in fonts), fonts  # nothing left unembedded
        text = "\n".join(p.extract_text() for p in reader.pages)
        squeezed = re.sub(r"\s", "", text)  # a table's cell wraps its words over lines
        for word in SECTIONS[lang]:
            assert re.sub(r"\s", "", word) in squeezed, (lang, word)
        for word in FOREIGN[lang]:
            assert re.sub(r"\s", "", word) not in squeezed, (lang, word)
        if lang == "en":  # no Chinese but the organisation's own names
            rest = text
            for name in NAMES:
                rest = rest.replace(name, "")
            assert not CJK.search(rest), CJK.findall(rest)[:20]
        # the report's figures: the branch's, each window's and each staff member's
        assert _pct(total["csat"]) in text and f"{float(total['index']):.1f}" in text
        assert _pct(total["response_rate"]) in text  # "–": these ratings came without prompts
        lines = [x.strip() for x in text.splitlines()]  # pypdf: a table's cell a line
        low = {"zh-hans": "显著偏低", "en": "significantly low"}[lang]
        for unit, badge in ((w1, ""), (w2, low)):
            i = lines.index(unit["code"])  # rank, code, name, n, index, CSAT, CI, 参评率, …
            cells = lines[i - 1 : i + 10]
            assert cells[3] == unit["n"] and cells[4] == f"{float(unit['index']):.1f}", cells
            assert (
                cells[5] == _pct(unit["csat"]) and cells[8] == f"{float(unit['shrunk_index']):.1f}"
            )
            assert (badge in " ".join(cells[9:11])) if badge else cells[9] == "2", cells
        staff = lines.index("S002")
        assert low in " ".join(lines[staff + 8 : staff + 10])  # window 2's staff member too
        # 环比: the month before, 40 ratings all 5s, tested and called significant
        decline = {"zh-hans": "显著下降", "en": "significant decline"}[lang]
        assert re.search(decline + r"\s*\(p\s*<\s*0\.001", text.replace("（", "(")), lang
        # the trend's axis: dates of the month, not day numbers
        assert f"{month[5:]}-01" in text
        # the month's alerts and appeals, counted: the first figure under each heading
        alerts = site.sql("SELECT count(*) FROM alerts_alert")
        assert alerts is not None and alerts[0] > 0
        assert _figures_after(lines, SECTIONS[lang][9])[:2] == [alerts[0], alerts[0]]  # all open
        assert _figures_after(lines, SECTIONS[lang][10])[:2] == [1, 1]  # one, pending
        ink = _png(pdf, ARTIFACTS / f"monthly-{lang}-{site.backend}.png")
        assert ink > 0.02, ink  # text and charts, not a blank page
    # above the branches: the branches ranked, and the window and staff member below theirs
    manager.headers = {}
    status, pdf = manager.get(f"/report/BJ/monthly.pdf?month={month}")
    (ARTIFACTS / f"monthly-region-zh-hans-{site.backend}.pdf").write_bytes(pdf)
    lines = [
        x.strip() for p in PdfReader(io.BytesIO(pdf)).pages for x in p.extract_text().split("\n")
    ]
    assert status == 200 and "BJ-002" in lines
    below = lines[lines.index("显著低于所在网点") :]
    assert "BJ-001-W2 2号窗口" in below[:20] and "S002 李华" in below[:30], below[:30]


def _last_day(month: str) -> str:
    year, mon = map(int, month.split("-"))
    return f"{month}-{calendar.monthrange(year, mon)[1]:02d}"


_PROBE = """
import sys
import django
django.setup()
from django.conf import settings
from django.utils import translation
from ratepad_server.web.monthly import PdfFontMissing, font
translation.activate("en")
for path in sys.argv[1:]:
    settings.PDF_FONT = path
    try:
        font()
    except PdfFontMissing as exc:
        print(exc)
"""


def test_without_its_font_the_pdf_is_refused_with_the_reason(tmp_path: Path) -> None:
    """A missing file, and a file that is no TrueType font: one line naming it and the fix
    (the view answers with it in the site's error page)."""
    import subprocess

    from serverlib import server_env

    (tmp_path / "not-a-font.ttf").write_bytes(b"\0" * 64)
    env = {**server_env(), "DJANGO_SETTINGS_MODULE": "ratepad_server.settings"}
    paths = [str(tmp_path / "no-such-font.ttc"), str(tmp_path / "not-a-font.ttf")]
    out = subprocess.run([sys.executable, "-c", _PROBE, *paths], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.splitlines()  # fmt: skip
    assert len(out) == 2, out
    assert "no-such-font.ttc is missing" in out[0] and "fonts-wqy-microhei" in out[0]
    assert "not-a-font.ttf cannot be embedded" in out[1]
    assert all("RATEPAD_PDF_FONT" in line for line in out)
