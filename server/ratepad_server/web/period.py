"""``?since=YYYY-MM-DD&until=YYYY-MM-DD`` (local dates, both included; default: the last 30
days) and ``?month=YYYY-MM`` → a half-open interval of aware datetimes. A bad date, or one
outside ``EARLIEST``…``LATEST``, is a 400 with the reason, not a 500 (the JSON API bounds its
times with the same ``check_time``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.core.exceptions import BadRequest
from django.http import HttpRequest
from django.utils import timezone

from ..reports.service import TZ

# the dates a URL may name: wide enough for any bank's history, narrow enough that a period's
# arithmetic (a day after, a year before) never leaves what Python and the databases represent
EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)
MAX_DAYS = 3700  # a period of at most about ten years


class OutOfRange(ValueError):
    """A date or time outside ``EARLIEST``…``LATEST`` (the message says which and why)."""


@dataclass(frozen=True)
class Period:
    first: date
    last: date

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time(), TZ)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), TZ)

    def query(self) -> str:
        return f"since={self.first.isoformat()}&until={self.last.isoformat()}"


def check_date(value: date, name: str) -> date:
    if not EARLIEST <= value <= LATEST:
        raise OutOfRange(f"{name}: a date from {EARLIEST} to {LATEST}")
    return value


def check_time(value: datetime, name: str) -> datetime:
    """An aware time (a naive one counts as UTC) whose local date lies in the bounds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        day = value.astimezone(TZ).date()
    except OverflowError:
        raise OutOfRange(f"{name}: a time from {EARLIEST} to {LATEST}") from None
    if not EARLIEST <= day <= LATEST:
        raise OutOfRange(f"{name}: a time from {EARLIEST} to {LATEST}")
    return value


def _date(text: str, name: str, shape: str = "YYYY-MM-DD") -> date:
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name}: expected {shape}") from None
    try:
        return check_date(value, name)
    except OutOfRange as exc:
        raise BadRequest(str(exc)) from None


def parse_period(request: HttpRequest) -> Period:
    today = timezone.now().astimezone(TZ).date()
    last = _date(request.GET["until"], "until") if request.GET.get("until") else today
    first = (_date(request.GET["since"], "since") if request.GET.get("since")
             else max(EARLIEST, last - timedelta(days=29)))  # fmt: skip
    if first > last:
        raise BadRequest("since is after until")
    if (last - first).days > MAX_DAYS:
        raise BadRequest("a period of at most ten years")
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
