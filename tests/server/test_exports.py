"""Exports for a reader: headers in the reader's language (the web's words), percentages and
local times as the web prints them in CSV and as typed cells in XLSX (percent and date number
formats), what the file covers (node, period, window, staff member, filters) in ``#`` lines
above the CSV's table and on a sheet of its own in XLSX, and a total row named by what it totals
— a window's or a staff member's report never labels its total as the branch. ``?raw=1`` keeps
the layout for programs: identifier headers, fractions, ISO times, flag names."""

from __future__ import annotations

import csv
import io
import sys
from datetime import datetime
from pathlib import Path

from openpyxl import load_workbook

sys.path.insert(0, str(Path(__file__).resolve().parent / "web"))

from serverlib import Server, Site
from webclient import WebClient, logged_in
from webdata import rating, upload


def _csv(client: WebClient, path: str) -> list[list[str]]:
    status, body = client.get(path)
    assert status == 200 and body.startswith("\ufeff".encode()), body[:200]
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def _split(lines: list[list[str]]) -> tuple[dict[str, str], list[str], list[list[str]]]:
    """The ``#`` lines (label → value), the header and the rows."""
    about = {r[0][2:]: (r[1] if len(r) > 1 else "") for r in lines if r and r[0].startswith("#")}
    table = [r for r in lines if r and not r[0].startswith("#")]
    return about, table[0], table[1:]


def test_exports_speak_the_readers_language_and_say_what_they_hold(
    site: Site, server: Server
) -> None:
    rows = [rating("K1", i, 5) for i in range(1, 8)]
    rows += [rating("K2", i, s, staff="S002", flags=0x1 if s == 4 else 0)
             for i, s in enumerate((1, 2, 4), 1)]  # fmt: skip
    upload(server.url, site.keys["BJ-001"], ratings=rows)
    manager = logged_in(server.url, "bj-manager")

    # the branch's report in Chinese: what it covers, the web's headers, percentages
    about, head, table = _split(_csv(manager, "/report/BJ-001/export.csv"))
    assert about["机构"] == "朝阳支行 (BJ-001)" and about["期间"].endswith("(近30天)")
    assert "导出时间" in about and "窗口" not in about
    assert head[:3] == ["行类型", "编码", "名称"] and "满意度指数" in head and "参评率" in head
    assert "显著性" in head
    total = table[0]
    assert total[:4] == ["合计", "BJ-001", "朝阳支行", "10"]
    assert total[head.index("CSAT")] == "80.0%"  # 8 of 10 rated 4 or 5
    w2 = next(r for r in table if r[1] == "BJ-001-W2")
    assert w2[0] == "窗口" and w2[head.index("CSAT")] == "33.3%"
    assert w2[head.index("样本不足")] == "是" and w2[head.index("显著性")] == "样本不足"

    # narrowed to a window, then to a staff member: the total is theirs, and says so
    about, head, table = _split(_csv(manager, "/report/BJ-001/export.csv?window=BJ-001-W2"))
    assert about["窗口"] == "BJ-001-W2 2号窗口"
    assert table[0][:4] == ["合计", "BJ-001-W2", "2号窗口", "3"]
    about, head, table = _split(_csv(manager, "/report/BJ-001/export.csv?staff=S001"))
    assert about["员工"] == "S001 王小明" and table[0][:4] == ["合计", "S001", "王小明", "7"]
    raw = list(csv.DictReader(io.StringIO(manager.get(
        "/report/BJ-001/export.csv?raw=1&window=BJ-001-W2")[1].decode("utf-8-sig"))))  # fmt: skip
    assert (raw[0]["level"], raw[0]["code"], raw[0]["n"]) == ("total", "BJ-001-W2", "3")
    assert raw[0]["csat"] == "0.3333" and raw[0]["name"] == "2号窗口"

    # the ratings list with its filters, in English
    manager.headers = {"Accept-Language": "en"}
    about, head, table = _split(_csv(manager, "/ratings/BJ-001/export.csv?score=4&score=1"))
    assert about["Node"] == "朝阳支行 (BJ-001)" and about["Score"] == "1, 4"
    assert about["Ratings"] == "2" and about["Order"] == "newest first"
    assert head == ["Time", "Keypad", "Journal number", "Window", "Staff", "Score",
                    "Level value", "Flags"]  # fmt: skip
    assert sorted(r[5] for r in table) == ["1", "4"]
    four = next(r for r in table if r[5] == "4")
    assert four[7] == "unprompted" and datetime.strptime(four[0], "%Y-%m-%d %H:%M:%S")
    raw_rows = _csv(manager, "/ratings/BJ-001/export.csv?raw=1&score=4")
    assert raw_rows[0][0] == "time" and datetime.fromisoformat(raw_rows[1][0]).tzinfo
    manager.headers = {}

    # XLSX: the table on the first sheet with typed cells, what it covers on the second
    status, body = manager.get("/report/BJ-001/export.xlsx?window=BJ-001-W2")
    assert status == 200
    book = load_workbook(io.BytesIO(body))
    assert book.sheetnames == ["报表", "导出说明"]
    sheet = [list(r) for r in book["报表"].iter_rows(min_row=1, max_row=2)]
    head = [c.value for c in sheet[0]]
    csat = sheet[1][head.index("CSAT")]
    assert abs(csat.value - 1 / 3) < 1e-4 and csat.number_format == "0.0%"
    assert [c.value for c in sheet[1][:4]] == ["合计", "BJ-001-W2", "2号窗口", 3]
    about_rows = {r[0]: r[1] for r in book["导出说明"].iter_rows(min_row=2, values_only=True)}
    assert about_rows["窗口"] == "BJ-001-W2 2号窗口" and about_rows["机构"] == "朝阳支行 (BJ-001)"
    status, body = manager.get("/ratings/BJ-001/export.xlsx")
    cells = next(load_workbook(io.BytesIO(body))["评价记录"].iter_rows(min_row=2, max_row=2))
    assert isinstance(cells[0].value, datetime) and cells[0].number_format.startswith("yyyy")

    # the survey pages' exports go the same way (web/surveys.py): the return visits, none yet
    about, head, table = _split(_csv(manager, "/returnvisits/BJ-001/export.csv"))
    assert about["机构"] == "朝阳支行 (BJ-001)" and about["回访记录"] == "0"
    assert head[:3] == ["网点", "回访时间", "回访对象"] and table == []

    # a bad format or layout: 400 with the reason
    status, body = manager.get("/report/BJ-001/export.csv?raw=yes")
    assert status == 400 and "raw" in body.decode()
    assert manager.get("/report/BJ-001/export.ods")[0] == 400
