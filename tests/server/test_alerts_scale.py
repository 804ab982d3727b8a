"""Alerts at a bank's scale: a returning agent's backlog of old bad ratings raises no live alert
(one digest for the branch instead), a burst at one window folds into one open alert with its
count and every rating listed, a branch past its cap of open alerts gets an "n more" digest,
the engine's reason is on the alert in the reader's language, and a rule whose deliveries are
batched puts its alerts into one digest e-mail per target."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "web"))

from serverlib import Server, Site
from webclient import logged_in
from webdata import rating, upload

RULE = {"name": "差评", "node": "BJ", "kind": "low_rating", "level": "2", "minutes": "60",
        "deadline_days": "3"}  # fmt: skip
DAY = 24 * 3600.0


def _one(site: Site, statement: str) -> tuple[object, ...]:
    row = site.sql(statement)
    assert row is not None
    return tuple(row)


def test_a_returning_agents_backlog_raises_no_live_alert(site: Site, server: Server) -> None:
    admin = logged_in(server.url, "hq-admin")
    assert admin.post("/rules/", RULE)[0] == 302
    key = site.keys["BJ-001"]
    # 5,000 bad ratings two to nine days old, sent as an agent drains its outbox after an outage
    old = [rating("K1", i, 1 + i % 2, ago_s=2 * DAY + i * 120.0) for i in range(1, 5001)]
    for start in range(0, len(old), 500):
        assert upload(server.url, key, ratings=old[start : start + 500])["stored"] == 500
    live = _one(site, "SELECT COUNT(*) FROM alerts_alert WHERE digest = false")
    assert live == (0,)
    digest = _one(site, "SELECT COUNT(*), SUM(count) FROM alerts_alert WHERE digest = true")
    assert digest == (1, 5000)
    assert _one(site, "SELECT COUNT(*) FROM alerts_alertrating") == (5000,)
    # each manager and admin above the branch is told once, not 5,000 times
    assert _one(site, "SELECT COUNT(*) FROM alerts_notification WHERE user_id = (SELECT id "
                      "FROM auth_user WHERE username = 'bj-manager')") == (1,)  # fmt: skip
    manager = logged_in(server.url, "bj-manager")
    manager.headers = {"Accept-Language": "en"}
    page = manager.get("/alerts/")[1].decode()
    assert 'id="n-open">0<' in page and "5000 more in digests" in page
    page = manager.get("/alerts/?digest=1")[1].decode()
    assert "5000 rating(s) older than 60 min at 朝阳支行 arrived late" in page
    # a fresh bad rating still raises a live alert
    upload(server.url, key, ratings=[rating("K1", 5001, 1)])
    assert _one(site, "SELECT COUNT(*) FROM alerts_alert WHERE digest = false") == (1,)


def test_a_burst_at_one_window_is_one_alert_with_its_count(site: Site, server: Server) -> None:
    admin = logged_in(server.url, "hq-admin")
    assert admin.post("/rules/", RULE)[0] == 302
    key = site.keys["BJ-001"]
    burst = [rating("K2", i, 1, staff="S002", ago_s=300.0 - i) for i in range(1, 51)]
    for start in range(0, 50, 10):  # five uploads: the fold holds across batches
        upload(server.url, key, ratings=burst[start : start + 10])
    upload(server.url, key, ratings=burst[:10])  # a replay adds nothing
    rows = _one(site, "SELECT COUNT(*), MAX(count), MIN(state) FROM alerts_alert")
    assert rows == (1, 50, "open")
    assert _one(site, "SELECT COUNT(*) FROM alerts_alertrating") == (50,)
    manager = logged_in(server.url, "bj-manager")
    manager.headers = {"Accept-Language": "en"}
    alert_id = int(_one(site, "SELECT id FROM alerts_alert")[0])  # type: ignore[call-overload]
    page = manager.get(f"/alerts/{alert_id}/")[1].decode()
    assert "50 rating(s) ≤ 2 at 2号窗口, the last a 1" in page
    assert 'id="alert-count">50<' in page
    assert page.count("<td>K2#") == 50  # every rating listed, each with its links
    assert "/report/BJ-001/?window=BJ-001-W2" in page and "/report/BJ-001/?staff=S002" in page
    zh = logged_in(server.url, "bj-manager").get(f"/alerts/{alert_id}/")[1].decode()
    assert "2号窗口有 50 条评价" in zh  # the reason in the default language, zh-Hans
    # resolved, the next bad rating opens a new alert
    assert manager.post(f"/alerts/{alert_id}/act", {"action": "resolve", "note": "ok"})[0] == 302
    upload(server.url, key, ratings=[rating("K2", 51, 1, staff="S002")])
    assert _one(site, "SELECT COUNT(*) FROM alerts_alert WHERE state = 'open'") == (1,)


def test_a_branch_past_its_cap_gets_an_n_more_digest(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RATEPAD_ALERT_CAP", "2")
    server = site.server()
    try:
        admin = logged_in(server.url, "hq-admin")
        for name in ("a", "b", "c", "d"):
            assert admin.post("/rules/", {**RULE, "name": name})[0] == 302
        upload(server.url, site.keys["BJ-001"], ratings=[rating("K1", 1, 1)])
        live = _one(site, "SELECT COUNT(*) FROM alerts_alert WHERE digest = false")
        over = _one(site, "SELECT COUNT(*), SUM(count) FROM alerts_alert WHERE digest = true")
        assert live == (2,) and over == (2, 2)  # rules c and d: one over-cap digest each
        manager = logged_in(server.url, "bj-manager")
        manager.headers = {"Accept-Language": "en"}
        page = manager.get("/alerts/")[1].decode()
        assert "2 more in digests" in page
        page = manager.get("/alerts/?digest=1")[1].decode()
        assert "beyond the 2 open ones" in page
    finally:
        server.close()
