"""Working the alert queue in the web: filters (state, node, rule, assignee, overdue), paging
with the count, sort, bulk acknowledge / assign / resolve with one note, the alert's whole
history, assignees from the node's users, overdue counted; rules as a form per kind (only its
fields, checked), edited, deleted and kept, tested on last week; notifications grouped per
alert, paged, marked read in bulk."""

from __future__ import annotations

import re

from serverlib import Server, Site
from webclient import WebClient, logged_in
from webdata import rating, upload

EN = {"Accept-Language": "en"}


def _en(server: Server, user: str) -> WebClient:
    client = logged_in(server.url, user)
    client.headers = dict(EN)
    return client


def _ids(page: str) -> list[int]:
    return sorted({int(m) for m in re.findall(r'name="ids" value="(\d+)"', page)})


def _many_alerts(site: Site, rule: int, n: int) -> None:
    """``n`` open alerts of ``rule`` at BJ-001 and SH-001, straight into the database (half
    each), the older half overdue."""
    day = "" if site.cluster is None else "DATE "  # SQLite keeps dates as text
    site.sql(
        "INSERT INTO alerts_alert (rule_id, branch_id, serial, staff_id, summary, state, "
        "deadline, created_at, resolution, digest, count, detail, open_key) "
        f"WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {n}) "
        "SELECT " + str(rule) + ", (SELECT id FROM org_node WHERE code = "
        "CASE WHEN i % 2 = 0 THEN 'BJ-001' ELSE 'SH-001' END), 'K9', '', 'bulk ' || i, "
        f"'open', CASE WHEN i <= {n // 2} THEN {day}'2000-01-03' ELSE {day}'2099-01-05' END, "
        "CURRENT_TIMESTAMP, '', false, 1, '{}', 'bulk:' || i FROM seq"
    )


