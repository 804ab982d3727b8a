"""``?since=YYYY-MM-DD&until=YYYY-MM-DD`` (local dates, both included; default: the last 30
days) → a half-open interval of aware datetimes. A bad date is a 400, not a 500."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.core.exceptions import BadRequest
from django.http import HttpRequest
from django.utils import timezone

from ..reports.service import TZ


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


def _date(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name}: expected YYYY-MM-DD") from None


def parse_period(request: HttpRequest) -> Period:
    today = timezone.now().astimezone(TZ).date()
    last = _date(request.GET["until"], "until") if request.GET.get("until") else today
    first = (_date(request.GET["since"], "since") if request.GET.get("since")
             else last - timedelta(days=29))  # fmt: skip
    if first > last:
        raise BadRequest("since is after until")
    if (last - first).days > 3700:
        raise BadRequest("a period of at most ten years")
    return Period(first, last)
