"""Alert-rule parameters are bounded: the rules form refuses each value out of bounds with the
reason (and stores nothing), the database refuses such a row (CHECK constraints), and a row
that got there anyway (written before the constraints, or past them) is switched off by the
engine with a logged reason instead of failing every upload of its subtree."""

from __future__ import annotations

import re
import sqlite3
import sys
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "web"))

from serverlib import Server, Site
from webclient import logged_in
from webdata import rating, upload

GOOD = {"name": "r", "node": "BJ", "kind": "low_rating", "level": "2", "threshold": "0.3",
        "min_n": "10", "minutes": "60", "deadline_days": "3"}  # fmt: skip
# (field, value, kind, what the message names): each refused by the form
BAD = [
    ("minutes", "0", "bad_share", "minutes"),
    ("minutes", "10081", "bad_share", "minutes"),
    ("minutes", "2147483647", "bad_share", "minutes"),
    ("minutes", "soon", "bad_share", "minutes"),
    ("deadline_days", "0", "low_rating", "deadline (working days)"),
    ("deadline_days", "366", "low_rating", "deadline (working days)"),
    ("deadline_days", "2147483647", "low_rating", "deadline (working days)"),
    ("threshold", "nan", "low_index", "threshold"),
    ("threshold", "inf", "low_index", "threshold"),
    ("threshold", "-1e400", "low_index", "threshold"),
    ("threshold", "-0.1", "low_index", "threshold"),
    ("threshold", "100.5", "low_index", "threshold"),
    ("threshold", "1.5", "bad_share", "threshold"),  # a share
    ("threshold", "30", "unprompted", "threshold"),  # a share
    ("level", "0", "low_rating", "level"),
    ("level", "6", "low_rating", "level"),
    ("min_n", "0", "bad_share", "minimum n"),
]
CONSTRAINTS = ("rule_level_bounded", "rule_min_n_bounded", "rule_minutes_bounded",
               "rule_deadline_days_bounded", "rule_threshold_bounded",
               "rule_share_threshold_at_most_1")  # fmt: skip


def _rule_count(site: Site) -> int:
    row = site.sql("SELECT COUNT(*) FROM alerts_rule")
    assert row is not None
    return int(row[0])


def test_the_form_refuses_each_value_out_of_bounds(site: Site, server: Server) -> None:
    admin = logged_in(server.url, "hq-admin")
    admin.headers = {"Accept-Language": "en"}
    for field, value, kind, label in BAD:
        status, body = admin.post("/rules/", {**GOOD, "kind": kind, field: value})
        page = body.decode()
        assert status == 400, (field, value, status)
        error = re.search(r'<p class="error">(.*?)</p>', page)
        assert error is not None and error.group(1).startswith(f"{label}: "), (field, value)
    assert _rule_count(site) == 0
    # the bounds themselves are accepted, and a share threshold of 1 for a share rule
    edges = [
        {"minutes": "1", "deadline_days": "365"},
        {"minutes": "10080", "deadline_days": "1"},
        {"kind": "bad_share", "threshold": "1"},
        {"kind": "low_index", "threshold": "100"},
    ]
    for edge in edges:
        assert admin.post("/rules/", {**GOOD, **edge})[0] == 302, edge
    assert _rule_count(site) == len(edges)


def _insert(site: Site, name: str, kind: str, **values: str) -> None:
    """A rule row written straight into the database, past the form (and, with
    ``past_constraints``, past the CHECK constraints)."""
    row = {"level": "2", "threshold": "0.3", "min_n": "1", "minutes": "60",
           "deadline_days": "3", **values}  # fmt: skip
    cols = ", ".join(row)
    vals = ", ".join(row.values())
    site.sql(
        "INSERT INTO alerts_rule (node_id, name, kind, emails, webhook, active, " + cols + ") "
        f"VALUES ((SELECT id FROM org_node WHERE code = 'BJ'), '{name}', '{kind}', '', '', "
        f"TRUE, {vals})"
    )


