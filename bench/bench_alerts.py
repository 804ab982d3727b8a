"""Server time of the alert queue with 10,000 alerts (paged), next to a baseline measured in
the same run on the same throwaway database.

1. A fresh database (PostgreSQL on a throwaway cluster, or ``--sqlite``): the test
   organisation (tests/server/org.toml), 10,000 alerts over its branches (open, acknowledged,
   resolved; a third overdue; some digests), two to four ratings folded into each, a history
   line each, and a notification per alert for the BJ manager.
2. Each page is requested in-process through Django's test client (server time: routing, the
   queries, the template; no network), ``--repeat`` times: median and max.
3. Baseline: the data a page shows as two plain queries (its count, and its 50 rows joined to
   their branch and rule), and the login page (the fixed cost of any page).

    python bench/bench_alerts.py [--alerts 10000] [--repeat 9] [--sqlite]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import timedelta

from benchlib import server_database, timed

TARGET_MS = 300.0


def _median_ms(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    median, worst = timed(fn, repeat)
    return median * 1000, worst * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    args = parser.parse_args()
    with server_database("bench-alerts", sqlite=args.sqlite) as backend:
        run(args.alerts, args.repeat, backend)


def _fill(n: int) -> None:
    from django.contrib.auth.models import User
    from django.db import transaction
    from django.utils import timezone

    from ratepad_server.alerts.models import (
        Alert,
        AlertEvent,
        AlertRating,
        Notification,
        Rule,
    )
    from ratepad_server.org.models import Node, Window

    rng = random.Random(21)
    now = timezone.now()
    windows = list(Window.objects.select_related("branch"))
    rules = [
        Rule.objects.create(node=Node.objects.get(code="HQ"), name=f"rule {k}", kind=k)
        for k in ("low_rating", "bad_share", "offline")
    ]
    manager = User.objects.get(username="bj-manager")
    states = ["open"] * 5 + ["acknowledged"] * 2 + ["resolved"] * 3
    with transaction.atomic():
        alerts = []
        for i in range(n):
            w = rng.choice(windows)
            state = rng.choice(states)
            created = now - timedelta(minutes=rng.randrange(60 * 24 * 60))
            alerts.append(Alert(
                rule=rng.choice(rules), branch=w.branch, window=w, serial=f"K{i}",
                journal_seq=i, staff_id="S001", summary=f"{w.code} S001: score 1 (#{i})",
                state=state, open_key=None if state == "resolved" else f"bench:{i}",
                deadline=(created + timedelta(days=rng.choice([-5, 3, 30]))).date(),
                created_at=created, last_at=created, digest=rng.random() < 0.05,
                count=rng.randint(1, 4),
                detail={"what": "low_rating", "level": 2, "window": w.name, "score": 1},
            ))  # fmt: skip
        Alert.objects.bulk_create(alerts, batch_size=2000)
        AlertRating.objects.bulk_create([
            AlertRating(alert=a, serial=a.serial, journal_seq=j, time=a.created_at, score=1,
                        staff_id="S001", window=a.window)
            for a in alerts for j in range(a.count)
        ], batch_size=5000)  # fmt: skip
        AlertEvent.objects.bulk_create([
            AlertEvent(alert=a, at=a.created_at, action="raised", data={"count": a.count})
            for a in alerts
        ], batch_size=5000)  # fmt: skip
        bj = [a for a in alerts if a.branch.code.startswith("BJ")]
        Notification.objects.bulk_create([
            Notification(user=manager, alert=a, text=a.summary) for a in bj
        ], batch_size=5000)  # fmt: skip


def run(n: int, repeat: int, backend: str) -> None:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from ratepad_server.alerts.models import Alert

    t0 = time.perf_counter()
    _fill(n)
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:  # as autovacuum would have by now
            cur.execute("ANALYZE")
    print(f"{backend}: {n:,} alerts made in {time.perf_counter() - t0:.1f} s", flush=True)
    admin, manager = Client(), Client()
    admin.force_login(User.objects.get(username="hq-admin"))
    manager.force_login(User.objects.get(username="bj-manager"))
    last_page = (Alert.objects.filter(digest=False).count() + 49) // 50
    one = Alert.objects.order_by("-count", "-id").values_list("pk", flat=True).first()
    cases: list[tuple[str, Client, str]] = [
        ("queue, page 1", admin, "/alerts/"),
        (f"queue, last page ({last_page})", admin, f"/alerts/?page={last_page}"),
        ("queue, overdue", admin, "/alerts/?overdue=1"),
        ("queue, unresolved by deadline", admin, "/alerts/?state=unresolved&sort=deadline"),
        ("queue, one branch", admin, "/alerts/?node=BJ-001"),
        ("queue, by count", admin, "/alerts/?sort=-count"),
        ("queue, digests", admin, "/alerts/?digest=1"),
        ("queue, manager (BJ)", manager, "/alerts/"),
        ("one alert", admin, f"/alerts/{one}/"),
        ("notifications (BJ manager)", manager, "/notifications/"),
    ]
    anonymous = Client()

    def login_page() -> None:
        assert anonymous.get("/login/").status_code == 200

    def raw_page() -> None:
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM alerts_alert a JOIN org_node b ON b.id = "
                        "a.branch_id WHERE b.path LIKE '/HQ/%%' AND NOT a.digest")  # fmt: skip
            cur.fetchall()
            cur.execute(
                "SELECT a.*, b.code, b.name, r.name FROM alerts_alert a JOIN org_node b ON "
                "b.id = a.branch_id JOIN alerts_rule r ON r.id = a.rule_id WHERE b.path LIKE "
                "'/HQ/%%' AND NOT a.digest ORDER BY a.created_at DESC, a.id DESC LIMIT 50"
            )
            cur.fetchall()

    login_page()
    raw_page()
    base_login, _ = _median_ms(login_page, repeat)
    base_raw, _ = _median_ms(raw_page, repeat)
    print(f"baseline: login page {base_login:.1f} ms, the page's data as two plain queries "
          f"{base_raw:.1f} ms (medians of {repeat})")  # fmt: skip
    print(f"{'page':<36} {'median':>9} {'max':>9}  target {TARGET_MS:.0f} ms")
    for label, client, url in cases:

        def page(client: Client = client, url: str = url) -> None:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)

        page()  # warm: templates loaded
        med, worst = _median_ms(page, repeat)
        flag = "ok" if med <= TARGET_MS else "MISSED"
        print(f"{label:<36} {med:>6.1f} ms {worst:>6.1f} ms  {flag}", flush=True)


if __name__ == "__main__":
    main()