def test_the_queue_filters_pages_and_acts_in_bulk(site: Site, server: Server) -> None:
    admin = _en(server, "hq-admin")
    rule = {"name": "bad", "node": "HQ", "kind": "low_rating", "level": "2", "minutes": "60"}
    assert admin.post("/rules/", rule)[0] == 302
    rule_id = site.sql("SELECT id FROM alerts_rule")[0]  # type: ignore[index]
    _many_alerts(site, int(rule_id), 120)
    page = admin.get("/alerts/")[1].decode()
    assert 'id="count">120 alert(s)<' in page and "page 1 of 3" in page
    assert 'id="n-open">120<' in page and 'id="n-overdue">60<' in page
    assert page.count('class="open overdue"') == 0  # the newest first: none overdue here
    last = admin.get("/alerts/?page=3")[1].decode()
    assert "page 3 of 3" in last and last.count('class="open overdue"') == 20
    oldest = admin.get("/alerts/?sort=deadline")[1].decode()
    assert oldest.count('class="open overdue"') == 50
    # a manager sees their subtree only; filters narrow it
    manager = _en(server, "bj-manager")
    assert 'id="count">60 alert(s)<' in manager.get("/alerts/")[1].decode()
    assert 'id="n-overdue">30<' in manager.get("/alerts/")[1].decode()
    assert 'id="count">30 alert(s)<' in manager.get("/alerts/?overdue=1")[1].decode()
    assert manager.get("/alerts/?node=SH")[0] == 403
    assert 'id="count">60 alert(s)<' in manager.get(f"/alerts/?rule={rule_id}")[1].decode()
    assert 'id="count">0 alert(s)<' in manager.get("/alerts/?state=resolved")[1].decode()
    assert manager.get("/alerts/?state=nonsense")[0] == 400
    assert manager.get("/alerts/?sort=nonsense")[0] == 400
    # bulk: acknowledge a page, assign, resolve with one note; another subtree's ids are skipped
    ids = _ids(manager.get("/alerts/?overdue=1")[1].decode())
    assert len(ids) == 30
    sh_ids = _ids(_en(server, "sh-manager").get("/alerts/")[1].decode())
    status, _ = manager.post("/alerts/bulk", {"ids": ids + sh_ids[:3], "action": "acknowledge",
                                              "note": "on it"})  # fmt: skip
    assert status == 302 and "done=30" in manager.last_headers["Location"]
    assert 'id="count">30 alert(s)<' in manager.get("/alerts/?state=acknowledged")[1].decode()
    assert manager.post("/alerts/bulk", {"ids": ids, "action": "resolve"})[0] == 400  # no note
    status, _ = manager.post("/alerts/bulk", {"ids": ids[:10], "action": "assign",
                                              "assignee": "bj001-admin"})  # fmt: skip
    assert status == 302
    mine = manager.get("/alerts/?assignee=bj001-admin")[1].decode()
    assert 'id="count">10 alert(s)<' in mine
    status, _ = manager.post("/alerts/bulk", {"ids": ids, "action": "resolve",
                                              "note": "called back"})  # fmt: skip
    assert status == 302 and "done=30" in manager.last_headers["Location"]
    assert 'id="n-overdue">0<' in manager.get("/alerts/")[1].decode()
    # the whole history on the alert: state changes, assignment, each with who
    history = manager.get(f"/alerts/{ids[0]}/")[1].decode()
    steps = re.findall(r'<li class="h-(\w+)">', history)
    assert steps == ["acknowledge", "assign", "resolve"]
    assert "bj-manager</b> acknowledged: on it" in history
    assert "→ bj001-admin" in history and "called back" in history
    # assignees: managers and admins whose subtree holds the branch, inside the caller's own
    still_open = _ids(manager.get("/alerts/?state=open")[1].decode())
    assert len(still_open) == 30
    page = admin.get(f"/alerts/{still_open[0]}/")[1].decode()
    choices = re.findall(r"<option>([\w-]+)</option>", page.split('id="assignee"')[1])
    assert choices == ["bj-manager", "bj001-admin", "hq-admin"]
    to_bj = {"action": "assign", "assignee": "bj-manager"}
    assert manager.post(f"/alerts/{sh_ids[0]}/act", to_bj)[0] == 403
    to_branch = {"action": "assign", "assignee": "bj001-admin"}  # BJ-001's: not SH-001's alert
    assert admin.post(f"/alerts/{sh_ids[0]}/act", to_branch)[0] == 400
    # a viewer looks, without the bulk boxes, and cannot act
    viewer = _en(server, "bj-viewer")
    assert _ids(viewer.get("/alerts/")[1].decode()) == []
    assert viewer.post("/alerts/bulk", {"ids": ids, "action": "acknowledge"})[0] == 403


