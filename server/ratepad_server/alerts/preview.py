""" "Test this rule on last week": how many alerts a rule (saved or only typed) would have
raised over the last seven days of its subtree's ratings, replayed as the engine sees them.

Rating rules: the matching ratings, and the alerts they make when an open alert folds the
repeats at its window until the end of the day (a queue worked daily). Window rules: the
rule evaluated at every rating of a window over the ``minutes`` before it (as each upload
does), the hits, and the alerts when the hits of a window on one day fold into one. Offline
rules depend on keypad states, not ratings: no preview. Bounded: beyond ``LIMIT`` ratings
the preview says so instead of reading them all.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.utils import timezone

from ..ingest.models import Rating
from ..org.models import Node
from ..reports.service import TZ
from ..rollups.service import KPI_EXCLUDED
from .engine import window_verdict
from .models import Rule

DAYS = 7
LIMIT = 200_000  # ratings a preview reads at most


@dataclass(frozen=True)
class Preview:
    since: datetime
    until: datetime
    ratings: int  # read
    matches: int  # ratings (rating rules) or evaluations (window rules) that hit
    alerts: int  # after folding
    windows: int  # windows with at least one alert
    too_many: bool = False
    unavailable: bool = False  # a kind a preview cannot replay (offline)


def preview_rule(rule: Rule, now: datetime | None = None) -> Preview:
    until = now or timezone.now()
    since = until - timedelta(days=DAYS)
    if rule.kind == Rule.OFFLINE:
        return Preview(since, until, 0, 0, 0, 0, unavailable=True)
    node: Node = rule.node
    rows = Rating.objects.filter(
        branch__path__startswith=node.path, window__isnull=False, time__gte=since, time__lt=until
    )
    total = rows.count()
    if total > LIMIT:
        return Preview(since, until, total, 0, 0, 0, too_many=True)
    ordered = rows.order_by("window_id", "time").values_list("window_id", "time", "score", "flags")
    alerts: set[tuple[int, date]] = set()
    matches = 0
    if rule.kind == Rule.LOW_RATING:
        for wid, when, score, flags in ordered.iterator(chunk_size=5000):
            if score <= rule.level and not flags & KPI_EXCLUDED:
                matches += 1
                alerts.add((wid, when.astimezone(TZ).date()))
    else:
        span = timedelta(minutes=rule.minutes)
        recent: deque[tuple[datetime, int, int]] = deque()
        current = None
        for wid, when, score, flags in ordered.iterator(chunk_size=5000):
            if wid != current:
                recent.clear()
                current = wid
            recent.append((when, score, flags))
            while recent[0][0] < when - span:
                recent.popleft()
            verdict = window_verdict(rule, [(s, f) for _, s, f in recent])
            if verdict is not None and verdict[0]:
                matches += 1
                alerts.add((wid, when.astimezone(TZ).date()))
    return Preview(since, until, total, matches, len(alerts), len({w for w, _ in alerts}))