def test_the_database_refuses_a_rule_out_of_bounds(site: Site) -> None:
    pg = site.backend == "postgresql"
    nan = "'NaN'::float8" if pg else "0.0 / 0.0"  # SQLite: NULL
    inf = "'Infinity'::float8" if pg else "1e999"
    refused = (sqlite3.IntegrityError, psycopg.IntegrityError)
    for name, kind, values in (
        ("minutes", "bad_share", {"minutes": "2147483647"}),
        ("days", "low_rating", {"deadline_days": "2147483647"}),
        ("nan", "low_index", {"threshold": nan}),
        ("inf", "low_index", {"threshold": inf}),
        ("share", "unprompted", {"threshold": "2"}),
    ):
        with pytest.raises(refused) as caught:
            _insert(site, name, kind, **values)
        assert re.search(r"(?i)constraint|violates|null", str(caught.value)), caught.value
    assert _rule_count(site) == 0


def _drop_constraints(site: Site) -> None:
    """Make room for rows the migration would refuse (as if written before it)."""
    if site.backend == "postgresql":
        for name in CONSTRAINTS:
            site.sql(f"ALTER TABLE alerts_rule DROP CONSTRAINT IF EXISTS {name}")


def _insert_unchecked(site: Site, name: str, kind: str, **values: str) -> None:
    if site.backend == "postgresql":
        _insert(site, name, kind, **values)
        return
    row = {"level": "2", "threshold": "0.3", "min_n": "1", "minutes": "60",
           "deadline_days": "3", **values}  # fmt: skip
    conn = sqlite3.connect(site.db.removeprefix("sqlite:///"))
    try:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        with conn:
            conn.execute(
                f"INSERT INTO alerts_rule (node_id, name, kind, emails, webhook, active, "
                f"{', '.join(row)}) VALUES ((SELECT id FROM org_node WHERE code = 'BJ'), ?, ?,"
                f" '', '', 1, {', '.join(row.values())})",
                (name, kind),
            )
    finally:
        conn.close()


def test_a_bad_rule_in_the_database_does_not_stop_uploads(site: Site, server: Server) -> None:
    _drop_constraints(site)
    # NaN on PostgreSQL; SQLite cannot store a NaN (it becomes NULL), an infinity it can
    bad_threshold = "'NaN'::float8" if site.backend == "postgresql" else "1e999"
    _insert_unchecked(site, "huge minutes", "bad_share", minutes="2147483647")
    _insert_unchecked(site, "huge deadline", "low_rating", deadline_days="2147483647")
    _insert_unchecked(site, "odd threshold", "low_index", threshold=bad_threshold)
    _insert_unchecked(site, "good", "low_rating", level="2")
    key = site.keys["BJ-001"]
    answer = upload(server.url, key, ratings=[rating("K1", 1, 1), rating("K1", 2, 5)])
    assert answer["stored"] == 2
    active = {}
    for name in ("huge minutes", "huge deadline", "odd threshold", "good"):
        row = site.sql(f"SELECT active FROM alerts_rule WHERE name = '{name}'")
        assert row is not None
        active[name] = bool(row[0])
    assert active == {"huge minutes": False, "huge deadline": False, "odd threshold": False,
                      "good": True}  # fmt: skip
    row = site.sql("SELECT COUNT(*) FROM alerts_alert")
    assert row is not None and row[0] == 1  # the good rule still alerts on the 1
    upload(server.url, key, ratings=[rating("K1", 3, 1)])  # and the next batch too (folded)
    row = site.sql("SELECT COUNT(*), MAX(count) FROM alerts_alert")
    assert row is not None and tuple(row) == (1, 2)
    log = (site.dir / "server.log").read_text(encoding="utf-8", errors="replace")
    assert "huge deadline" in log and "switched off" in log and "Traceback" not in log
    # a switched-off bad rule cannot be switched on again from the rules page
    admin = logged_in(server.url, "hq-admin")
    row = site.sql("SELECT id FROM alerts_rule WHERE name = 'huge minutes'")
    assert row is not None
    assert admin.post(f"/rules/{row[0]}/toggle")[0] == 400