def test_rules_by_kind_edit_delete_and_a_preview(site: Site, server: Server) -> None:
    admin = _en(server, "hq-admin")
    form = admin.get("/rules/new?kind=offline")[1].decode()
    assert 'name="minutes"' in form and 'name="level"' not in form
    assert 'name="threshold"' not in form and 'name="min_n"' not in form
    assert '<option value="BJ-001">' in form  # the node from the tree
    form = admin.get("/rules/new?kind=bad_share")[1].decode()
    assert all(f'name="{f}"' in form for f in ("level", "threshold", "min_n", "minutes"))
    assert admin.get("/rules/new?kind=nonsense")[0] == 400
    branch_form = _en(server, "bj001-admin").get("/rules/new?kind=offline")[1].decode()
    node_select = branch_form.split('id="node"')[1].split("</select>")[0]
    assert node_select.count("<option") == 1  # only their own branch
    bad = {"name": "x", "node": "BJ-001", "kind": "low_rating", "level": "2",
           "emails": "duty@example.test, not-an-address"}  # fmt: skip
    status, body = admin.post("/rules/new?kind=low_rating", bad)
    assert status == 400 and "not an e-mail address: not-an-address" in body.decode()
    # a preview: three bad ratings at W1 and one at W2 last week, one of them not counted
    key = site.keys["BJ-001"]
    upload(server.url, key, ratings=[rating("K1", 1, 1, ago_s=3 * 86400.0),
                                     rating("K1", 2, 2, ago_s=3 * 86400.0 - 60),
                                     rating("K1", 3, 1, flags=0x2, ago_s=3 * 86400.0 - 90),
                                     rating("K2", 4, 1, ago_s=2 * 86400.0),
                                     rating("K2", 5, 5, ago_s=2 * 86400.0 - 60)])  # fmt: skip
    good = {**bad, "emails": "duty@example.test", "preview": "1"}
    status, body = admin.post("/rules/new?kind=low_rating", good)
    page = body.decode()
    assert status == 200 and 'id="preview-alerts">2<' in page
    assert "3 match(es) among 5 ratings" in page
    assert site.sql("SELECT COUNT(*) FROM alerts_rule") == (0,)  # a preview saves nothing
    share = {"name": "share", "node": "BJ-001", "kind": "bad_share", "level": "2",
             "threshold": "0.5", "min_n": "2", "minutes": "60", "preview": "1"}  # fmt: skip
    page = admin.post("/rules/new?kind=bad_share", share)[1].decode()
    assert 'id="preview-alerts">1<' in page  # W1 (2 of 2 counted); W2 is 1 of 2, not above 0.5
    # saved, edited (only its kind's fields), deleted and kept
    del good["preview"]
    assert admin.post("/rules/new?kind=low_rating", good)[0] == 302
    rule_id = int(site.sql("SELECT id FROM alerts_rule")[0])  # type: ignore[index]
    edit = admin.get(f"/rules/{rule_id}/edit")[1].decode()
    assert 'value="duty@example.test"' in edit and 'name="threshold"' not in edit
    changed = {**good, "minutes": "30", "threshold": "99"}  # threshold: not this kind's
    status, body = admin.post(f"/rules/{rule_id}/edit", changed)
    assert status == 302, re.findall(r"error\">(.*?)<", body.decode())
    row = site.sql(f"SELECT minutes, threshold FROM alerts_rule WHERE id = {rule_id}")
    assert row is not None and (row[0], row[1]) == (30, 0.3)
    assert admin.post(f"/rules/{rule_id}/edit", {**changed, "minutes": "0"})[0] == 400
    assert _en(server, "bj-manager").post(f"/rules/{rule_id}/delete")[0] == 403
    assert admin.post(f"/rules/{rule_id}/delete")[0] == 302
    assert f'id="rule-{rule_id}"' not in admin.get("/rules/")[1].decode()
    row = site.sql(f"SELECT active, deleted_at IS NOT NULL FROM alerts_rule WHERE id = {rule_id}")
    assert row is not None and not row[0] and row[1]  # kept, switched off, marked deleted
    audit = admin.get("/audit/")[1].decode()
    assert 'data-action="rule.edit"' in audit and 'data-action="rule.delete"' in audit
    upload(server.url, key, ratings=[rating("K1", 9, 1)])
    assert site.sql("SELECT COUNT(*) FROM alerts_alert") == (0,)  # a deleted rule is silent
    assert admin.get(f"/rules/{rule_id}/edit")[0] == 404


def test_notifications_grouped_paged_and_read_in_bulk(site: Site, server: Server) -> None:
    admin = _en(server, "hq-admin")
    for name in ("one", "two"):
        rule = {"name": name, "node": "BJ-001", "kind": "low_rating", "level": "2"}
        assert admin.post("/rules/", rule)[0] == 302
    key = site.keys["BJ-001"]
    upload(server.url, key, ratings=[rating("K1", 1, 1), rating("K2", 2, 1)])  # 4 alerts
    manager = _en(server, "bj-manager")
    ids = _ids(manager.get("/alerts/")[1].decode())
    assert len(ids) == 4
    manager.post("/alerts/bulk", {"ids": ids, "action": "assign", "assignee": "bj-manager"})
    page = manager.get("/notifications/")[1].decode()
    groups = re.findall(r'<li class="(unread)?"><input type="checkbox" name="alert" '
                        r'value="(\d+)"', page)  # fmt: skip
    assert len(groups) == 4 and page.count("(2 notification(s), 2 unread)") == 4
    assert 'class="badge">8<' in page
    manager.post("/notifications/read", {"alert": [ids[0], ids[1]]})
    page = manager.get("/notifications/")[1].decode()
    assert page.count("2 unread") == 2 and 'class="badge">4<' in page
    manager.post("/notifications/read", {})
    assert 'class="badge"' not in manager.get("/notifications/")[1].decode()
    assert "page 1 of 1" in page
