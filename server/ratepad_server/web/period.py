"""A report's period from its URL: ``?period=<preset>`` (today, last week, this month … — the
URL carries the preset, so a bookmark of "this month" stays this month), or
``?since=YYYY-MM-DD&until=YYYY-MM-DD`` (local dates, both included; default: the last 30
days), and ``?month=YYYY-MM`` → a half-open interval of aware datetimes. A bad date, or one
outside ``EARLIEST``…``LATEST``, is a 400 with the reason, not a 500 (the JSON API bounds its
times with the same ``check_time``).

Each period names the two it is compared with: 环比, the period before it (the previous
calendar week, month, quarter or year for a preset of one — the same stretch of it for "this
…", which is still running — else as many days just before), and 同比, the same dates a year
earlier (29 February → 28 February)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.core.exceptions import BadRequest
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..reports.service import TZ

# the dates a URL may name: wide enough for any bank's history, narrow enough that a period's
# arithmetic (a day after, a year before) never leaves what Python and the databases represent
EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)
MAX_DAYS = 3700  # a period of at most about ten years


class OutOfRange(ValueError):
    """A date or time outside ``EARLIEST``…``LATEST`` (the message says which and why)."""


CUSTOM, DEFAULT = "custom", "last_30_days"


def _add_months(day: date, months: int) -> date:
    """The first of the month ``months`` after ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _unit_start(day: date, unit: str) -> date:
    if unit == "week":  # weeks start on Monday
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return date(day.year, 1, 1)


def _unit_after(start: date, unit: str, count: int = 1) -> date:
    """The start of the unit ``count`` units after the one starting at ``start``."""
    if unit == "week":
        return start + timedelta(weeks=count)
    return _add_months(start, count * {"month": 1, "quarter": 3, "year": 12}[unit])


def _this(unit: str) -> Callable[[date], tuple[date, date]]:
    return lambda today: (_unit_start(today, unit), today)


def _last(unit: str) -> Callable[[date], tuple[date, date]]:
    def span(today: date) -> tuple[date, date]:
        start = _unit_start(today, unit)
        return _unit_after(start, unit, -1), start - timedelta(days=1)

    return span


# preset → (its name on the page, the unit it is a whole or a running part of, its dates)
PRESETS: dict[str, tuple[Promise, str, Callable[[date], tuple[date, date]]]] = {
    "today": (gettext_lazy("Today"), "", lambda today: (today, today)),
    "yesterday": (gettext_lazy("Yesterday"), "", lambda t: (t - timedelta(1), t - timedelta(1))),
    "this_week": (gettext_lazy("This week"), "week", _this("week")),
    "last_week": (gettext_lazy("Last week"), "week", _last("week")),
    "this_month": (gettext_lazy("This month"), "month", _this("month")),
    "last_month": (gettext_lazy("Last month"), "month", _last("month")),
    "this_quarter": (gettext_lazy("This quarter"), "quarter", _this("quarter")),
    "last_quarter": (gettext_lazy("Last quarter"), "quarter", _last("quarter")),
    "this_year": (gettext_lazy("This year"), "year", _this("year")),
    "last_year": (gettext_lazy("Last year"), "year", _last("year")),
    DEFAULT: (gettext_lazy("Last 30 days"), "", lambda t: (t - timedelta(29), t)),
}
CHOICES: list[tuple[str, Promise]] = [(k, v[0]) for k, v in PRESETS.items()] + [
    (CUSTOM, gettext_lazy("Custom dates"))
]


def _year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


@dataclass(frozen=True)
class Period:
    first: date
    last: date
    preset: str = CUSTOM

    @property
    def label(self) -> str:
        return str(dict(CHOICES).get(self.preset, ""))

    def previous(self) -> Period:
        """环比: the period just before (of the preset's unit, else as many days)."""
        unit = PRESETS[self.preset][1] if self.preset in PRESETS else ""
        if not unit:
            days = (self.last - self.first).days + 1
            return Period(self.first - timedelta(days), self.first - timedelta(1))
        first = _unit_after(_unit_start(self.first, unit), unit, -1)
        end = _unit_start(self.first, unit) - timedelta(days=1)  # the whole unit before
        if self.preset.startswith("this_"):  # still running: the same stretch of the one before
            return Period(first, min(end, first + (self.last - self.first)))
        return Period(first, end)

    def year_before(self) -> Period:
        """同比: the same dates a year earlier."""
        return Period(_year_before(self.first), _year_before(self.last))

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time(), TZ)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), TZ)

    @property
    def choices(self) -> list[tuple[str, Promise]]:
        return CHOICES

    @property
    def span(self) -> tuple[datetime, datetime]:
        return self.since, self.until

    def comparison_spans(self) -> tuple[tuple[datetime, datetime], tuple[datetime, datetime]]:
        """[since, until) of 环比 and of 同比."""
        return self.previous().span, self.year_before().span

    def pairs(self) -> list[tuple[str, str]]:
        """The period as URL pairs: the preset, or the two dates."""
        if self.preset in PRESETS:
            return [("period", self.preset)]
        return [("since", self.first.isoformat()), ("until", self.last.isoformat())]

    def query(self) -> str:
        return "&".join(f"{k}={v}" for k, v in self.pairs())


def _bounds(name: str, what: str) -> str:
    return _("%(name)s: %(what)s from %(first)s to %(last)s") % {
        "name": name, "what": what, "first": EARLIEST, "last": LATEST}  # fmt: skip


def check_date(value: date, name: str) -> date:
    if not EARLIEST <= value <= LATEST:
        raise OutOfRange(_bounds(name, _("a date")))
    return value


def check_time(value: datetime, name: str) -> datetime:
    """An aware time (a naive one counts as UTC) whose local date lies in the bounds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        day = value.astimezone(TZ).date()
    except OverflowError:
        raise OutOfRange(_bounds(name, _("a time"))) from None
    if not EARLIEST <= day <= LATEST:
        raise OutOfRange(_bounds(name, _("a time")))
    return value


def _date(text: str, name: str, shape: str = "YYYY-MM-DD") -> date:
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise BadRequest(
            _("%(name)s: expected %(shape)s") % {"name": name, "shape": shape}
        ) from None
    try:
        return check_date(value, name)
    except OutOfRange as exc:
        raise BadRequest(str(exc)) from None


def today() -> date:
    return timezone.now().astimezone(TZ).date()


def parse_period(request: HttpRequest) -> Period:
    preset = request.GET.get("period", "")
    if preset and preset != CUSTOM and preset not in PRESETS:
        raise BadRequest(_("period: one of %(names)s") % {"names": ", ".join(dict(CHOICES))})
    since, until = request.GET.get("since"), request.GET.get("until")
    if preset in PRESETS or (not preset and not since and not until):
        name = preset or DEFAULT
        return Period(*PRESETS[name][2](today()), preset=name)
    last = _date(until, "until") if until else today()
    first = _date(since, "since") if since else max(EARLIEST, last - timedelta(days=29))
    if first > last:
        raise BadRequest(_("the period starts after it ends"))
    if (last - first).days > MAX_DAYS:
        raise BadRequest(_("a period of at most ten years"))
    return Period(first, last)


def parse_month(request: HttpRequest) -> Period:
    """``?month=YYYY-MM`` (default: last month) → that month's first and last day."""
    text = request.GET.get("month")
    if text:
        first = _date(f"{text}-01" if len(text) == 7 else "-", "month", "YYYY-MM")
    else:
        today = timezone.now().astimezone(TZ).date()
        first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)  # last month
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return Period(first, last)
