"""Importing a 10,000-response survey and opening its report, next to baselines measured in the
same run on the same throwaway database.

1. A fresh database (PostgreSQL on a throwaway cluster, or ``--sqlite``) with the test
   organisation (tests/server/org.toml).
2. Import: the example survey (SERVQUAL's 22 attributes as expectation and perception, the zone
   of tolerance, stated importance, overall, NPS, CES: 62 questions) answered by 10,000
   generated respondents, through ``surveys.service.import_survey`` (read and check every cell,
   compute the report, store definition, import and responses), ``--repeat`` times. Baseline:
   reading the same CSV with the standard library's ``csv`` module alone (no checks).
3. Report: ``/survey/BJ-001/`` and the node's keypad report page (with the survey figures) in
   process through Django's test client as the BJ manager (server time: routing, queries,
   template). Baseline: the login page (the fixed cost of any page).

    python bench/bench_surveys.py [--respondents 10000] [--repeat 5] [--sqlite]
"""

from __future__ import annotations

import argparse
import csv
import io
from datetime import date, timedelta

from benchlib import server_database, timed

IMPORT_TARGET_S = 2.0
REPORT_TARGET_MS = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--respondents", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    args = parser.parse_args()
    with server_database("bench-surveys", sqlite=args.sqlite) as backend:
        run(args.respondents, args.repeat, backend)


def run(n: int, repeat: int, backend: str) -> None:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.test import Client

    from ratepad.survey import example_definition, example_path, generate_csv
    from ratepad_server.org.models import Node
    from ratepad_server.surveys.service import import_survey

    definition = example_path().read_text(encoding="utf-8")
    responses = generate_csv(example_definition(), n, seed=11)
    node = Node.objects.get(code="BJ-001")
    last = date.today() - timedelta(days=1)
    first = last - timedelta(days=27)

    def baseline_read() -> None:
        rows = list(csv.reader(io.StringIO(responses)))
        assert len(rows) == n + 1

    def do_import() -> None:
        import_survey(definition_text=definition, definition_kind="toml", node=node, user=None,
                      responses_text=responses, file_name="bench.csv", first=first,
                      last=last)  # fmt: skip

    print(f"{backend}: {n:,} respondents, {len(example_definition().questions)} questions, "
          f"{len(responses) / 1e6:.1f} MB of CSV; median (max) of {repeat}")  # fmt: skip
    base = timed(baseline_read, repeat)
    imp = timed(do_import, repeat)
    print(f"  baseline: csv.reader over the file        {base[0]:7.3f} s ({base[1]:.3f})")
    verdict = "met" if imp[0] <= IMPORT_TARGET_S else "MISSED"
    print(f"  import (check, report, store)             {imp[0]:7.3f} s ({imp[1]:.3f})"
          f"   target <= {IMPORT_TARGET_S:g} s: {verdict}")  # fmt: skip

    manager = Client()
    manager.force_login(User.objects.get(username="bj-manager"))
    span = f"since={first}&until={last}"
    pages = [
        ("baseline: the login page", Client(), "/login/"),
        ("survey report /survey/BJ-001/", manager, f"/survey/BJ-001/?{span}"),
        ("the node's report with the survey figures", manager, f"/report/BJ-001/?{span}"),
    ]
    for name, client, url in pages:
        assert client.get(url).status_code == 200, url  # warm-up

        def page(client: Client = client, url: str = url) -> None:
            assert client.get(url).status_code == 200

        median, worst = timed(page, repeat * 2)
        target = "" if name.startswith("baseline") or "node's" in name else (
            f"   target <= {REPORT_TARGET_MS:g} ms: "
            + ("met" if median * 1000 <= REPORT_TARGET_MS else "MISSED"))  # fmt: skip
        print(f"  {name:<42} {median * 1000:7.1f} ms ({worst * 1000:.0f}){target}")


if __name__ == "__main__":
    main()
