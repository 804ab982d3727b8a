"""Alerts as ratings arrive and their closed loop: a bad rating raises one alert (however often
its batch is replayed), managers are notified in the web, by e-mail (a local SMTP server of the
test's own, aiosmtpd) and by webhook (a local HTTP server); the alert is acknowledged, assigned,
commented and resolved; only the allowed moves are possible; rate rules need their minimum n;
an upheld appeal takes the rating out of the KPIs and keeps it flagged."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parent / "web"))

from pg import free_port, wait_for
from serverlib import Server, Site, call
from webclient import logged_in
from webdata import rating, upload


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def mailbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Mailbox]:
    box = _Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("RATEPAD_SMTP", f"127.0.0.1:{port}")
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    monkeypatch.setenv("RATEPAD_WEBHOOK_ALLOW", "127.0.0.1")  # loopback: listed explicitly

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/hook", received
    finally:
        httpd.shutdown()


def _alert_ids(client: Any) -> list[int]:
    import re

    status, body = client.get("/alerts/")
    assert status == 200
    return sorted({int(m) for m in re.findall(rb'href="/alerts/(\d+)/"', body)})


def test_a_bad_rating_raises_one_alert_and_the_loop_closes(
    site: Site, mailbox: _Mailbox, hook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, calls = hook
    server = site.server()
    try:
        admin = logged_in(server.url, "hq-admin")
        status, _ = admin.post("/rules/", {
            "name": "差评", "node": "BJ", "kind": "low_rating", "level": "2",
            "deadline_days": "3", "emails": "duty@example.test", "webhook": url,
        })  # fmt: skip
        assert status == 302
        key = site.keys["BJ-001"]
        batch = [rating("K1", 1, 5), rating("K1", 2, 1), rating("K1", 3, 2, flags=0x2)]
        upload(server.url, key, ratings=batch)
        upload(server.url, key, ratings=batch)  # a replay raises nothing twice
        manager = logged_in(server.url, "bj-manager")
        ids = _alert_ids(manager)
        assert len(ids) == 1  # the 5 is fine, the repeat (flag 0x2) does not count
        alert_id = ids[0]
        assert _alert_ids(logged_in(server.url, "sh-manager")) == []  # another subtree
        status, body = manager.get("/notifications/")
        assert status == 200 and "最近一条 1 分".encode() in body  # the reader's words
        wait_for(lambda: mailbox.messages and calls, 15, "the e-mail and the webhook")
        assert mailbox.messages[0].rcpt_tos == ["duty@example.test"]
        assert b"score 1" in mailbox.messages[0].content
        assert calls[0]["id"] == alert_id and calls[0]["state"] == "open"
        # the deadline: 3 working days (Mon-Fri) from today in the reports' time zone
        status, body = manager.get(f"/alerts/{alert_id}/")
        text = body.decode()
        assert 'id="alert-state" data-state="open"' in text
        today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
        start, left, d = today, 3, today
        while left:
            d = date.fromordinal(d.toordinal() + 1)
            left -= d.weekday() < 5
        assert d.isoformat() in text and start <= d
        # viewer may look, not act
        viewer = logged_in(server.url, "bj-viewer")
        assert viewer.get(f"/alerts/{alert_id}/")[0] == 200
        assert viewer.post(f"/alerts/{alert_id}/act", {"action": "acknowledge"})[0] == 403
        # resolve needs a note; acknowledge, assign, comment, resolve
        assert manager.post(f"/alerts/{alert_id}/act", {"action": "resolve"})[0] == 400
        assert (
            manager.post(
                f"/alerts/{alert_id}/act", {"action": "acknowledge", "note": "calling the customer"}
            )[0]
            == 302
        )
        assert manager.post(f"/alerts/{alert_id}/act", {"action": "acknowledge"})[0] == 400
        assert (
            manager.post(
                f"/alerts/{alert_id}/act", {"action": "assign", "assignee": "bj001-admin"}
            )[0]
            == 302
        )
        assert (
            manager.post(f"/alerts/{alert_id}/act", {"action": "assign", "assignee": "sh-manager"})[
                0
            ]
            == 403
        )
        branch_admin = logged_in(server.url, "bj001-admin")
        status, body = branch_admin.get("/notifications/")
        assert "指派给您".encode() in body  # "assigned to you", in the reader's language
        assert branch_admin.post(f"/alerts/{alert_id}/comment", {"text": "spoke to W1"})[0] == 302
        assert (
            branch_admin.post(
                f"/alerts/{alert_id}/act",
                {"action": "resolve", "note": "queue explained; apology sent"},
            )[0]
            == 302
        )
        status, body = manager.get(f"/alerts/{alert_id}/")
        text = body.decode()
        assert 'id="alert-state" data-state="resolved"' in text and "apology sent" in text
        assert "calling the customer" in text and "spoke to W1" in text
        assert (
            manager.post(f"/alerts/{alert_id}/act", {"action": "resolve", "note": "again"})[0]
            == 400
        )
        # every step is in the audit log, with who
        status, body = admin.get("/audit/")
        audit = body.decode()
        for action in (
            "rule.create",
            "alert.acknowledge",
            "alert.assign",
            "alert.comment",
            "alert.resolve",
        ):
            assert action in audit, action
        assert "bj001-admin" in audit and "bj-manager" in audit
    finally:
        server.close()


def test_rate_rule_needs_its_minimum_n(site: Site, server: Server) -> None:
    admin = logged_in(server.url, "hq-admin")
    admin.post(
        "/rules/",
        {
            "name": "share",
            "node": "BJ-001",
            "kind": "bad_share",
            "level": "2",
            "threshold": "0.5",
            "min_n": "6",
            "minutes": "60",
        },
    )
    key = site.keys["BJ-001"]
    upload(server.url, key, ratings=[rating("K1", i, 1) for i in range(1, 6)])
    assert _alert_ids(admin) == []  # 5 bad of 5: below n = 6, not a verdict
    upload(server.url, key, ratings=[rating("K1", 6, 1)])
    assert len(_alert_ids(admin)) == 1
    upload(server.url, key, ratings=[rating("K1", 7, 1), rating("K1", 8, 5)])
    ids = _alert_ids(admin)
    assert len(ids) == 1  # one open alert per window and rule: the repeat folds into it
    admin.headers = {"Accept-Language": "en"}
    page = admin.get(f"/alerts/{ids[0]}/")[1].decode()  # the engine's reason, the latest
    assert 'id="explanation">7 of 8 ratings ≤ 2 in 60 min at 1号窗口<' in page
    assert 'id="alert-count">2<' in page


def test_upheld_appeal_leaves_the_kpis_kept_and_flagged(site: Site, server: Server) -> None:
    key = site.keys["BJ-001"]
    upload(
        server.url,
        key,
        ratings=[rating("K1", 1, 1), rating("K1", 2, 5), rating("K1", 3, 5, staff="S002")],
    )
    summary = call(server.url, "/api/v1/summary?node=BJ-001", site.tokens["hq-admin"])[1]
    assert summary["n"] == 3
    clerk = logged_in(server.url, "s001")
    status, body = clerk.get("/ratings/BJ-001/")
    assert status == 200 and body.count(b'class="score s') == 2  # only their own two
    assert clerk.post("/appeals/", {"serial": "K1", "journal_seq": "3", "reason": "x"})[0] == 404
    assert (
        clerk.post(
            "/appeals/", {"serial": "K1", "journal_seq": "1", "reason": "pressed by a child"}
        )[0]
        == 302
    )
    assert (
        clerk.post("/appeals/", {"serial": "K1", "journal_seq": "1", "reason": "again"})[0] == 400
    )
    manager = logged_in(server.url, "bj-manager")
    assert b"pressed by a child" in manager.get("/appeals/")[1]
    assert (
        logged_in(server.url, "sh-manager").post("/appeals/1/decide", {"decision": "upheld"})[0]
        == 403
    )
    assert manager.post("/appeals/1/decide", {"decision": "upheld", "note": "video"})[0] == 302
    assert manager.post("/appeals/1/decide", {"decision": "rejected"})[0] == 400
    summary = call(server.url, "/api/v1/summary?node=BJ-001", site.tokens["hq-admin"])[1]
    assert (summary["n"], summary["n_all"], summary["counts"]["1"]) == (2, 3, 0)
    rows = call(server.url, "/api/v1/ratings?node=BJ-001", site.tokens["hq-admin"])[1]["ratings"]
    assert len(rows) == 3  # kept
    status, body = clerk.get("/ratings/BJ-001/")
    assert "<td>申诉成立</td>".encode() in body  # the flag's label (zh-Hans, the default)
    assert b"appeal" in clerk.get("/notifications/")[1]


def test_a_silent_agent_raises_offline_alerts(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """During opening hours, a keypad reported disconnected raises an offline alert at once;
    a keypad whose agent stops sending (not even its heartbeat) raises one after the rule's
    minutes, and the live wall shows it offline until the agent is heard again."""
    monkeypatch.setenv("RATEPAD_OPENING_HOURS", "00:00-23:59")
    monkeypatch.setenv("RATEPAD_OPENING_DAYS", "1-7")
    monkeypatch.setenv("RATEPAD_SILENT_CHECK_S", "0.2")
    server = site.server()
    try:
        admin = logged_in(server.url, "hq-admin")
        rule = {"name": "offline", "node": "BJ-001", "kind": "offline", "level": "2",
                "threshold": "0.3", "min_n": "1", "minutes": "2", "deadline_days": "1"}  # fmt: skip
        assert admin.post("/rules/", rule)[0] == 302
        now = int(datetime.now().timestamp() * 1000)
        key = site.keys["BJ-001"]
        upload(server.url, key, devices=[
            {"serial": "K1", "connected": True, "updated_at_ms": now},
            {"serial": "K2", "connected": False, "updated_at_ms": now},
        ])  # fmt: skip
        manager = logged_in(server.url, "bj-manager")
        wall = manager.get("/live/BJ-001/")[1].decode()
        assert 'class="tile online" id="tile-BJ-001-W1"' in wall
        assert 'class="tile offline" id="tile-BJ-001-W2"' in wall
        alerts = manager.get("/alerts/")[1].decode()
        assert "评价器 K2 于" in alerts and "评价器 K1" not in alerts  # "keypad K2 offline at"
        # the agent falls silent: its last word was 5 minutes ago
        then = f"'{datetime.now(UTC) - timedelta(minutes=5):%Y-%m-%d %H:%M:%S}'"  # UTC
        if site.cluster is not None:  # (SQLite keeps datetimes as UTC text)
            then += "::timestamp AT TIME ZONE 'UTC'"
        site.sql(f"UPDATE ingest_agentkey SET last_upload_at = {then} WHERE id = "
                 "(SELECT agent_id FROM ingest_device WHERE serial = 'K1')")  # fmt: skip
        wait_for(lambda: "其代理自" in manager.get("/alerts/")[1].decode(),
                 10, "the offline alert of a silent agent")  # fmt: skip
        wall = manager.get("/live/BJ-001/")[1].decode()
        assert 'class="tile offline" id="tile-BJ-001-W1"' in wall
        texts = manager.get("/alerts/")[1].decode()
        rows = [row for row in texts.split("<tr") if "其代理自" in row]
        assert len(rows) == 1  # one open alert per keypad
        # a heartbeat (an empty batch): the wall shows the keypad online again
        upload(server.url, key)
        wall = manager.get("/live/BJ-001/")[1].decode()
        assert 'class="tile online" id="tile-BJ-001-W1"' in wall
    finally:
        server.close()


def test_offline_alerts_follow_the_holiday_calendar(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening days are the configured weekdays, less the calendar's holidays, plus its
    adjusted working days (调休): the same calendar as the deadlines'."""
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    others = ",".join(str(d) for d in range(1, 8) if d != today.isoweekday())
    monkeypatch.setenv("RATEPAD_OPENING_HOURS", "00:00-23:59")
    monkeypatch.setenv("RATEPAD_OPENING_DAYS", others)  # today is not an opening weekday
    server = site.server()
    try:
        admin = logged_in(server.url, "hq-admin")
        rule = {"name": "offline", "node": "BJ-001", "kind": "offline", "level": "2",
                "threshold": "0.3", "min_n": "1", "minutes": "2", "deadline_days": "1"}  # fmt: skip
        assert admin.post("/rules/", rule)[0] == 302
        key, manager = site.keys["BJ-001"], logged_in(server.url, "bj-manager")
        now = int(datetime.now().timestamp() * 1000)
        upload(server.url, key, devices=[{"serial": "K2", "connected": False,
                                          "updated_at_ms": now}])  # fmt: skip
        assert "评价器 K2 于" not in manager.get("/alerts/")[1].decode()  # closed today
        site.sql(f"INSERT INTO casework_calendarday (day, working, name) "
                 f"VALUES ('{today}', TRUE, 'adjusted')")  # fmt: skip
        upload(server.url, key, devices=[{"serial": "K2", "connected": False,
                                          "updated_at_ms": now + 1000}])  # fmt: skip
        assert "评价器 K2 于" in manager.get("/alerts/")[1].decode()  # 调休: open
    finally:
        server.close()


