"""The times the ingest path accepts: from ``ACCEPT_PAST_DAYS`` before to ``ACCEPT_FUTURE_HOURS``
after the server's clock (settings, from the environment).

A keypad's or an agent's clock can be wrong (a flat RTC battery says 1970) and a hostile key
can send any time; such items are kept in quarantine rather than stored, so that no batch can
make partitions for far months or freeze a keypad's state in the future.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Accepted:
    since: datetime
    until: datetime

    def __contains__(self, when: object) -> bool:
        return isinstance(when, datetime) and self.since <= when <= self.until


def _setting(name: str, default: int, top: int) -> int:
    value = getattr(settings, name, default)
    if not isinstance(value, int) or not 0 <= value <= top:
        raise ImproperlyConfigured(f"RATEPAD_{name}: expected a whole number 0..{top}")
    return value


def accepted(now: datetime) -> Accepted:
    """The span of accepted times around ``now`` (the server's clock)."""
    past = _setting("ACCEPT_PAST_DAYS", 730, 36_500)
    future = _setting("ACCEPT_FUTURE_HOURS", 24, 24 * 366)
    return Accepted(now - timedelta(days=past), now + timedelta(hours=future))
