"""A year of ratings on PostgreSQL for the report benchmark: ``--ratings`` (10 M) over the last
365 days for ``--windows`` (500) windows in 100 branches under 5 regions, 3 staff per window.

The organisation goes in through ``ratepad server load-org``; the ratings are generated inside
PostgreSQL (``generate_series``, hours of the day weighted toward opening hours, scores 1..5 at
3/4/10/33/50 %, 3 % unprompted, 1 % repeats, 0.5 % several keys); the rollups are then built
from the raw rows with the server's own rebuild (``ratepad_server.rollups.service.rebuild``).
Staff work shifts: one staff member per window in the morning, another in the afternoon. The
live-fan-out trigger is off while loading (10 M rows would be 250 000 notifications nobody
listens to).

    python bench/gen_volume.py postgresql://ratepad@127.0.0.1:PORT/DB [--ratings N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REGIONS, BRANCHES_PER_REGION = 5, 20


def org_toml(windows: int) -> str:
    per_branch = max(1, windows // (REGIONS * BRANCHES_PER_REGION))
    out = ['[[node]]\ncode = "HQ"\nname = "总行"\n']
    for r in range(1, REGIONS + 1):
        out.append(f'[[node]]\ncode = "R{r}"\nname = "分行{r}"\nparent = "HQ"\n')
        for b in range(1, BRANCHES_PER_REGION + 1):
            code = f"R{r}-B{b:02d}"
            out.append(
                f'[[node]]\ncode = "{code}"\nname = "支行{r}-{b}"\nparent = "R{r}"\n'
                'kind = "branch"\n'
            )
            for w in range(1, per_branch + 1):
                out.append(
                    f'[[window]]\ncode = "{code}-W{w}"\nbranch = "{code}"\nname = "{w}号窗口"\n'
                    f'keypad = "{code}-K{w}"\n'
                )
    out.append(
        '[[user]]\nusername = "hq"\npassword = "bench-hq-pw"\nrole = "manager"\nnode = "HQ"\n'
    )
    return "\n".join(out)


RATINGS_SQL = """
WITH w AS (SELECT id, branch_id, row_number() OVER (ORDER BY id) - 1 AS i FROM org_window),
     nw AS (SELECT count(*) AS n FROM org_window),
     g AS (
        SELECT s, random() AS r_score, random() AS r_flag,
               (now() - interval '365 days')::date + (random() * 364)::int AS day,
               (ARRAY[8,9,9,10,10,10,11,11,11,12,13,14,14,15,15,15,16,16,17,18])[1 + (random()
                   * 19)::int] AS hh,
               (random() * 3599)::int AS sec
        FROM generate_series(1, %(n)s) AS s
     )
INSERT INTO ingest_rating (serial, journal_seq, boot_id, uptime_ms, time, time_exact, score,
                           key_count, level_value, staff_id, prompt_id, flags, window_id,
                           branch_id, agent_id, received_at)
SELECT 'K' || w.id, g.s, 1, g.s, (g.day + make_interval(hours => g.hh, secs => g.sec))
           AT TIME ZONE 'Asia/Shanghai',
       true, sc.score, 5, (ARRAY[0, 40, 60, 80, 100])[sc.score],
       'S' || w.id || '-' || ((extract(doy FROM g.day)::int + (g.hh >= 13)::int) %% 3), g.s,
       CASE WHEN g.r_flag < 0.03 THEN 1 WHEN g.r_flag < 0.04 THEN 2 WHEN g.r_flag < 0.045
            THEN 4 ELSE 0 END,
       w.id, w.branch_id, 1, now()
FROM g
CROSS JOIN nw
JOIN w ON w.i = g.s %% nw.n
CROSS JOIN LATERAL (SELECT CASE WHEN g.r_score < 0.03 THEN 1 WHEN g.r_score < 0.07 THEN 2
                               WHEN g.r_score < 0.17 THEN 3 WHEN g.r_score < 0.50 THEN 4
                               ELSE 5 END AS score) AS sc
"""


def generate(db: str, ratings: int, windows: int) -> None:
    from ratepad_server.cli import main as server

    with tempfile.TemporaryDirectory() as tmp:
        org = Path(tmp) / "org.toml"
        org.write_text(org_toml(windows), encoding="utf-8")
        for argv in (["init", "--db", db], ["load-org", str(org), "--db", db]):
            if server(argv) != 0:
                raise SystemExit(f"ratepad server {argv[0]} failed")
    from django.db import connection

    from ratepad_server.ingest.keys import enroll
    from ratepad_server.org.models import Node
    from ratepad_server.rollups.service import TABLES

    enroll(Node.objects.get(code="R1-B01"))
    t0 = time.monotonic()
    with connection.cursor() as cur:
        cur.execute("ALTER TABLE ingest_rating DISABLE TRIGGER ratepad_live_ratings")
        cur.execute(RATINGS_SQL, {"n": ratings})
        cur.execute("ALTER TABLE ingest_rating ENABLE TRIGGER ratepad_live_ratings")
        t1 = time.monotonic()
    rollups()
    t2 = time.monotonic()
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM ingest_rating")
        n = cur.fetchone()[0]  # type: ignore[index]
        sizes = []
        for table in TABLES:
            cur.execute(f"SELECT count(*) FROM {table}")
            sizes.append(f"{cur.fetchone()[0]} {table.split('_')[1]}")  # type: ignore[index]
    print(
        f"gen_volume: {n} ratings in {t1 - t0:.0f} s; rollups ({', '.join(sizes)} rows) in "
        f"{t2 - t1:.0f} s",
        flush=True,
    )


def rollups() -> None:
    from django.db import connection

    from ratepad_server.rollups.service import TABLES, rebuild

    rebuild()
    with connection.cursor() as cur:
        # prompts: one per served customer and a tenth more unanswered (counts only: the
        # generator writes no prompt rows, so `ratepad server rollups --check` disagrees here)
        for table in TABLES:
            cur.execute(f"UPDATE {table} SET prompts = n_all + n_all / 10, answered = n_all")
        cur.execute("ANALYZE")


def reuse(db: str, keep_rollups: bool) -> None:
    from ratepad_server.cli import main as server

    if server(["init", "--db", db]) != 0:
        raise SystemExit("ratepad server init failed")
    if keep_rollups:
        print("gen_volume: reused, rollups kept", flush=True)
        return
    t0 = time.monotonic()
    rollups()
    print(f"gen_volume: reused; rollups rebuilt in {time.monotonic() - t0:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db")
    parser.add_argument("--ratings", type=int, default=10_000_000)
    parser.add_argument("--windows", type=int, default=500)
    parser.add_argument(
        "--reuse", action="store_true",
        help="the ratings are there: migrate the schema, rebuild the rollups",
    )  # fmt: skip
    parser.add_argument("--keep-rollups", action="store_true",
                        help="with --reuse: do not rebuild the rollups")  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("RATEPAD_SECRET_KEY", "bench-secret-of-the-report-benchmark")
    if args.reuse:
        reuse(args.db, args.keep_rollups)
    else:
        generate(args.db, args.ratings, args.windows)


if __name__ == "__main__":
    sys.exit(main())
