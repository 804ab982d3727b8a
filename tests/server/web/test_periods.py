"""Report periods: the presets (today … last year) and the two periods each is compared with,
checked against a day-by-day walk of the calendar; the report page names the compared periods
and says why a comparison is empty; the preset travels in the URL."""

from __future__ import annotations

import calendar
import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from serverlib import Server, Site, server_env
from webclient import logged_in
from webdata import rating, upload

_PROBE = """
import json, sys
from datetime import date
import django
django.setup()
from ratepad_server.web.period import PRESETS, Period
out = {}
for text in sys.argv[1:]:
    today = date.fromisoformat(text)
    for name, (_label, _unit, dates) in PRESETS.items():
        p = Period(*dates(today), preset=name)
        out[f"{text} {name}"] = [str(x) for x in (p.first, p.last, p.previous().first,
                                 p.previous().last, p.year_before().first, p.year_before().last)]
print(json.dumps(out))
"""
DAYS = ["2026-12-07", "2026-01-01", "2024-02-29", "2025-03-31", "2026-07-01", "2028-12-31"]


def _monday(day: date) -> date:
    while day.weekday():
        day -= timedelta(days=1)
    return day


def _month(year: int, month: int) -> tuple[date, date]:
    while month < 1:
        year, month = year - 1, month + 12
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _a_year_before(day: date) -> date:
    return date(
        day.year - 1, day.month, min(day.day, calendar.monthrange(day.year - 1, day.month)[1])
    )


def _expected(today: date, name: str) -> tuple[date, ...]:
    """The preset's dates, its 环比 and its 同比, worked out independently of the code."""
    q = (today.month - 1) // 3 * 3 + 1  # first month of today's quarter
    whole = {  # preset → (first, last, previous first, previous last)
        "today": (today, today, today - timedelta(1), today - timedelta(1)),
        "yesterday": (today - timedelta(1),) * 2 + (today - timedelta(2),) * 2,
        "last_30_days": (today - timedelta(29), today,
                         today - timedelta(59), today - timedelta(30)),
        "last_week": (_monday(today) - timedelta(7), _monday(today) - timedelta(1),
                      _monday(today) - timedelta(14), _monday(today) - timedelta(8)),
        "last_month": (*_month(today.year, today.month - 1), *_month(today.year, today.month - 2)),
        "last_quarter": (_month(today.year, q - 3)[0], _month(today.year, q - 1)[1],
                         _month(today.year, q - 6)[0], _month(today.year, q - 4)[1]),
        "last_year": (date(today.year - 1, 1, 1), date(today.year - 1, 12, 31),
                      date(today.year - 2, 1, 1), date(today.year - 2, 12, 31)),
    }  # fmt: skip
    running = {  # "this …": so far, against the same stretch of the one before
        "this_week": (_monday(today), _monday(today) - timedelta(7)),
        "this_month": (today.replace(day=1), _month(today.year, today.month - 1)[0]),
        "this_quarter": (date(today.year, q, 1), _month(today.year, q - 3)[0]),
        "this_year": (date(today.year, 1, 1), date(today.year - 1, 1, 1)),
    }
    if name in whole:
        first, last, pfirst, plast = whole[name]
    else:
        first, pfirst = running[name]
        last = today
        unit_end = first - timedelta(days=1)
        plast = min(unit_end, pfirst + (last - first))
    return first, last, pfirst, plast, _a_year_before(first), _a_year_before(last)


def test_presets_and_their_comparisons_follow_the_calendar(tmp_path: Path) -> None:
    env = {**server_env(), "DJANGO_SETTINGS_MODULE": "ratepad_server.settings",
           "RATEPAD_DB": f"sqlite:///{tmp_path / 'unused.sqlite3'}"}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", _PROBE, *DAYS], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert len(got) == 11 * len(DAYS)
    for key, dates in got.items():
        text, name = key.split()
        want = [str(d) for d in _expected(date.fromisoformat(text), name)]
        assert dates == want, (key, dates, want)


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_the_report_names_its_periods_and_explains_an_empty_comparison(
    site: Site, server: Server
) -> None:
    upload(server.url, site.keys["BJ-001"], ratings=[rating("K1", i, 5, ago_s=1) for i in (1, 2)])
    client = logged_in(server.url, "bj-manager")
    client.headers["Accept-Language"] = "en"
    status, body = client.get("/report/BJ-001/?period=today")
    page = body.decode()
    assert status == 200 and '<option value="today" selected>Today</option>' in page
    assert 'id="compare-previous"' in page and "No ratings in that period" in page
    assert "?period=today&window=BJ-001-W1" in page  # the preset travels with the drill-down
    status, body = client.get("/report/BJ-001/?period=yesterday")
    assert "No ratings in this period" in body.decode()
    assert client.get("/report/BJ-001/?period=fortnight")[0] == 400
    zh = logged_in(server.url, "bj-manager")
    page = zh.get("/report/BJ-001/?period=this_month")[1].decode()
    assert "环比（上期）" in page and "本月" in page and "环比 previous" not in page
