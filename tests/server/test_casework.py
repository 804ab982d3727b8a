"""The 好差评 closed loop: a bad rating opens one case (however often its batch is replayed),
linked to its low-rating alert; the case is verified, rectified, answered and closed, each step
recorded with who and when (and in the audit log); deadlines count working days of the
holiday calendar (loaded from the shipped 2026 file or a test's own); an overdue case is
escalated once to the parent node's managers by ``sendalerts --once``; the monthly loop report
in the API, the web and the PDF; appeals only for low ratings within their deadline, a review
queue with filters and pages, and the decision note shown to the staff member."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "web"))

from serverlib import Server, Site, call, server_env
from webclient import logged_in
from webdata import rating, upload

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "server" / "ratepad_server" / "casework" / "holidays" / "cn-2026.toml"
TZ = ZoneInfo("Asia/Shanghai")


def _cli(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ratepad_server", *args, "--db", site.db],
        capture_output=True, text=True, env=server_env(), cwd=site.dir, timeout=120,
    )  # fmt: skip


def _case_ids(client: Any, query: str = "") -> list[int]:
    status, body = client.get(f"/cases/?{query}")
    assert status == 200, body[:300]
    return sorted({int(m) for m in re.findall(rb'href="/cases/(\d+)/"', body)})


def _today() -> date:
    return datetime.now(TZ).date()


def _working_days_after(start: date, n: int, off: set[date], on: set[date]) -> date:
    d = start
    while n:
        d += timedelta(days=1)
        n -= (d.weekday() < 5 and d not in off) or d in on
    return d


# -- the calendar, without a server ---------------------------------------------------------------
@pytest.fixture(scope="module")
def django_ready() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ratepad_server.settings")
    os.environ.setdefault("RATEPAD_SECRET_KEY", "only-the-calendar-is-used-here")
    import django

    django.setup()


def test_the_shipped_2026_calendar_counts_working_days(django_ready: None) -> None:
    from ratepad_server.casework.calendar import Calendar, read_holiday_file

    days = read_holiday_file(SHIPPED)
    off = {d for d, working, _ in days if not working}
    on = {d for d, working, _ in days if working}
    assert len(off) == 3 + 9 + 3 + 5 + 3 + 3 + 7 and len(on) == 6  # the State Council's notice
    assert all(d.weekday() >= 5 for d in on)  # worked weekends (调休)
    cal = Calendar(date(2025, 6, 1), date(2027, 6, 1), {d: w for d, w, _ in days})
    assert cal.add(date(2026, 9, 30), 1) == date(2026, 10, 8)  # National Day week off
    assert cal.add(date(2026, 9, 18), 1) == date(2026, 9, 20)  # a Sunday worked
    assert cal.add(date(2026, 2, 12), 2) == date(2026, 2, 14)  # a Saturday worked, then 春节
    assert cal.add(date(2026, 2, 14), 1) == date(2026, 2, 24)
    assert cal.add(date(2026, 12, 4), 5) == date(2026, 12, 11)  # an ordinary week
    # what happened on 2026-09-24 or later is within a 5-day deadline on 10-09 (not 09-23)
    assert cal.earliest_with_deadline(date(2026, 10, 9), 5) == date(2026, 9, 24)
    assert cal.add(date(2026, 9, 23), 5) < date(2026, 10, 9) <= cal.add(date(2026, 9, 24), 5)


BAD_FILES = [
    ("[[holiday]]\nname = 'x'\nto = 2026-05-01\n", "from: a date"),
    ("[[holiday]]\nname = 'x'\nfrom = 2026-05-01\nto = 2027-05-01\n", "'to' must be"),
    ("[[holiday]]\nfrom = 2026-05-01\nto = 2026-05-02\n", "name:"),
    ("[[holiday]]\nname='x'\nfrom = 2026-05-01\nto = 2026-05-01\nwork = ['x']\n", "work:"),
    ("holiday = [", "not a TOML file"),
    ("year = 2026\n", "no [[holiday]]"),
]


def test_bad_holiday_files_say_why(django_ready: None, tmp_path: Path) -> None:
    from ratepad_server.casework.calendar import CalendarFileError, read_holiday_file

    for text, why in BAD_FILES:
        bad = tmp_path / "bad.toml"
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(CalendarFileError, match=re.escape(why)):
            read_holiday_file(bad)
    with pytest.raises(CalendarFileError, match=r"nope\.toml"):
        read_holiday_file(tmp_path / "nope.toml")


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)  # PostgreSQL: the escalation test
def test_holiday_files_load_from_the_command_line(site: Site, tmp_path: Path) -> None:
    out = _cli(site, "holidays", "load", str(SHIPPED))
    assert out.returncode == 0 and "39 days added, 0 changed" in out.stdout, out.stderr
    again = _cli(site, "holidays", "load", str(SHIPPED))
    assert "0 days added, 0 changed" in again.stdout
    listed = _cli(site, "holidays", "list", "--year", "2026").stdout
    assert "2026-10-10 work 国庆节" in listed and "2026-02-23 off  春节" in listed
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_FILES[1][0], encoding="utf-8")
    out = _cli(site, "holidays", "load", str(bad))
    assert out.returncode == 2 and BAD_FILES[1][1] in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


# -- the loop's steps -----------------------------------------------------------------------------
def test_a_bad_rating_is_verified_rectified_answered_and_closed(site: Site, server: Server) -> None:
    admin = logged_in(server.url, "hq-admin")
    status, _ = admin.post("/rules/", {"name": "差评", "node": "BJ", "kind": "low_rating",
                                       "level": "2"})  # fmt: skip
    assert status == 302
    key = site.keys["BJ-001"]
    batch = [rating("K1", 1, 5), rating("K1", 2, 1), rating("K1", 3, 2, flags=0x2),
             rating("K2", 1, 3, staff="S002")]  # fmt: skip
    upload(server.url, key, ratings=batch)
    upload(server.url, key, ratings=batch)  # a replay opens nothing twice
    manager = logged_in(server.url, "bj-manager")
    ids = _case_ids(manager)
    assert len(ids) == 1  # the 1; not the 5, the 3, nor the repeat (flag 0x2)
    (pk,) = ids
    assert _case_ids(logged_in(server.url, "sh-manager")) == []
    status, body = manager.get(f"/cases/{pk}/")
    page = body.decode()
    assert status == 200 and 'data-state="verify"' in page
    assert 'class="score s1">1</b>' in page and "BJ-001-W1" in page and "王小明" in page
    alert = re.search(r'href="/alerts/(\d+)/" id="case-alert"', page)  # its low-rating alert
    assert alert is not None
    assert 'href="/ratings/BJ-001/?since=' in page  # the rating itself
    viewer = logged_in(server.url, "bj-viewer")
    assert viewer.get(f"/cases/{pk}/")[0] == 200
    assert viewer.post(f"/cases/{pk}/step", {"step": "verify", "genuine": "yes"})[0] == 403
    step = f"/cases/{pk}/step"
    assert manager.post(step, {"step": "verify"})[0] == 400  # genuine or not?
    assert manager.post(step, {"step": "rectify", "note": "x"})[0] == 400  # not its turn
    assert manager.post(step, {"step": "verify", "genuine": "yes", "note": "video"})[0] == 302
    assert manager.post(step, {"step": "verify", "genuine": "yes"})[0] == 400  # done already
    assert manager.post(step, {"step": "rectify"})[0] == 400  # what was done?
    assert manager.post(step, {"step": "rectify", "note": "queue sign replaced"})[0] == 302
    assert manager.post(step, {"step": "answer", "contacted": "yes"})[0] == 400  # how?
    assert manager.post(step, {"step": "answer", "contacted": "no"})[0] == 400  # why not?
    branch_admin = logged_in(server.url, "bj001-admin")
    assert branch_admin.post(step, {"step": "answer", "contacted": "yes", "channel": "phone",
                                    "note": "apologised"})[0] == 302  # fmt: skip
    assert branch_admin.post(step, {"step": "close", "note": "done"})[0] == 302
    page = manager.get(f"/cases/{pk}/")[1].decode()
    assert 'data-state="closed"' in page and 'id="step-form"' not in page
    steps = re.findall(r'<tr class="step-(\w+)"><td>[^<]*</td><td>([\w-]+)</td>', page)
    assert steps == [("verify", "bj-manager"), ("rectify", "bj-manager"),
                     ("answer", "bj001-admin"), ("close", "bj001-admin")]  # fmt: skip
    assert "queue sign replaced" in page and "apologised" in page
    assert site.sql("SELECT count(*) FROM audit_auditentry WHERE action LIKE 'case.%'") == (4,)
    page = manager.get(f"/alerts/{alert[1]}/")[1].decode()  # the alert: its case and steps
    assert f'href="/cases/{pk}/"' in page and "case.rectify" in page
    assert site.sql("SELECT on_time FROM casework_case") in ((True,), (1,))
    # a 'not genuine' verdict skips rectify and answer
    upload(server.url, key, ratings=[rating("K1", 4, 1)])
    (second,) = set(_case_ids(manager)) - {pk}
    step = f"/cases/{second}/step"
    assert manager.post(step, {"step": "verify", "genuine": "no"})[0] == 400  # why not?
    assert manager.post(step, {"step": "verify", "genuine": "no", "note": "a test press"})[0] == 302
    assert manager.post(step, {"step": "close"})[0] == 302
    # the month's loop report: API, web, PDF
    token = site.tokens["bj-manager"]
    status, report = call(server.url, "/api/v1/loop/report?node=BJ", token)
    assert status == 200, report
    total = report["total"]
    assert (total["opened"], total["closed"], total["on_time"], total["not_genuine"]) == (
        2,
        2,
        2,
        1,
    )
    assert total["on_time_rate"] == 1.0
    assert [(r["code"], r["opened"]) for r in report["rows"]] == [("BJ-001", 2), ("BJ-002", 0)]
    status, report = call(server.url, "/api/v1/loop/report?node=BJ-001", token)
    assert [(r["code"], r["opened"]) for r in report["rows"]] == [("BJ-001-W1", 2),
                                                                   ("BJ-001-W2", 0)]  # fmt: skip
    assert call(server.url, "/api/v1/loop/report?node=SH", token)[0] == 403
    assert call(server.url, "/api/v1/loop/report?month=2026-13", token)[0] == 400
    status, body = call(server.url, "/api/v1/loop/cases?node=BJ&open=false", token)
    assert status == 200 and [c["id"] for c in body["cases"]] == [second, pk]
    status, body = manager.get("/cases/report/?node=BJ")
    assert status == 200 and re.search(rb'<tr id="loop-total"><th>[^<]+</th><th class="num">2<',
                                       body)  # fmt: skip
    month = _today().strftime("%Y-%m")
    status, pdf = manager.get(f"/report/BJ/monthly.pdf?month={month}")
    assert status == 200 and pdf.startswith(b"%PDF")


def test_a_bad_rating_assigned_from_quarantine_opens_its_case(site: Site, server: Server) -> None:
    """A rating an admin stores from quarantine is the branch's like an upload: its case
    opens, and the branch's low-rating rule raises its alert."""
    admin = logged_in(server.url, "hq-admin")
    assert admin.post("/rules/", {"name": "差评", "node": "BJ", "kind": "low_rating",
                                  "level": "2"})[0] == 302  # fmt: skip
    answer = upload(server.url, site.keys["BJ-001"], ratings=[rating("K9", 1, 1)])  # unbound
    assert answer["quarantined"] == 1 and site.sql("SELECT count(*) FROM casework_case") == (0,)
    status, _ = call(server.url, "/api/v1/quarantine/assign", site.tokens["bj001-admin"],
                     {"serial": "K9", "journal_seq": 1, "window": "BJ-001-W2"})  # fmt: skip
    assert status == 200
    assert site.sql("SELECT count(*) FROM casework_case") == (1,)
    assert site.sql("SELECT count(*) FROM alerts_alert WHERE state = 'open'") == (1,)


