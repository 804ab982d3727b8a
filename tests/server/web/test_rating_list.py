"""The ratings list pages through every rating of the period (never a silent cut), filters by
score, flag and prompt, sorts on the server, and its CSV export holds exactly the rows the
pages show under the same filters; a clerk can reach (and appeal) an old rating on a later
page; bad list parameters are a 400 page."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from serverlib import Server, Site
from webclient import WebClient, logged_in
from webdata import rating, upload

from ratepad.flags import BY_NAME

UNPROMPTED, MULTI = BY_NAME["unprompted"].bit, BY_NAME["multi_key"].bit
ROW = re.compile(r'<tr><td>(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)</td><td>([^<]*)</td><td>([^<]*)</td>'
                 r'<td class="score s(\d)">')  # fmt: skip


def _ratings() -> list[dict[str, Any]]:
    out = []
    for seq in range(1, 131):
        flags = (UNPROMPTED if seq % 4 == 0 else 0) | (MULTI if seq % 10 == 0 else 0)
        out.append(rating("K1", seq, 1 + seq * 7 % 5, flags=flags, ago_s=3600 + 60 * seq))
    return out


def _pages(client: WebClient, query: str) -> tuple[int, list[tuple[str, ...]]]:
    rows: list[tuple[str, ...]] = []
    count = -1
    for page in range(1, 20):
        status, body = client.get(f"/ratings/BJ-001/?{query}&page={page}")
        assert status == 200, body[:300]
        html = body.decode()
        found = re.search(r'id="count">\D*(\d+)', html)
        assert found, html[:300]
        count = int(found.group(1))
        rows += ROW.findall(html)
        if 'id="next"' not in html:
            return count, rows
    raise AssertionError("more pages than ratings")


def test_every_rating_is_reachable_filtered_and_exported_alike(site: Site, server: Server) -> None:
    sent = _ratings()
    upload(server.url, site.keys["BJ-001"], ratings=sent)
    manager = logged_in(server.url, "bj-manager")
    count, rows = _pages(manager, "period=last_30_days")
    assert count == len(rows) == 130 and len(set(rows)) == 130  # all, each once
    assert rows == sorted(rows, reverse=True)  # newest first
    cases = {
        "score=1&score=2": [r for r in sent if r["score"] in (1, 2)],
        "flag=multi_key": [r for r in sent if r["flags"] & MULTI],
        "prompted=no": [r for r in sent if r["flags"] & UNPROMPTED],
        "prompted=yes&score=5&per=100": [r for r in sent if r["score"] == 5
                                         and not r["flags"] & UNPROMPTED],
    }  # fmt: skip
    for query, want in cases.items():
        count, rows = _pages(manager, f"period=last_30_days&{query}")
        assert count == len(rows) == len(want), query
        assert sorted(int(r[3]) for r in rows) == sorted(int(r["score"]) for r in want), query
        status, body = manager.get(f"/ratings/BJ-001/export.csv?raw=1&period=last_30_days&{query}")
        exported = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        assert status == 200 and len(exported) == len(want) + 1, query
        assert [int(r[5]) for r in exported[1:]] == [int(r[3]) for r in rows], query
    _, by_score = _pages(manager, "period=last_30_days&sort=score")
    assert [int(r[3]) for r in by_score] == sorted(int(r[3]) for r in by_score)
    for bad in ("score=x", "score=0", "flag=nope", "prompted=maybe", "sort=staff", "per=7"):
        status, body = manager.get(f"/ratings/BJ-001/?{bad}")
        assert status == 400 and b'id="reason"' in body, bad
    # a clerk reaches the oldest of their ratings on the last page and may appeal it
    clerk = logged_in(server.url, "s001")
    status, body = clerk.get("/ratings/BJ-001/?period=last_30_days&sort=time&score=1")
    assert status == 200 and b'class="inline appeal"' in body
