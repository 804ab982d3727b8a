"""Working days from the holiday calendar in the database (``CalendarDay``): Monday to Friday,
except the holidays listed, plus the adjusted working weekend days listed (调休).

The statutory calendar (国务院办公厅 每年的节假日安排) comes as a TOML file, loaded with
``ratepad server holidays load FILE`` (``holidays/cn-2026.toml`` is the example)::

    [[holiday]]
    name = "春节"
    from = 2026-02-15          # the days off, both included
    to = 2026-02-23
    work = [2026-02-14, 2026-02-28]   # weekend days worked instead (调休)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from .models import CalendarDay

# the longest stretch a count of working days may need: the loop's deadlines are ≤ 60 working
# days, and no calendar has more than a few weeks off in a row
_SPAN = timedelta(days=200)
MAX_DAYS_OFF = 31  # one holiday's days off at most (a file's typo such as a year, refused)


@dataclass(frozen=True)
class Calendar:
    """The calendar's exceptions between ``lo`` and ``hi`` (one query), and counting on it."""

    lo: date
    hi: date
    exceptions: dict[date, bool]

    @classmethod
    def around(cls, lo: date, hi: date | None = None) -> Calendar:
        lo, hi = lo - _SPAN, (hi or lo) + _SPAN
        rows = CalendarDay.objects.filter(day__gte=lo, day__lte=hi).values_list("day", "working")
        return cls(lo, hi, dict(rows))

    def working(self, d: date) -> bool:
        if not self.lo <= d <= self.hi:  # outside what was loaded: ask again
            return Calendar.around(d).working(d)
        found = self.exceptions.get(d)
        return d.weekday() < 5 if found is None else found

    def add(self, start: date, days: int) -> date:
        """The ``days``-th working day after ``start`` (``start`` itself does not count)."""
        d, left = start, max(0, days)
        while left:
            d += timedelta(days=1)
            left -= self.working(d)
        return d

    def earliest_with_deadline(self, today: date, days: int) -> date:
        """The first date whose ``add(·, days)`` is ``today`` or later: what happened on it or
        after is still within its deadline today (``add`` grows with its start)."""
        d = today
        while self.add(d - timedelta(days=1), days) >= today:
            d -= timedelta(days=1)
        return d


def add_working_days(start: date, days: int) -> date:
    """The ``days``-th working day after ``start``, by the calendar in the database."""
    return Calendar.around(start).add(start, days)


def exception_on(d: date) -> bool | None:
    """What the calendar says of ``d``: False a holiday, True an adjusted working day (调休),
    None an ordinary day (its weekday decides)."""
    return CalendarDay.objects.filter(day=d).values_list("working", flat=True).first()


def is_working_day(d: date) -> bool:
    found = exception_on(d)
    return d.weekday() < 5 if found is None else found


class CalendarFileError(ValueError):
    """A holiday file that cannot be read (the message names the file and what is wrong)."""


def read_holiday_file(path: Path) -> list[tuple[date, bool, str]]:
    """The days of a holiday file: (date, working, holiday's name), in file order (a
    holiday without ``to`` is one day)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CalendarFileError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CalendarFileError(f"{path}: not UTF-8 text") from None
    return read_holiday_text(text, str(path))


def read_holiday_text(text: str, path: str) -> list[tuple[date, bool, str]]:
    """The days of a holiday file's text (``path`` names it in the errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CalendarFileError(f"{path}: not a TOML file: {exc}") from None
    holidays = data.get("holiday")
    if not isinstance(holidays, list) or not holidays:
        raise CalendarFileError(f"{path}: no [[holiday]] entries")
    out: list[tuple[date, bool, str]] = []
    for i, h in enumerate(holidays, 1):
        where = f"{path}: holiday {i}"
        if not isinstance(h, dict):
            raise CalendarFileError(f"{where}: expected a table")
        name = h.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise CalendarFileError(f"{where}: name: text of 1 to 100 characters")
        first, last = _day(h, "from", where), _day(h, "to", where, h.get("from"))
        if not 0 <= (last - first).days < MAX_DAYS_OFF:
            raise CalendarFileError(f"{where}: 'to' must be 0 to {MAX_DAYS_OFF - 1} days "
                                    "after 'from'")  # fmt: skip
        out += [(first + timedelta(days=n), False, name.strip())
                for n in range((last - first).days + 1)]  # fmt: skip
        work = h.get("work", [])
        if not isinstance(work, list) or not all(type(w) is date for w in work):
            raise CalendarFileError(f"{where}: work: a list of dates such as [2026-02-14]")
        out += [(w, True, name.strip()) for w in work]
    return out


def _day(h: dict[str, Any], key: str, where: str, default: Any = None) -> date:
    value = h.get(key, default)
    if type(value) is not date or not date(2000, 1, 1) <= value <= date(2099, 12, 31):
        raise CalendarFileError(f"{where}: {key}: a date such as 2026-10-01 (2000 to 2099)")
    return value


def load_days(days: list[tuple[date, bool, str]]) -> tuple[int, int]:
    """Write the days (a day already listed takes the file's word); (added, changed)."""
    existing = {c.day: c for c in CalendarDay.objects.filter(day__in=[d for d, _, _ in days])}
    added = changed = 0
    for day, working, name in days:
        row = existing.get(day)
        if row is None:
            existing[day] = CalendarDay.objects.create(day=day, working=working, name=name)
            added += 1
        elif (row.working, row.name) != (working, name):
            row.working, row.name = working, name
            row.save(update_fields=["working", "name"])
            changed += 1
    return added, changed
