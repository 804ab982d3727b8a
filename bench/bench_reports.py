"""Server time of the report pages and the summary API on a year of ratings, next to the same
aggregations over the raw rows, in the same run on the same throwaway PostgreSQL cluster.

1. ``bench/gen_volume.py`` fills a fresh database (10 M ratings, 500 windows by default).
2. Each page is requested in-process through Django's test client as the HQ manager (server
   time: URL routing, the queries, the metrics, the template; no network), ``--repeat`` times,
   median and max; the summary API with a bearer token.
3. Baseline: the page's aggregations (total, per child unit, per staff member, per hour) as
   plain ``GROUP BY`` queries over ``ingest_rating`` for the same node and period.

    python bench/bench_reports.py [--ratings 10000000] [--windows 500] [--repeat 5] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "server"))

from pg import Cluster  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")


def _median_ms(fn: object, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=10_000_000)
    parser.add_argument("--windows", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--data", type=Path, metavar="DIR",
        help="keep the PostgreSQL cluster in DIR and reuse it next time (the data is generated "
        "once; the schema is migrated and the rollups rebuilt on reuse)",
    )  # fmt: skip
    parser.add_argument(
        "--keep-rollups", action="store_true",
        help="with --data on reuse: the rollups are current, skip the rebuild",
    )  # fmt: skip
    args = parser.parse_args()
    reuse = args.data is not None and (args.data / "data").exists()
    cluster = Cluster(args.data, fsync=False, reuse=True)
    # RATEPAD_ALLOWED_HOSTS: the host name Django's test client sends
    env = {**os.environ, "RATEPAD_SECRET_KEY": "bench-secret-of-the-report-benchmark",
           "RATEPAD_ALLOWED_HOSTS": "testserver"}  # fmt: skip
    try:
        db = cluster.url("bench_reports")
        gen = [sys.executable, str(ROOT / "bench" / "gen_volume.py"), db]
        if reuse:
            gen += ["--reuse", "--keep-rollups"] if args.keep_rollups else ["--reuse"]
        else:
            cluster.create_database("bench_reports")
            gen += ["--ratings", str(args.ratings), "--windows", str(args.windows)]
        subprocess.run(gen, check=True, env=env, cwd=cluster.base)
        os.environ.update(env, RATEPAD_DB=db, DJANGO_SETTINGS_MODULE="ratepad_server.settings")
        os.chdir(cluster.base)
        run(args.repeat)
    finally:
        if args.data is None:
            cluster.close()
        else:
            cluster.stop()


def run(repeat: int) -> None:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from ratepad_server.api.auth import issue_token
    from ratepad_server.org.models import Node

    client = Client()
    client.force_login(User.objects.get(username="hq"))
    token = issue_token("hq", "bench-hq-pw")
    today = datetime.now(TZ).date()
    last_month = f"{(today.replace(day=1) - timedelta(days=1)):%Y-%m}"
    year = f"since={today - timedelta(days=364)}&until={today}"
    month = f"since={today - timedelta(days=29)}&until={today}"
    utc = ZoneInfo("UTC")
    y0 = datetime.combine(today - timedelta(days=364), datetime.min.time(), TZ).astimezone(utc)
    m0 = datetime.combine(today - timedelta(days=29), datetime.min.time(), TZ).astimezone(utc)
    end = datetime.combine(today + timedelta(days=1), datetime.min.time(), TZ).astimezone(utc)
    cases = [  # label, URL, node, since, child grouping of the raw baseline
        ("report HQ, a year", f"/report/HQ/?{year}", "HQ", y0, "branch_id"),
        ("report HQ, 30 days", f"/report/HQ/?{month}", "HQ", m0, "branch_id"),
        ("report region, a year", f"/report/R1/?{year}", "R1", y0, "branch_id"),
        ("report branch, a year", f"/report/R1-B01/?{year}", "R1-B01", y0, "window_id"),
        ("report branch, 30 days", f"/report/R1-B01/?{month}", "R1-B01", m0, "window_id"),
        ("report window, a year", f"/report/R1-B01/?{year}&window=R1-B01-W1", "R1-B01", y0,
         "staff_id"),
        ("export CSV branch, a year", f"/report/R1-B01/export.csv?{year}", "R1-B01", y0,
         "window_id"),
        ("export XLSX HQ, a year", f"/report/HQ/export.xlsx?{year}", "HQ", y0, "branch_id"),
        ("monthly PDF HQ (an export)", f"/report/HQ/monthly.pdf?month={last_month}", "HQ", m0,
         "branch_id"),
        ("overview HQ (home)", "/", "HQ", m0, None),
        ("live wall HQ", "/live/HQ/", "HQ", m0, None),
        ("ratings list branch, 30 days", f"/ratings/R1-B01/?{month}", "R1-B01", m0, None),
        ("summary API HQ, a year", f"/api/v1/summary?node=HQ&since={y0:%Y-%m-%dT%H:%M:%SZ}"
         f"&until={end:%Y-%m-%dT%H:%M:%SZ}", "HQ", y0, None),
        ("summary API branch, 30 days", f"/api/v1/summary?node=R1-B01&since={m0:%Y-%m-%dT%H:%M:%SZ}"
         f"&until={end:%Y-%m-%dT%H:%M:%SZ}", "R1-B01", m0, None),
    ]  # fmt: skip
    print(f"{'page':<30} {'rollups median':>15} {'max':>8} {'raw rows':>10}  target 300 ms")
    for label, url, code, since, child in cases:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if url.startswith("/api/") else {}

        def page(url: str = url, headers: dict[str, str] = headers) -> None:
            response = client.get(url, **headers)  # type: ignore[arg-type]
            assert response.status_code == 200, (url, response.status_code)
            if hasattr(response, "content"):
                _ = response.content

        page()  # warm: the first request loads templates and fills caches
        med, worst = _median_ms(page, repeat)
        node = Node.objects.get(code=code)
        branch_ids = list(
            Node.objects.filter(path__startswith=node.path).values_list("pk", flat=True)
        )
        window = "AND window_id = (SELECT id FROM org_window WHERE code = 'R1-B01-W1')" \
            if "window=" in url else ""  # fmt: skip
        groups = [None] if child is None else [None, child, "staff_id",
                                               "date_trunc('hour', time)"]  # fmt: skip

        def raw(groups: list[str | None] = groups, since: datetime = since,
                window: str = window, branch_ids: list[int] = branch_ids) -> None:  # fmt: skip
            with connection.cursor() as cur:
                for g in groups:
                    select = f"{g}, " if g else ""
                    cur.execute(
                        f"SELECT {select}count(*), sum(CASE WHEN score >= 4 THEN 1 ELSE 0 END),"
                        " sum(level_value), sum(CASE WHEN flags & 1 <> 0 THEN 1 ELSE 0 END)"
                        " FROM ingest_rating WHERE branch_id = ANY(%s) AND time >= %s"
                        f" AND time < %s {window}" + (f" GROUP BY {g}" if g else ""),
                        [branch_ids, since, end],
                    )
                    cur.fetchall()

        raw_med, _ = _median_ms(raw, max(1, repeat // 2))
        flag = "ok" if med <= 300 else "MISSED"
        print(
            f"{label:<30} {med:>12.0f} ms {worst:>5.0f} ms {raw_med:>7.0f} ms  {flag}", flush=True
        )


if __name__ == "__main__":
    main()
