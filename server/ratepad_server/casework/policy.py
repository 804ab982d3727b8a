"""Which rules of the loop apply at a branch: the ``Policy`` of the nearest node at or above it,
else the defaults of the ``Policy`` model; and what they say about one rating's appeal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.utils import timezone

from ..org.models import Node
from ..reports.service import TZ
from .calendar import Calendar
from .models import Policy


def ancestors(node: Node) -> list[str]:
    """The paths of ``node`` and every node above it, nearest first."""
    parts = node.path.strip("/").split("/")
    return ["/" + "/".join(parts[:i]) + "/" for i in range(len(parts), 0, -1)]


def policy_for(node: Node) -> Policy:
    """The rules at ``node`` (unsaved defaults when no node above it has any)."""
    found = {p.node.path: p for p in Policy.objects.filter(
        node__path__in=ancestors(node)).select_related("node")}  # fmt: skip
    for path in ancestors(node):
        if path in found:
            return found[path]
    return Policy(node=node)


def local_date(when: datetime) -> date:
    return when.astimezone(TZ).date()


@dataclass(frozen=True)
class AppealWindow:
    """Which of a branch's ratings may be appealed today: at or below ``level``, and rated or
    received (the later of the two: a rating that arrived late was not visible before) on
    ``since`` or after, ``since`` being the first day still within the appeal deadline."""

    level: int
    days: int
    since: date

    def allows(self, score: int, rated: datetime, received: datetime) -> bool:
        return score <= self.level and local_date(max(rated, received)) >= self.since

    def deadline(self, rated: datetime, received: datetime) -> date:
        return Calendar.around(local_date(received)).add(local_date(max(rated, received)),
                                                         self.days)  # fmt: skip


def appeal_window(branch: Node, today: date | None = None) -> AppealWindow:
    policy = policy_for(branch)
    today = today or local_date(timezone.now())
    since = Calendar.around(today).earliest_with_deadline(today, policy.appeal_days)
    return AppealWindow(policy.appeal_level, policy.appeal_days, since)
