"""The audit log page is paged on the server (``AUDIT_PAGE`` entries a page, newest first),
never cut: every entry can be reached."""

from __future__ import annotations

from serverlib import Server, Site
from webclient import logged_in

ENTRIES = 150  # more than a page (100), besides the logins


def test_the_audit_log_pages_instead_of_cutting(site: Site, server: Server) -> None:
    site.sql(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < "
        f"{ENTRIES}) INSERT INTO audit_auditentry (at, username, action, object_type, "
        "object_id, node_path, detail) SELECT CURRENT_TIMESTAMP, 'someone', 'test.entry', "
        "'thing', CAST(x AS VARCHAR(10)), '', '{}' FROM c"
    )
    admin = logged_in(server.url, "hq-admin")
    first = admin.get("/audit/")[1].decode()
    assert first.count("<tr><td>") == 100 and 'id="next"' in first and 'id="last"' in first
    rest = admin.get("/audit/?page=2")[1].decode()
    assert 'id="prev"' in rest and 'id="next"' not in rest
    shown = first.count("test.entry") + rest.count("test.entry")
    assert shown == ENTRIES
