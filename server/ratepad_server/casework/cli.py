"""``ratepad server holidays load FILE | list [--year Y]``: the holiday calendar of the loop's
deadlines. Imported by ``ratepad_server.cli``; Django is set up before ``run``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from ..cli import Usage

ACTIONS = ("holidays",)


def example_file() -> Path:
    """The statutory calendar shipped with the package (2026)."""
    return Path(str(resources.files("ratepad_server.casework") / "holidays" / "cn-2026.toml"))


def add_parsers(sub: Any, db: Callable[[argparse.ArgumentParser], None]) -> None:
    """The ``holidays`` action, on ``build_parser``'s subparsers."""
    holidays = sub.add_parser("holidays", help="the holiday calendar of the loop's deadlines")
    what = holidays.add_subparsers(dest="what", metavar="ACTION", required=True,
                                   parser_class=type(holidays))  # fmt: skip
    p = what.add_parser("load", help="add the holidays and adjusted working days (调休) of a "
                        f"TOML file (e.g. {example_file()}); a day listed already takes the "
                        "file's word")  # fmt: skip
    p.add_argument("file", metavar="FILE", type=Path, help="the holiday calendar (TOML)")
    db(p)
    p = what.add_parser("list", help="the calendar's holidays and adjusted working days")
    p.add_argument("--year", type=int, metavar="YYYY", help="only this year")
    db(p)


def run(args: argparse.Namespace) -> int:
    from ..cli import _check_database

    if args.what == "load":
        from .calendar import CalendarFileError, read_holiday_file

        try:
            days = read_holiday_file(args.file)  # a bad file fails before the database opens
        except CalendarFileError as exc:
            raise Usage(str(exc)) from None
        _check_database()
        return _load(args.file, days)
    _check_database()
    return _list(args.year)


def _load(path: Path, days: list[Any]) -> int:
    from django.db import transaction

    from ..accounts.cli import actor
    from ..audit.log import record
    from .calendar import load_days

    with transaction.atomic():
        added, changed = load_days(days)
        record(None, "holidays.load", username=actor(), file=str(path), added=added,
               changed=changed)  # fmt: skip
    print(f"ratepad server: {path}: {added} days added, {changed} changed")
    return 0


def _list(year: int | None) -> int:
    from .models import CalendarDay

    rows = CalendarDay.objects.all()
    if year is not None:
        if not 2000 <= year <= 2099:
            raise Usage("--year: expected 2000..2099")
        rows = rows.filter(day__year=year)
    for d in rows:
        print(f"{d.day} {'work' if d.working else 'off '} {d.name}")
    return 0
