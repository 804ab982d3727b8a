"""The audit log and the notifications page through every row (never a silent cut): more rows
than one page, the count, the pager's next link to the last row, server-side sort and
filters, and a 400 page for a bad list parameter."""

from __future__ import annotations

import re

from serverlib import Server, Site
from webclient import WebClient, logged_in

ROWS = 120  # more than two pages of 50


def _minutes_ago(site: Site, i: str) -> str:
    """SQL for "now minus ``i`` minutes" on the site's database."""
    if site.backend == "postgresql":
        return f"now() - {i} * interval '1 minute'"
    return f"strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || {i} || ' minutes')"


def _series(n: int) -> str:
    return f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})"


def _walk(client: WebClient, path: str, row: str) -> tuple[int, list[str]]:
    """Every page of a list from its first, by the pager's "next" links: (the count shown,
    the rows' keys in the order shown)."""
    found: list[str] = []
    count = -1
    for _ in range(20):
        status, body = client.get(path)
        assert status == 200, body[:300]
        html = body.decode()
        shown = re.search(r'id="count">\D*(\d+)', html)
        assert shown, html[:500]
        count = int(shown.group(1))
        found += re.findall(row, html)
        nxt = re.search(r'href="(\?[^"]*)" id="next"', html)
        if nxt is None:
            return count, found
        path = path.split("?")[0] + nxt.group(1).replace("&amp;", "&")
    raise AssertionError("more pages than rows")


def _audit_log(site: Site, server: Server) -> None:
    site.sql(
        "INSERT INTO audit_auditentry (at, username, action, object_type, object_id, "
        f"node_path, detail, ip) {_series(ROWS)} SELECT {_minutes_ago(site, 'i')}, 'pager', "
        "'export.ratings', 'Alert', 'x' || i, '', '{}', NULL FROM s"
    )
    admin = logged_in(server.url, "hq-admin")
    row = r"<td>\S+ x(\d+)</td>"
    count, ids = _walk(admin, "/audit/?user=pager", row)
    assert count == len(ids) == ROWS and len(set(ids)) == ROWS  # every row, each once
    assert ids == [str(i) for i in range(1, ROWS + 1)]  # newest first
    count, ids = _walk(admin, "/audit/?user=pager&sort=at&per=100", row)
    assert count == ROWS and ids == [str(i) for i in range(ROWS, 0, -1)]
    assert _walk(admin, "/audit/?action=login&user=pager", row) == (0, [])
    status, body = admin.get("/audit/?user=pager")
    assert "导出评价" in body.decode()  # the action in the reader's words
    for bad in ("sort=x", "action=nope", "per=7", "since=yesterday"):
        status, body = admin.get(f"/audit/?{bad}")
        assert status == 400 and b'id="reason"' in body, bad


def _notifications(site: Site, server: Server) -> None:
    """One line per case link (each its own group), some read."""
    site.sql(
        "INSERT INTO alerts_notification (user_id, text, link, created_at, read_at) "
        f"{_series(ROWS)} SELECT (SELECT id FROM auth_user WHERE username = 'bj-manager'), "
        f"'note ' || i, '/cases/' || i || '/', {_minutes_ago(site, 'i')}, "
        f"CASE WHEN i <= 20 THEN {_minutes_ago(site, '0')} END FROM s"
    )
    manager = logged_in(server.url, "bj-manager")
    row = r'<a href="/cases/(\d+)/">'
    count, ids = _walk(manager, "/notifications/", row)
    assert count == len(ids) == ROWS and ids == [str(i) for i in range(1, ROWS + 1)]
    count, ids = _walk(manager, "/notifications/?sort=last&kind=other", row)
    assert count == ROWS and ids == [str(i) for i in range(ROWS, 0, -1)]
    count, ids = _walk(manager, "/notifications/?unread=1&per=100", row)
    assert count == ROWS - 20 and ids == [str(i) for i in range(21, ROWS + 1)]
    assert _walk(manager, "/notifications/?kind=appeal", row) == (0, [])
    for bad in ("sort=x", "kind=nope", "per=7"):
        status, body = manager.get(f"/notifications/?{bad}")
        assert status == 400 and b'id="reason"' in body, bad


def _appeals(site: Site, server: Server) -> None:
    """More appeals than a page (50) at BJ-001, one staff member's pending and decided ones."""
    site.sql(
        "INSERT INTO alerts_appeal (serial, journal_seq, rating_time, staff_id, branch_id, "
        f"reason, state, created_at, decision_note) {_series(ROWS)} SELECT 'K1', i, "
        f"{_minutes_ago(site, 'i')}, 'S001', (SELECT id FROM org_node WHERE code = 'BJ-001'), "
        f"'why', CASE WHEN i <= 30 THEN 'upheld' ELSE 'pending' END, {_minutes_ago(site, 'i')}, "
        "'' FROM s"
    )
    manager = logged_in(server.url, "bj-manager")
    row = r'id="appeal-(\d+)"'
    count, ids = _walk(manager, "/appeals/", row)
    assert count == len(ids) == ROWS and len(set(ids)) == ROWS
    newest_first = [int(i) for i in ids]
    assert newest_first == sorted(newest_first)  # row i is i minutes old: ids rise with age
    count, ids = _walk(manager, "/appeals/?sort=created", row)
    assert count == ROWS and [int(i) for i in ids] == newest_first[::-1]
    count, ids = _walk(manager, "/appeals/?state=pending&sort=created", row)
    assert count == len(ids) == ROWS - 30
    assert manager.get("/appeals/?sort=x")[0] == 400


def test_long_lists_page_sort_and_filter(site: Site, server: Server) -> None:
    """The audit log, the notifications and the appeals queue, each with more rows than fit on
    two pages (one server for the three)."""
    _audit_log(site, server)
    _notifications(site, server)
    _appeals(site, server)
