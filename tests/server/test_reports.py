"""Reports from the rollups: the figures on the pages and in the exports equal
``ratepad.metrics`` over the uploaded ratings; drill-down HQ → region → branch → window →
staff; small n greyed; CSV with a BOM, XLSX, the monthly PDF; a staff member sees only
themselves."""

from __future__ import annotations

import csv
import io
import re
import sys
from pathlib import Path

from openpyxl import load_workbook

sys.path.insert(0, str(Path(__file__).resolve().parent / "web"))

from serverlib import Server, Site
from webclient import logged_in
from webdata import rating, upload

from ratepad import metrics

SCORES_W1 = [5, 5, 4, 3, 1, 5, 4, 2, 5, 5]
SCORES_W2 = [1, 2, 5]
VALUES = {1: 0, 2: 40, 3: 60, 4: 80, 5: 100}


def _load(site: Site, server: Server) -> None:
    key = site.keys["BJ-001"]
    rows = [rating("K1", i + 1, s) for i, s in enumerate(SCORES_W1)]
    rows += [rating("K2", i + 1, s, staff="S002") for i, s in enumerate(SCORES_W2)]
    rows.append(rating("K2", 9, 5, staff="S002", flags=0x4))  # several keys: kept, not counted
    rows.append(rating("K2", 10, 4, staff="S002", flags=0x1))  # unprompted
    upload(server.url, key, ratings=rows)
    upload(server.url, site.keys["SH-001"], ratings=[rating("K4", 1, 1, staff="S101")])


def _counts(scores: list[int]) -> dict[int, int]:
    return {s: scores.count(s) for s in range(1, 6)}


def test_report_figures_equal_the_metrics(site: Site, server: Server) -> None:
    _load(site, server)
    manager = logged_in(server.url, "bj-manager")
    status, body = manager.get("/report/BJ/export.csv?raw=1")
    assert status == 200 and body.startswith("\ufeff".encode())
    table = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    rows = {(r["level"], r["code"]): r for r in table}
    both = SCORES_W1 + SCORES_W2 + [4]  # the unprompted 4 counts, the multi-key 5 does not
    total = rows[("total", "BJ")]
    assert int(total["n"]) == len(both) and int(total["n_all"]) == len(both) + 1
    assert abs(float(total["index"]) - round(metrics.level_index(_counts(both), VALUES), 2)) < 1e-9
    k = sum(1 for s in both if s >= 4)
    lo, hi = metrics.wilson(k, len(both))
    assert abs(float(total["csat"]) - round(k / len(both), 4)) < 1e-9
    assert abs(float(total["csat_lo"]) - round(lo, 4)) < 1e-9
    assert abs(float(total["csat_hi"]) - round(hi, 4)) < 1e-9
    # drill-down: BJ's children are its branches; SH's rating is not in BJ's report
    assert {c for lvl, c in rows if lvl == "node"} == {"BJ-001", "BJ-002"}
    assert int(rows[("node", "BJ-002")]["n"]) == 0
    assert rows[("total", "BJ")]["small_n"] == "True"  # 14 < 30
    # shrinkage toward the parent's index with 20 pseudo-ratings
    s001 = rows[("staff", "S001")]
    expected = metrics.shrunk_index(metrics.level_index(_counts(SCORES_W1), VALUES),
                                    len(SCORES_W1), metrics.level_index(_counts(both), VALUES),
                                    20)  # fmt: skip
    assert abs(float(s001["shrunk_index"]) - round(expected, 2)) < 1e-9
    # the branch page lists windows, the window page staff
    status, page = manager.get("/report/BJ-001/")
    assert status == 200 and b"BJ-001-W1" in page and b"BJ-001-W2" in page
    status, page = manager.get("/report/BJ-001/?window=BJ-001-W2")
    assert status == 200 and b"S002" in page and b"staff=S001" not in page
    assert b'class="small"' in page  # n below the minimum: greyed out
    # misuse: the multi-key press among all 15 ratings
    assert re.search("<th>多键</th>".encode(), page)  # the flag's label in the reader's language
    # XLSX has the same table
    status, body = manager.get("/report/BJ/export.xlsx?raw=1")
    ws = load_workbook(io.BytesIO(body)).active
    assert ws is not None
    values = [[c.value for c in r] for r in ws.iter_rows()]
    assert values[0][:4] == ["level", "code", "name", "n"] and values[1][3] == len(both)
    # the monthly PDF of this month
    from datetime import datetime
    from zoneinfo import ZoneInfo

    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    status, pdf = manager.get(f"/report/BJ/monthly.pdf?month={month}")
    assert status == 200 and pdf.startswith(b"%PDF") and len(pdf) > 2000
    assert manager.get("/report/BJ/monthly.pdf?month=13")[0] == 400
    # the SH manager cannot export BJ
    assert logged_in(server.url, "sh-manager").get("/report/BJ/export.csv")[0] == 403


def test_staff_export_only_their_own(site: Site, server: Server) -> None:
    _load(site, server)
    clerk = logged_in(server.url, "s001")
    status, body = clerk.get("/ratings/BJ-001/export.csv?raw=1")
    assert status == 200
    table = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert len(table) == len(SCORES_W1) and {r["staff_id"] for r in table} == {"S001"}
    status, body = clerk.get("/ratings/BJ-001/export.csv?raw=1&staff=S002")  # ignored for staff
    assert {r["staff_id"] for r in csv.DictReader(io.StringIO(body.decode("utf-8-sig")))} == {
        "S001"
    }
    assert clerk.get("/ratings/SH-001/")[0] == 403


def test_survey_import_gives_cronbach_alpha(site: Site, server: Server) -> None:
    from ratepad.surveys import parse_scores_csv, survey_report

    ref = Path(__file__).resolve().parents[2].parent / "shared" / "reference-data"
    path = ref / "cronbach_alpha.csv"  # shared/ sits beside the checkout
    text = path.read_text(encoding="utf-8")
    expected = survey_report(parse_scores_csv(text))
    viewer = logged_in(server.url, "bj-viewer")
    boundary = "----ratepad"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"survey.csv\"\r\nContent-Type: text/csv\r\n\r\n{text}\r\n"
            f"--{boundary}--\r\n").encode()  # fmt: skip
    import urllib.request

    viewer.get("/survey/")
    token = next(c.value for c in viewer.jar if c.name == "csrftoken")
    req = urllib.request.Request(
        server.url + "survey/",
        data=body,
        method="POST",
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "X-CSRFToken": token or "",
        },
    )
    with viewer.opener.open(req) as resp:
        page = resp.read().decode()
    assert f"α = {expected.alpha:.4f}" in page
    assert f"{expected.ci[0]:.4f}" in page and f"{expected.ci[1]:.4f}" in page
    assert page.count("<tr>") == 1 + len(expected.item_stats)