def test_deadlines_skip_holidays_and_overdue_cases_escalate_once(
    site: Site, server: Server, tmp_path: Path
) -> None:
    # the next ten days are holidays, the first Saturday after them is worked (调休)
    today = _today()
    off = {today + timedelta(days=i) for i in range(1, 11)}
    saturday = max(off) + timedelta(days=(5 - max(off).weekday()) % 7 or 7)
    holidays = tmp_path / "h.toml"
    holidays.write_text(f"[[holiday]]\nname = '测试'\nfrom = {min(off)}\nto = {max(off)}\n"
                        f"work = [{saturday}]\n", encoding="utf-8")  # fmt: skip
    assert _cli(site, "holidays", "load", str(holidays)).returncode == 0
    upload(server.url, site.keys["BJ-001"], ratings=[rating("K1", 1, 1)])
    manager = logged_in(server.url, "bj-manager")
    (pk,) = _case_ids(manager)
    expected = _working_days_after(today, 5, off, {saturday})  # the default: 5 working days
    assert site.sql("SELECT deadline FROM casework_case")[0] in (expected, expected.isoformat())
    assert expected > max(off)
    # overdue: the worker hands it to BJ's managers, once
    site.sql("UPDATE casework_case SET deadline = '2026-01-05'")
    for _ in range(2):
        out = _cli(site, "sendalerts", "--once")
        assert out.returncode == 0, out.stderr
    body = manager.get("/notifications/")[1]
    assert body.count(f"差评工单 {pk} 已逾期".encode()) == 1  # in the reader's language
    assert f'href="/cases/{pk}/"'.encode() in body
    body = logged_in(server.url, "hq-admin").get("/notifications/")[1]
    assert f"差评工单 {pk} 已逾期".encode() not in body  # BJ's managers, not everyone above
    page = manager.get(f"/cases/{pk}/")[1].decode()
    assert re.search(r'id="case-escalated">[^<]*BJ', page) and "(已超期)" in page
    assert _case_ids(manager, "state=escalated") == [pk] == _case_ids(manager, "state=overdue")
    report = call(server.url, "/api/v1/loop/report?node=BJ", site.tokens["hq-admin"])[1]
    assert (report["total"]["overdue"], report["total"]["escalated"]) == (1, 1)
    assert report["total"]["on_time_rate"] == 0.0
    assert site.sql("SELECT count(*) FROM audit_auditentry WHERE action = 'case.escalate'") == (1,)