def test_deliveries_batched_into_a_digest(
    site: Site, mailbox: _Mailbox, hook: tuple[str, list[dict[str, Any]]]
) -> None:
    """A rule that batches its deliveries: its alerts wait in one e-mail per address and one
    webhook call, sent when the rule's minutes are over, each alert a block of its own."""
    url, calls = hook
    server = site.server()
    try:
        admin = logged_in(server.url, "hq-admin")
        rule = {"name": "差评", "node": "BJ-001", "kind": "low_rating", "level": "2",
                "emails": "duty@example.test", "webhook": url, "digest_minutes": "30"}  # fmt: skip
        assert admin.post("/rules/", rule)[0] == 302
        key = site.keys["BJ-001"]
        upload(server.url, key, ratings=[rating("K1", 1, 1)])
        upload(server.url, key, ratings=[rating("K2", 2, 2)])
        assert site.sql("SELECT COUNT(*) FROM alerts_alert") == (2,)
        pending = site.sql("SELECT COUNT(*), MIN(subject) FROM alerts_delivery "
                           "WHERE digest = true AND sent_at IS NULL")  # fmt: skip
        assert pending is not None and tuple(pending) == (2, "[ratepad] 差评: 2 alerts")
        assert site.sql("SELECT COUNT(*) FROM alerts_delivery WHERE digest = false") == (0,)
        assert mailbox.messages == [] and calls == []  # not before its time
        site.sql("UPDATE alerts_delivery SET next_try_at = created_at")  # its minutes over
        wait_for(lambda: mailbox.messages and calls, 15, "the digest e-mail and webhook call")
        assert len(mailbox.messages) == 1 and len(calls) == 1
        content = mailbox.messages[0].content
        assert b"BJ-001-W1 S001: score 1" in content and b"BJ-001-W2 S001: score 2" in content
        assert calls[0]["digest"] is True and len(calls[0]["alerts"]) == 2
        ids = _alert_ids(logged_in(server.url, "bj-manager"))
        history = admin.get(f"/alerts/{ids[0]}/")[1].decode()
        assert "duty@example.test" in history and 'class="h-notified"' in history
    finally:
        server.close()
