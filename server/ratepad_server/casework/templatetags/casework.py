"""Template helpers of the loop: an alert's cases, and which of a page's ratings its staff
member may still appeal (``{% appeal_keys rows role as open %}`` then
``{% if r|rating_key in open %}``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django import template

from ...ingest.models import Rating
from ...org.models import Role
from ..models import Case
from ..policy import appeal_window

register = template.Library()


@register.simple_tag
def cases_of_alert(alert: Any) -> list[Case]:
    return list(Case.objects.filter(alert_id=getattr(alert, "pk", 0)).order_by("id")[:20])


@register.filter
def rating_key(row: Mapping[str, Any]) -> str:
    return f"{row.get('serial')}#{row.get('journal_seq')}"


@register.simple_tag
def appeal_keys(rows: Iterable[Mapping[str, Any]], role: Role | None) -> set[str]:
    """The ratings among ``rows`` that ``role`` (a staff member) may appeal today: theirs, at
    or below their branch's appeal level, within the appeal deadline."""
    if role is None or role.role != Role.STAFF or role.staff is None:
        return set()
    window = appeal_window(role.staff.branch)
    candidates = [r for r in rows if int(r.get("score", 99)) <= window.level]
    if not candidates:
        return set()
    received = dict(
        ((s, q), at)
        for s, q, at in Rating.objects.filter(
            serial__in={r["serial"] for r in candidates},
            journal_seq__in={r["journal_seq"] for r in candidates},
            staff_id=role.staff.staff_id,
        ).values_list("serial", "journal_seq", "received_at")
    )
    out = set()
    for r in candidates:
        at = received.get((r["serial"], r["journal_seq"]))
        if at is not None and window.allows(int(r["score"]), r["time"], at):
            out.add(rating_key(r))
    return out