def test_the_loop_level_is_set_per_node(site: Site, server: Server) -> None:
    admin = logged_in(server.url, "hq-admin")
    assert admin.post("/cases/rules/", {"node": "BJ-001", "case_level": "3"})[0] == 302
    assert admin.post("/cases/rules/", {"node": "BJ", "case_level": "9"})[0] == 400
    assert logged_in(server.url, "bj001-admin").post(
        "/cases/rules/", {"node": "SH-001", "case_level": "1"})[0] == 403  # fmt: skip
    upload(server.url, site.keys["BJ-001"], ratings=[rating("K1", 1, 3), rating("K1", 2, 4)])
    upload(server.url, site.keys["BJ-002"], ratings=[rating("K3", 1, 3)])
    cases = call(server.url, "/api/v1/loop/cases?node=HQ", site.tokens["hq-admin"])[1]["cases"]
    assert [(c["branch"], c["score"]) for c in cases] == [("BJ-001", 3)]  # BJ-002: default 2


# -- appeals --------------------------------------------------------------------------------------
def test_appeals_low_ratings_within_the_deadline_and_the_decision_reaches_the_clerk(
    site: Site, server: Server
) -> None:
    key = site.keys["BJ-001"]
    upload(server.url, key, ratings=[rating("K1", 1, 5), rating("K1", 2, 1), rating("K1", 3, 2),
                                     rating("K1", 4, 1, ago_s=40 * 86400)])  # fmt: skip
    # K1#4: rated and received 40 days ago (an old row, not a late arrival)
    site.sql("UPDATE ingest_rating SET received_at = time WHERE journal_seq = 4")
    clerk = logged_in(server.url, "s001")
    page = clerk.get("/ratings/BJ-001/")[1].decode()
    boxes = re.findall(r'name="journal_seq" value="(\d+)"', page)
    assert sorted(boxes) == ["2", "3"]  # not the 5
    reason = {"reason": "the customer pressed by mistake"}
    status, body = clerk.post("/appeals/", {"serial": "K1", "journal_seq": "1", **reason})
    assert status == 400 and "只有 3 分及以下的评价可以申诉".encode() in body
    status, body = clerk.post("/appeals/", {"serial": "K1", "journal_seq": "4", **reason})
    assert status == 400 and "申诉期限已于".encode() in body
    assert clerk.post("/appeals/", {"serial": "K1", "journal_seq": "2", **reason})[0] == 302
    assert clerk.post("/appeals/", {"serial": "K1", "journal_seq": "3", **reason})[0] == 302
    manager = logged_in(server.url, "bj-manager")
    page = manager.get("/appeals/?state=pending")[1].decode()
    assert 'id="count">2 ' in page and "the customer pressed by mistake" in page
    assert 'class="score s1">1</b>' in page and "王小明" in page and "BJ-001-W1" in page
    (first,) = re.findall(r'id="appeal-(\d+)"><td>\d+</td>\s*<td><span class="rating"><b '
                          r'class="score s1">', page)  # fmt: skip
    assert manager.post(f"/appeals/{first}/decide", {
        "decision": "rejected", "note": "视频显示为真实客户 the video shows a real customer",
        "back": "state=pending"})[0] == 302  # fmt: skip
    assert 'id="count">1 ' in manager.get("/appeals/?state=pending")[1].decode()
    assert 'id="count">1 ' in manager.get("/appeals/?state=rejected&node=BJ-001")[1].decode()
    assert manager.get("/appeals/?node=SH-001")[0] == 403
    assert manager.get("/appeals/?state=nope")[0] == 400
    mine = clerk.get("/appeals/")[1].decode()
    assert "the video shows a real customer" in mine and "bj-manager" in mine
    assert "视频显示为真实客户" in clerk.get("/notifications/")[1].decode()
    # the appeal level and deadline follow the branch's rules
    admin = logged_in(server.url, "hq-admin")
    assert admin.post("/cases/rules/", {"node": "BJ-001", "appeal_level": "5"})[0] == 302
    assert clerk.post("/appeals/", {"serial": "K1", "journal_seq": "1", **reason})[0] == 302


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)  # the filters: both, above
def test_the_review_queue_pages(site: Site, server: Server) -> None:
    upload(server.url, site.keys["BJ-001"], ratings=[rating("K1", i, 1) for i in range(1, 53)])
    clerk = logged_in(server.url, "s001")
    for i in range(1, 53):
        status, _ = clerk.post("/appeals/", {"serial": "K1", "journal_seq": str(i), "reason": "r"})
        assert status == 302
    manager = logged_in(server.url, "bj-manager")
    first = manager.get("/appeals/?state=pending")[1].decode()
    assert 'id="count">52 ' in first and first.count('class="appeal-pending"') == 50
    assert 'href="?state=pending&amp;page=2" id="next"' in first
    second = manager.get("/appeals/?state=pending&page=2")[1].decode()
    assert second.count('class="appeal-pending"') == 2 and 'id="prev"' in second
